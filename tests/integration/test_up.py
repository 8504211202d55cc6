"""`pantau up --workers ...` supervising the local stack: pool sizes per kind, a killed worker
restarted with its log named, and a clean shutdown that leaves no process behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from tests.conftest import TEST_WATCHLIST
from tests.integration.conftest import wait_until
from workers.runtime import free_port
from workers.settings import Settings
from workers.store import Store

PANTAU = [sys.executable, "-m", "workers.cli"]


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.slow
def test_up_restarts_a_killed_worker_and_stops_cleanly(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PANTAU_")}
    env.update(
        PANTAU_DATA_DIR=str(data_dir),
        PANTAU_API_PORT=str(free_port()),
        PANTAU_WATCHLIST=str(TEST_WATCHLIST),
        PANTAU_METRICS_PORT_INGEST="0",
        PANTAU_METRICS_PORT_EXTRACT="0",
        PANTAU_METRICS_PORT_ALERT="0",
    )
    stderr_path = tmp_path / "up.stderr"
    with stderr_path.open("wb") as stderr:
        up = subprocess.Popen(
            [*PANTAU, "up", "--workers", "ingest=1,extract=1,alert=2"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
    descendants: set[int] = set()
    try:
        wait_until(lambda: (data_dir / "redis.json").exists(), 30, "the embedded Redis")
        url = json.loads((data_dir / "redis.json").read_text())["url"]
        store = Store.connect(url, Settings(data_dir=data_dir))

        def alive_workers() -> dict[str, int]:
            return {w["kind"]: w["pid"] for w in store.workers() if w["alive"]}

        wait_until(lambda: len(alive_workers()) == 3, 120, "three workers")
        wait_until(lambda: b"Pantau is up" in stderr_path.read_bytes(), 30, "pantau up ready")
        killed = alive_workers()["alert"]
        # alert=2: one celery worker whose prefork pool has two processes.
        assert len(psutil.Process(killed).children()) == 2
        descendants |= {p.pid for p in psutil.Process(up.pid).children(recursive=True)}

        os.kill(killed, signal.SIGKILL)
        wait_until(
            lambda: alive_workers().get("alert", killed) != killed, 60, "the alert worker back"
        )
        log = stderr_path.read_text()
        assert "alert exited (code -9)" in log and "restarting it in 1 s" in log, log
        assert str(data_dir.resolve() / "logs" / "alert.log") in log
        assert (data_dir / "logs" / "alert.log").stat().st_size > 0
        wait_until(
            lambda: len(psutil.Process(alive_workers()["alert"]).children()) == 2,
            30,
            "the new alert pool",
        )
        assert not _alive(killed)
        descendants |= {p.pid for p in psutil.Process(up.pid).children(recursive=True)}
    finally:
        up.send_signal(signal.SIGTERM)
        try:
            up.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
            raise
    assert up.returncode == 0, stderr_path.read_text()[-2000:]
    assert "warm shutdown" in stderr_path.read_text()
    wait_until(
        lambda: not [pid for pid in descendants if _alive(pid)], 10, "every child to be gone"
    )
    assert len(descendants) >= 9  # redis, 3 workers + 4 pool processes, api, beat
    assert not (data_dir / "redis.json").exists()
