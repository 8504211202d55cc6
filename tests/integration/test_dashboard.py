"""The built-in dashboard, as a browser sees it: the API under uvicorn on a real Redis, Chromium headless.

Writes the screenshot to artifacts/dashboard.png (git-ignored).

Chromium's --virtual-time-budget never runs out while a request is pending, and an EventSource on an
endless stream is always pending; so the browser runs here talk to a finite stand-in for
GET /v1/alerts/stream (same message format: `event: alert`, `id:`, `data: <Alert JSON>`), then
to none at all (the page must say "live alerts unavailable").
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import StreamingResponse

from tests.conftest import ROOT
from tests.integration.conftest import make_settings, wait_until
from workers.api import dashboard
from workers.api.app import create_app
from workers.auth import TokenRecord, new_token
from workers.domain import Alert, Span
from workers.runtime import free_port
from workers.store import Store

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = ROOT / "artifacts" / "dashboard.png"
SUMMARY = "/v1/dashboard/summary"
STREAM = "/v1/alerts/stream"

ACTORS = [
    (
        "prabowo-subianto",
        "Prabowo Subianto",
        "id",
        "Prabowo bertemu delegasi ASEAN di Jakarta",
        "Presiden Prabowo Subianto menerima delegasi menteri luar negeri ASEAN di Istana Merdeka.",
        ["CONSULT"],
    ),
    (
        "kim-jong-un",
        "Kim Jong Un",
        "en",
        "North Korea test-fires missile into the East Sea",
        "Kim Jong Un oversaw the launch, state media said on Thursday.",
        ["COERCE"],
    ),
    (
        "vladimir-putin",
        "Vladimir Putin",
        "en",
        "Putin and Kim sign defence pact",
        "Vladimir Putin and Kim Jong Un signed a mutual defence agreement in Pyongyang.",
        ["COOPERATE", "AGREE"],
    ),
]


@dataclass
class Served:
    """The API running on a free port, with its store."""

    url: str
    store: Store
    app: FastAPI
    stream: dict[str, object]  # the stand-in stream: {"on": bool, "extra": [alert dicts]}

    def get(self, path: str, token: str | None = None) -> tuple[int, dict[str, str], bytes]:
        """GET a path: status, headers, body (errors included)."""
        request = urllib.request.Request(self.url + path)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as res:
                return res.status, dict(res.headers), res.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()

    def summary(self, token: str | None = None) -> dict:
        status, _, body = self.get(SUMMARY, token)
        assert status == 200, body
        return json.loads(body)


def _paths(routes: list, prefix: str = "") -> Iterator[str]:
    """Every route path of an app, those of included routers too (FastAPI keeps them nested)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            context = getattr(route, "include_context", None)
            yield from _paths(included.routes, prefix + getattr(context, "prefix", ""))
        else:
            yield prefix + getattr(route, "path", "")


def _element(dom: str, element_id: str) -> tuple[str, str]:
    """The attributes and the text of the element with this id in a DOM dump."""
    found = re.search(rf'<\w+([^>]*\bid="{element_id}"[^>]*)>([^<]*)<', dom)
    assert found, f"no element #{element_id}"
    return found.group(1), found.group(2)


def _stand_in_stream(app: FastAPI, store: Store, state: dict[str, object]) -> None:
    """Serve GET /v1/alerts/stream finitely: the stored alerts, `extra`, then the end.

    It goes first in the app's routes, ahead of the real (endless) stream.
    """

    def stream(request: Request) -> StreamingResponse:
        if not state["on"]:
            raise HTTPException(status_code=404)
        state["token"] = request.query_params.get("token")
        messages = [(entry_id, alert.model_dump_json()) for entry_id, alert in store.read_alerts()]
        messages += [(f"9999999999999-{i}", json.dumps(a)) for i, a in enumerate(state["extra"])]  # type: ignore[arg-type]
        body = "".join(f"event: alert\nid: {i}\ndata: {d}\n\n" for i, d in messages)
        # A long retry: the browser does not reconnect within the virtual-time budget.
        return StreamingResponse(
            iter([body + "retry: 3600000\n\n"]), media_type="text/event-stream"
        )

    app.add_api_route(STREAM, stream, methods=["GET"])
    app.router.routes.insert(0, app.router.routes.pop())


@pytest.fixture
def served(redis_url: str, tmp_path: Path) -> Iterator[Served]:
    """create_app() on its own namespace, the dashboard included, under uvicorn in a thread."""
    settings = make_settings(redis_url, tmp_path / "var")
    app = create_app(settings)
    store = app.state.store
    if SUMMARY not in set(_paths(app.routes)):  # until create_app() mounts it
        app.include_router(dashboard.router(store))
    state: dict[str, object] = {"on": True, "extra": [], "token": None}
    _stand_in_stream(app, store, state)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=3,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True, name="uvicorn")
    thread.start()
    wait_until(lambda: server.started, timeout=20, what="uvicorn to start")
    try:
        yield Served(f"http://127.0.0.1:{port}", store, app, state)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        store.drop_namespace()


def _alert(i: int, actor: tuple, latency_s: float) -> Alert:
    actor_id, name, language, title, snippet, events = actor
    ingested = time.time() - 60 + i

    def iso(t: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"

    return Alert(
        alert_id=f"alert-{i}",
        article_id=f"article-{i}",
        story_id=f"story-{i}",
        actor_id=actor_id,
        actor_name=name,
        spans=[Span(text=name, start=0, end=len(name))],
        snippet=snippet,
        language=language,
        title=title,
        url=f"https://news.example/{i}",
        event_types=events,
        ingested_at=iso(ingested),
        alerted_at=iso(ingested + latency_s),
    )


def _seed(store: Store) -> str:
    """Counters, workers, a dead letter and three alerts, as a running deployment leaves them.

    Returns an API token that may read the alerts (scope read:all).
    """
    for name, n in {
        "accepted": 130,
        "ingested": 120,
        "duplicates": 7,
        "extracted": 113,
        "completed": 110,
        "dead_lettered": 2,
    }.items():
        store.count(name, n)
    for kind in ("ingest", "extract", "alert"):
        store.register_worker(f"{kind}.4242.1@pantau-test", kind, 4242, "pantau-test")
    store.dead_letter(
        {"task": "pantau.extract.extract_batch", "args": ["article-x"], "error": "ValueError: test"}
    )
    for i, (actor, latency) in enumerate(zip(ACTORS, (0.21, 0.34, 0.52), strict=True)):
        assert store.append_alert_once(_alert(i, actor, latency))
    store.count("alerts", len(ACTORS))
    _, token = new_token()
    store.save_token(TokenRecord.for_token(token, ["read:all"], note="dashboard test"))
    return token


def _count_step(store: Store, step: int) -> None:
    """Counters moving as a busy pipeline moves them."""
    store.count("accepted", 4 + step % 5)
    store.count("ingested", 3 + step % 4)
    store.count("extracted", 3 + step % 3)
    store.count("completed", 2 + (step * 7) % 5)


def _keep_counting(store: Store, stop: threading.Event) -> None:
    step = 0
    while not stop.wait(0.1):
        _count_step(store, step)
        step += 1


def _chromium(args: list[str], url: str, profile: Path) -> tuple[int, str, str]:
    """Run headless Chromium once; its whole process group is killed if it outlives the timeout."""
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        "--window-size=1280,900",
        "--virtual-time-budget=5000",
        *args,
        url,
    ]
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # its renderer and helpers too
        process.communicate()
        pytest.fail("chromium did not finish within 90 s")
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    return process.returncode, out, err


def test_percentile_nearest_rank() -> None:
    values = sorted(float(v) for v in range(1, 101))
    assert dashboard.percentile(values, 50) == 50
    assert dashboard.percentile(values, 99) == 99
    assert dashboard.percentile([0.3], 95) == 0.3
    assert dashboard.percentile([], 50) is None


def test_rate_ring_is_bounded_and_rates_follow_counters() -> None:
    ring = dashboard.RateRing(maxlen=5)
    for i in range(50):
        ring.add(float(i), {"ingested": 10 * i}, min_interval_s=1.0)
    assert len(ring.samples) == 5
    assert ring.series("ingested") == [10.0] * 4
    assert ring.rates(50.0, {"ingested": 500}, window_s=10.0) == {"ingested": 10.0}
    ring.add(49.5, {"ingested": 495}, min_interval_s=1.0)  # too close to the last: not stored
    assert len(ring.samples) == 5 and ring.samples[-1][0] == 49.0


def test_summary_and_assets(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    token = _seed(served.store)
    status, headers, body = served.get("/")
    assert status == 200 and b'src="static/dashboard.js"' in body
    assert "default-src 'none'" in headers["content-security-policy"]
    for asset, kind in (("dashboard.js", "javascript"), ("dashboard.css", "text/css")):
        status, headers, body = served.get(f"/static/{asset}")
        assert status == 200 and kind in headers["content-type"] and body
    assert served.get("/static/..%2Fdashboard.py")[0] == 404
    assert served.get("/static/index.htm")[0] == 404

    # Numbers are public like /v1/status; alert content needs a token that grants read:all.
    anonymous = served.summary()
    assert anonymous["alert_access"] == "missing" and anonymous["recent_alerts"] == []
    assert anonymous["latency"]["samples"] == 3
    _, stranger = new_token()
    assert served.summary(stranger)["alert_access"] == "refused"
    _, narrow = new_token()
    served.store.save_token(TokenRecord.for_token(narrow, ["subscription:sub_1"]))
    assert served.summary(narrow)["recent_alerts"] == []

    monkeypatch.setattr(dashboard, "MIN_SAMPLE_INTERVAL_S", 0.0)
    for _ in range(dashboard.MAX_SAMPLES + 20):  # a page left open: the ring stays bounded
        served.summary()
        served.store.count("ingested", 2)
    data = served.summary(token)
    assert data["alert_access"] == "ok"
    stages = {s["stage"]: s for s in data["stages"]}
    assert list(stages) == ["ingest", "extract", "alert"]
    assert stages["ingest"]["count"] == 120 + 2 * (dashboard.MAX_SAMPLES + 20)
    assert stages["ingest"]["rate"] > 0 and stages["alert"]["rate"] == 0
    assert len(stages["ingest"]["series"]) == dashboard.MAX_SAMPLES - 1
    assert stages["extract"]["count"] == 113 and stages["alert"]["count"] == 110
    assert stages["ingest"]["workers_alive"] == 1
    assert data["dead_letter_depth"] == 1 and data["counters"]["dead_lettered"] == 2
    assert data["latency"]["samples"] == 3
    assert data["latency"]["p50"] == pytest.approx(0.34, abs=0.005)
    assert data["latency"]["p99"] == pytest.approx(0.52, abs=0.005)
    assert [a["actor_name"] for a in data["recent_alerts"]] == [
        "Vladimir Putin",
        "Kim Jong Un",
        "Prabowo Subianto",
    ]


@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)",
)
def test_dashboard_in_headless_chromium(
    served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = _seed(served.store)
    # Some history for the sparklines: counters moving between polls.
    monkeypatch.setattr(dashboard, "MIN_SAMPLE_INTERVAL_S", 0.05)
    for step in range(16):
        served.summary()
        _count_step(served.store, step)
        time.sleep(0.06)

    live_only = {
        "alert_id": "live-1",
        "article_id": "article-live",
        "actor_id": "anwar-ibrahim",
        "actor_name": "Anwar Ibrahim",
        "snippet": "Anwar Ibrahim spoke in Putrajaya.",
        "title": "Anwar visits Jakarta",
        "url": "https://news.example/live",
        "language": "en",
        "alerted_at": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "event_types": [],
    }
    served.stream.update(on=True, extra=[live_only])
    page = f"{served.url}/#token={token}"  # the page keeps the token and drops it from the URL

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    stop = threading.Event()
    busy = threading.Thread(target=_keep_counting, args=(served.store, stop), daemon=True)
    busy.start()  # a pipeline at work while the screenshot is taken
    try:
        code, _, err = _chromium([f"--screenshot={SCREENSHOT}"], page, tmp_path / "p1")
    finally:
        stop.set()
        busy.join()
    assert code == 0 and SCREENSHOT.exists() and SCREENSHOT.stat().st_size > 10_000, err[-2000:]

    final = served.summary()["counters"]
    code, dom, err = _chromium(["--dump-dom"], page, tmp_path / "p2")
    assert code == 0 and "<html" in dom, err[-2000:]
    assert served.stream["token"] == token  # EventSource sends it as ?token=

    def field(stage: str, name: str) -> str:
        card = re.search(rf'id="stage-{stage}".*?</article>', dom, re.S)
        assert card, f"no card for {stage}"
        value = re.search(rf'data-field="{name}"[^>]*>([^<]*)<', card.group(0))
        assert value, f"no {name} in the {stage} card"
        return value.group(1)

    assert _element(dom, "conn") == (' id="conn" class="pill pill-ok"', "connected")
    for stage in ("ingest", "extract", "alert"):
        assert f"<h2>{stage}</h2>" in dom
        assert field(stage, "workers") == "1/1 alive"
        assert field(stage, "queue") == "0"
        assert float(field(stage, "rate")) > 0
    assert field("ingest", "count") == f"{final['ingested']:,}"
    assert field("extract", "count") == f"{final['extracted']:,}"
    assert field("alert", "count") == f"{final['completed']:,}"
    assert re.search(rf'<th>accepted</th><td class="num">{final["accepted"]:,}<', dom)
    assert _element(dom, "dlq")[1] == "1" and _element(dom, "lat-p50")[1] == "340 ms"
    assert _element(dom, "workers-alive") == (' class="big ok" id="workers-alive"', "3 / 3")
    for name in [a[1] for a in ACTORS] + ["Anwar Ibrahim"]:  # the last one came only by SSE
        assert f'<span class="actor">{name}</span>' in dom
    assert dom.count('<li class="alert"') == len(ACTORS) + 1
    assert _element(dom, "live") == (' id="live" class="pill pill-ok"', "live")

    served.stream.update(on=False)  # no stream endpoint: alerts from the summary, and a notice
    code, dom, err = _chromium(["--dump-dom"], page, tmp_path / "p3")
    assert code == 0, err[-2000:]
    assert _element(dom, "live")[1] == "live alerts unavailable"
    assert dom.count('<li class="alert"') == len(ACTORS)
    assert f'<span class="actor">{ACTORS[0][1]}</span>' in dom

    code, dom, err = _chromium(["--dump-dom"], served.url + "/", tmp_path / "p4")  # no token
    assert code == 0, err[-2000:]
    assert _element(dom, "live")[1] == "live alerts need a token"
    assert '<form id="token-form" class="token-form">' in dom  # shown, not hidden
    assert '<li class="alert"' not in dom and ACTORS[0][1] not in dom
    assert _element(dom, "dlq")[1] == "1"
