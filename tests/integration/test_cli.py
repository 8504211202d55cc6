"""The `pantau` command as a user runs it: demo, up + ingest + status, bad input."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.conftest import ROOT, SEED, TEST_WATCHLIST
from tests.integration.conftest import wait_until
from workers.runtime import free_port

PANTAU = [sys.executable, "-m", "workers.cli"]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PANTAU_")}
    env.update(
        {
            "PANTAU_DATA_DIR": str(tmp_path / "var"),
            "PANTAU_METRICS_PORT_INGEST": "0",
            "PANTAU_METRICS_PORT_EXTRACT": "0",
            "PANTAU_METRICS_PORT_ALERT": "0",
            **extra,
        }
    )
    return env


def _run(
    args: list[str], tmp_path: Path, stdin: bytes | None = None, timeout: float = 300, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PANTAU, *args],
        cwd=tmp_path,
        env=_env(tmp_path, **env),
        timeout=timeout,
        input=stdin.decode() if stdin else None,
        capture_output=True,
        text=True,
    )


def test_cli_demo_prints_alerts_for_the_seed(tmp_path: Path) -> None:
    launched = time.time()
    result = _run(
        ["demo", "--seeds", str(ROOT / "seeds"), "--watchlist", str(TEST_WATCHLIST)], tmp_path
    )
    assert result.returncode == 0, result.stderr
    alerts = [json.loads(line) for line in result.stdout.splitlines()]
    # The article counts as ingested when the ready pipeline accepts it, not when the demo read
    # it before starting the workers: its alerts' latency is the pipeline's.
    ready = re.search(r"workers ready in ([0-9.]+) s", result.stderr)
    assert ready is not None, result.stderr
    ready_after_s = float(ready.group(1))
    for alert in alerts:
        ingested = datetime.fromisoformat(alert["ingested_at"]).timestamp()
        assert ingested >= launched + ready_after_s - 0.1, (alert["ingested_at"], ready_after_s)
    assert sorted(a["actor_id"] for a in alerts) == [
        "choe-son-hui",
        "kim-jong-un",
        "vladimir-putin",
    ]
    assert "3 alert(s)" in result.stderr
    leftover = subprocess.run(["pgrep", "-f", f"pantau-demo.*{tmp_path.name}"], capture_output=True)
    assert leftover.stdout == b""


def test_cli_dry_run_reports_each_bad_input_and_keeps_the_good(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "empty.txt").write_bytes(b"")
    (inputs / "binary.txt").write_bytes(bytes(range(256)) * 4)
    (inputs / "bad.json").write_text('{"text": ')
    (inputs / "latin1.txt").write_bytes("Pertemuan di Café Jakarta".encode("latin-1"))
    (inputs / "bom.txt").write_bytes("\ufeffPutin tiba di Jakarta.".encode())
    (inputs / "huge.txt").write_bytes(b"x" * (50 * 1024 * 1024))
    result = _run(["ingest", "--dry-run", str(inputs)], tmp_path)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(r["text"] for r in records) == [
        "Pertemuan di Café Jakarta",
        "Putin tiba di Jakarta.",
    ]
    problems = result.stderr
    for name, problem in [
        ("empty.txt", "empty"),
        ("binary.txt", "binary"),
        ("bad.json", "invalid JSON"),
        ("huge.txt", "limit"),
        ("latin1.txt", "UTF-8"),
    ]:
        assert name in problems and problem in problems, (name, problems)
    assert "Traceback" not in problems


def test_cli_dry_run_exits_2_when_nothing_usable(tmp_path: Path) -> None:
    result = _run(["ingest", "--dry-run", "-"], tmp_path, stdin=b"   ")
    assert result.returncode == 2 and "empty" in result.stderr and "Traceback" not in result.stderr
    missing = _run(["ingest", "--dry-run", str(tmp_path / "nope.txt")], tmp_path)
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_cli_ingest_without_deployment_says_how_to_start_one(tmp_path: Path) -> None:
    result = _run(["ingest", str(SEED)], tmp_path)
    assert result.returncode == 1 and "pantau up" in result.stderr


@pytest.mark.slow
def test_cli_up_ingest_status_and_clean_shutdown(tmp_path: Path) -> None:
    env = _env(tmp_path, PANTAU_API_PORT="0", PANTAU_WATCHLIST=str(TEST_WATCHLIST))
    env["PANTAU_API_PORT"] = str(free_port())
    up = subprocess.Popen(
        [*PANTAU, "up"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:

        def status() -> dict:
            out = subprocess.run(
                [*PANTAU, "status", "--json"],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            return json.loads(out.stdout) if out.returncode == 0 else {}

        wait_until(
            lambda: len([w for w in status().get("workers", []) if w["alive"]]) == 3,
            180,
            "pantau up to start its workers",
        )
        ingested = subprocess.run(
            [*PANTAU, "ingest", str(SEED)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert ingested.returncode == 0, ingested.stderr
        wait_until(lambda: status()["articles"]["completed"] == 1, 120, "the seed to complete")
        current = status()
        assert current["queues"] == {"ingest": 0, "extract": 0, "alert": 0}
        assert current["alerts"] == 3
        assert {w["kind"] for w in current["workers"]} == {"ingest", "extract", "alert"}
        pids = [w["pid"] for w in current["workers"]]

        def pantau(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [*PANTAU, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
            )

        token = json.loads(pantau("token", "create", "--note", "test").stdout)
        assert token["token"].startswith("pt_") and token["scopes"] == ["admin"]
        created = pantau("subscribe", "--actor", "kim-jong-un", "--event", "ACCUSE", "--sse")
        assert created.returncode == 0, created.stderr
        subscription = json.loads(created.stdout)
        assert set(subscription) == {"id", "secret", "token"}
        assert subscription["secret"].startswith("whsec_")
        refused = pantau("subscribe", "--actor", "kim-jong-un", "--webhook", "file:///etc/passwd")
        assert refused.returncode == 2 and "Traceback" not in refused.stderr
        assert pantau("dlq", "list").returncode == 0
    finally:
        up.send_signal(signal.SIGTERM)
        up.wait(timeout=60)
    assert up.returncode == 0, up.stderr.read().decode()[-2000:]
    time.sleep(0.5)
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists(), f"worker {pid} outlived pantau up"
    assert not (tmp_path / "var" / "redis.json").exists()


def test_cli_bench_replays_and_reports_the_figures(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    places = ["Jakarta", "Surabaya", "Medan", "Makassar", "Bandung", "Semarang"]
    with corpus.open("w", encoding="utf-8") as out:
        for i in range(30):
            text = (
                f"Presiden Joko Widodo meresmikan jembatan nomor {i} di {places[i % 6]} pada hari "
                f"ke-{i}. Warga {places[(i + 1) % 6]} menyambut peresmian itu dengan gembira."
            )
            out.write(json.dumps({"id": f"a{i}", "text": text, "language": "id"}) + "\n")
    result = _run(
        [
            "bench",
            *("--corpus", str(corpus), "--articles", "24", "--warmup", "4"),
            *("--extract-workers", "2", "--json"),
        ],
        tmp_path,
        PANTAU_WATCHLIST=str(TEST_WATCHLIST),
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.splitlines()[-1])
    assert figures["completed"] == figures["articles"] == 24
    assert figures["articles_per_s"] > 0 and figures["tokens_per_s"] > 0
    assert figures["extract_workers"] == 2
    # The in-process baseline is the mean of one run before the replay and one after it.
    before, after = figures["inprocess_before_after_articles_per_s"]
    mean_rate = 24 / ((24 / before + 24 / after) / 2)
    assert figures["inprocess_articles_per_s"] == pytest.approx(mean_rate, rel=0.01)
    ratio = figures["articles_per_s"] / (figures["inprocess_articles_per_s"] * 2)
    assert figures["ratio"] == pytest.approx(ratio, rel=0.01) and ratio > 0
    # Two in-process extractions at once (the bench checks that they extracted all 24).
    parallel = figures["inprocess_parallel_articles_per_s"]
    assert parallel > 0
    scaling = parallel / (figures["inprocess_articles_per_s"] * 2)
    assert figures["inprocess_scaling"] == pytest.approx(scaling, rel=0.01)
    assert figures["ratio_vs_parallel"] == pytest.approx(
        figures["articles_per_s"] / parallel, rel=0.01
    )
    # The extract workers' CPU inside the pipeline, from their multiprocess metric files: two
    # processes cannot spend more than two cores' time, and it is counted once per article.
    share = figures["extract_cpu_s"] / (2 * figures["seconds"])
    assert figures["extract_cpu_share"] == pytest.approx(share, rel=0.03, abs=0.002)
    assert 0 < figures["extract_cpu_share"] <= 1.0
    assert figures["extract_cpu_ms_per_article"] == pytest.approx(
        1000 * figures["extract_cpu_s"] / 24, abs=0.5
    )
    assert figures["inprocess_cpu_ms_per_article"] > 0
    latency = figures["latency_ms"]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"]
    assert set(figures["rss_mb"]) == {"ingest", "extract", "alert"}
    assert all(mb > 50 for mb in figures["rss_mb"].values())
    # Where the replay's CPU time went: every worker kind, the embedded Redis, the bench itself.
    assert {"ingest", "extract", "alert", "redis", "bench"} <= set(figures["cpu_s"])
    assert figures["cpu_s"]["extract"] > 0


def test_cli_demo_stopped_by_sigterm_leaves_no_process_behind(tmp_path: Path) -> None:
    import psutil

    demo = subprocess.Popen(
        [*PANTAU, "demo"],
        cwd=tmp_path,
        env=_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        parent = psutil.Process(demo.pid)

        def workers() -> list[psutil.Process]:
            return [
                child
                for child in parent.children(recursive=True)
                if "celery" in " ".join(child.cmdline())
            ]

        wait_until(lambda: len(workers()) >= 3, 120, "pantau demo to start its workers")
        spawned = [*parent.children(recursive=True)]  # Redis, workers, pool children
        demo.send_signal(signal.SIGTERM)
        assert demo.wait(timeout=60) != 0
        _gone, alive = psutil.wait_procs(spawned, timeout=30)
        assert not alive, f"outlived pantau demo: {[p.cmdline()[:6] for p in alive]}"
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
