"""Subscriptions end to end: webhooks (signed, retried, dead-lettered), SSE, history, evidence."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import httpx
import pytest
import uvicorn

from tests.integration.conftest import Pipeline, make_token, wait_until
from workers.alert.webhooks import verify
from workers.api.app import create_app
from workers.app import app as celery_app
from workers.dlq import replay
from workers.domain import RawArticle
from workers.ingest.normalise import normalise
from workers.ingest.tasks import send_articles


class Receiver(BaseHTTPRequestHandler):
    """A webhook receiver: records every request; answers from a per-path script of statuses."""

    received: ClassVar[list[dict[str, Any]]] = []
    script: ClassVar[dict[str, list[int]]] = {}

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append({"path": self.path, "headers": dict(self.headers), "body": body})
        statuses = Receiver.script.get(self.path) or [200]
        status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture(scope="module")
def receiver() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def api(pipeline: Pipeline) -> Iterator[str]:
    """The API served by uvicorn on a free port (SSE needs a real server)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(pipeline.settings), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 30, "the API to start")
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def _subscribe(api: str, pipeline: Pipeline, **fields: Any) -> dict[str, Any]:
    response = httpx.post(
        f"{api}/v1/subscriptions", json=fields, headers=make_token(pipeline.store)
    )
    assert response.status_code == 201, response.text
    return response.json()


def _push(text: str, url: str | None = None) -> str:
    article = normalise(RawArticle(text=text, url=url), max_chars=100_000)
    send_articles([article])
    return article.id


def _for(path: str) -> list[dict[str, Any]]:
    return [r for r in Receiver.received if r["path"] == path]


def test_webhook_signed_once_per_story_with_retries(
    api: str, pipeline: Pipeline, receiver: str
) -> None:
    Receiver.script["/hook-a"] = [503, 500, 200]
    created = _subscribe(
        api,
        pipeline,
        actors_any=["xi-jinping"],
        channel="webhook",
        webhook_url=f"{receiver}/hook-a",
    )
    assert created["secret"].startswith("whsec_") and created["token"].startswith("pt_")
    text = (
        "Presiden Tiongkok Xi Jinping menerima kunjungan Perdana Menteri Malaysia di Beijing "
        "pada Senin untuk membahas perdagangan dan investasi kedua negara di kawasan."
    )
    _push(text, "https://berita.example/xi-1")
    wait_until(lambda: len(_for("/hook-a")) == 3, 90, "two retries and a delivery")
    calls = _for("/hook-a")
    assert len({c["headers"]["webhook-id"] for c in calls}) == 1  # same id on every try
    last = calls[-1]
    verify(created["secret"], last["headers"], last["body"])
    message = json.loads(last["body"])
    assert message["type"] == "alert.created" and message["alert"]["actor_id"] == "xi-jinping"

    # A revision of the same story (near-duplicate) does not alert the subscription again.
    _push(text + " Pertemuan berlangsung dua jam.", "https://lain.example/xi-revisi")
    pipeline.wait_idle()
    time.sleep(1)
    assert len(_for("/hook-a")) == 3


def test_webhook_4xx_is_dead_lettered_and_replayable(
    api: str, pipeline: Pipeline, receiver: str
) -> None:
    Receiver.script["/hook-b"] = [404, 200]
    _subscribe(
        api,
        pipeline,
        actors_any=["kim-yo-jong"],
        channel="webhook",
        webhook_url=f"{receiver}/hook-b",
    )
    depth = pipeline.store.dlq_depth()
    _push("Kim Yo Jong mengecam latihan militer gabungan di Semenanjung Korea pada Kamis malam.")
    wait_until(lambda: pipeline.store.dlq_depth() == depth + 1, 60, "the dead letter")
    entry_id, entry = pipeline.store.dead_letters(count=1000)[-1]
    assert entry["task"] == "pantau.alert.deliver_webhook" and "404" in entry["error"]
    assert replay(pipeline.store, celery_app.send_task, [entry_id]) == 1
    wait_until(lambda: len(_for("/hook-b")) == 2, 60, "the replayed delivery")


def test_webhook_to_private_address_refused(api: str, pipeline: Pipeline) -> None:
    for url in ("http://169.254.169.254/latest", "http://10.0.0.1/hook", "ftp://127.0.0.1/x"):
        response = httpx.post(
            f"{api}/v1/subscriptions",
            headers=make_token(pipeline.store),
            json={"actors_any": ["xi-jinping"], "channel": "webhook", "webhook_url": url},
        )
        assert response.status_code in (400, 422), (url, response.text)


def test_sse_stream_resumes_with_last_event_id(api: str, pipeline: Pipeline) -> None:
    created = _subscribe(api, pipeline, actors_any=["vladimir-putin"], channel="sse", cooldown_s=0)
    headers = {"Authorization": f"Bearer {created['token']}"}
    url = f"{api}/v1/alerts/stream?subscription={created['id']}"
    events: list[tuple[str, str]] = []

    def read(extra: dict[str, str], want: int) -> None:
        with httpx.stream("GET", url, headers={**headers, **extra}, timeout=30) as response:
            assert response.status_code == 200
            event_id = None
            for line in response.iter_lines():
                if line.startswith("id:"):
                    event_id = line[3:].strip()
                elif line.startswith("data:") and event_id:
                    events.append((event_id, line[5:].strip()))
                    if len(events) >= want:
                        return

    reader = threading.Thread(target=read, args=({}, 1), daemon=True)
    reader.start()
    time.sleep(1)
    _push(
        "Vladimir Putin berpidato di Sankt Peterburg tentang ekonomi Rusia dan sanksi Barat hari ini."
    )
    reader.join(timeout=60)
    assert len(events) == 1 and json.loads(events[0][1])["alert"]["actor_id"] == "vladimir-putin"
    _push("Vladimir Putin mengunjungi Vladivostok untuk forum ekonomi timur bersama para investor.")
    pipeline.wait_idle()
    read({"Last-Event-ID": events[0][0]}, 2)  # resumes after the first: gets only the second
    assert len(events) == 2 and events[1][0] > events[0][0]

    other = _subscribe(api, pipeline, actors_any=["xi-jinping"], channel="sse")
    refused = httpx.get(f"{api}/v1/alerts/stream?subscription={other['id']}", headers=headers)
    assert refused.status_code == 403


def test_history_evidence_and_watchlist_changes(api: str, pipeline: Pipeline) -> None:
    admin = make_token(pipeline.store)
    put = httpx.put(
        f"{api}/v1/watchlist/anwar-ibrahim",
        headers=admin,
        json={"name": "Anwar Ibrahim", "type": "PER", "aliases": ["Anwar"]},
    )
    assert put.status_code == 200, put.text
    bad = httpx.put(
        f"{api}/v1/watchlist/x", headers=admin, json={"name": "X", "type": "PER", "colour": 1}
    )
    assert bad.status_code == 400 and "colour" in bad.text
    time.sleep(1.2)  # workers re-read the watchlist version at most once a second
    article_id = _push(
        "Perdana Menteri Malaysia Anwar Ibrahim tiba di Jakarta untuk bertemu Presiden."
    )
    wait_until(lambda: pipeline.store.is_completed(article_id), 60, "the article")
    history = httpx.get(f"{api}/v1/alerts?actor=anwar-ibrahim", headers=admin).json()
    assert [a["article_id"] for a in history["alerts"]] == [article_id]
    evidence = httpx.get(f"{api}/v1/articles/{article_id}", headers=admin).json()
    assert any(e.get("actor_id") == "anwar-ibrahim" for e in evidence["entities"])
    listed = httpx.get(f"{api}/v1/articles?actor=anwar-ibrahim", headers=admin).json()
    assert [a["article_id"] for a in listed["articles"]] == [article_id]
    assert (
        httpx.get(
            f"{api}/v1/alerts", headers=make_token(pipeline.store, "subscription:nope")
        ).status_code
        == 403
    )
    assert httpx.get(f"{api}/v1/alerts").status_code == 401
    assert httpx.delete(f"{api}/v1/watchlist/anwar-ibrahim", headers=admin).status_code == 204
    watchlist = httpx.get(f"{api}/v1/watchlist", headers=admin).json()
    assert "anwar-ibrahim" not in {a["id"] for a in watchlist["actors"]}
