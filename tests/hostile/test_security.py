"""Security properties: authenticated writes, tokens kept out of logs, Standard Webhooks
signatures, the SSRF guard, the compose file's Redis, and no pickle on the queues."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import logging
import os
import pickle
import re
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import uvicorn
import yaml
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from kombu import Connection, Queue
from pydantic import ValidationError

from tests.conftest import ROOT
from tests.integration.conftest import (
    Pipeline,
    make_settings,
    make_token,
    redis_url,
    running_pipeline,
    wait_until,
)
from workers import app as celery_app
from workers.alert.subscriptions import SubscriptionIn, new_secret
from workers.alert.webhooks import SignatureError, deliver, sign, signed_headers, verify
from workers.api.app import create_app
from workers.api.subscriptions import create_subscription
from workers.auth import RedactingFilter, redact
from workers.domain import RawArticle
from workers.errors import InputError
from workers.ingest.fetch import fetch
from workers.ingest.normalise import normalise
from workers.ingest.tasks import send_articles
from workers.ingest.urls import OutboundPolicy
from workers.runtime import free_port

__all__ = ["redis_url"]  # the session Redis fixture, imported for this folder


@pytest.fixture(scope="module")
def api(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    app = create_app(make_settings(redis_url, tmp_path_factory.mktemp("security")))
    try:
        yield app
    finally:
        app.state.store.drop_namespace()


@pytest.fixture(scope="module")
def pipeline(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    """Real workers of the three kinds for this module only (stopped at its end)."""
    data_dir = tmp_path_factory.mktemp("pickle")
    feeds = data_dir / "feeds.yaml"
    feeds.write_text("feeds: []\n")
    with running_pipeline(make_settings(redis_url, data_dir, feeds=feeds), redis_url) as running:
        yield running


def _walk(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, set[str]]]:
    """(path, methods) of every route, through included routers (FastAPI >= 0.16x nests them)."""
    for route in routes:
        if hasattr(route, "original_router"):  # an included router: its prefix + its routes
            yield from _walk(route.original_router.routes, prefix + route.include_context.prefix)
        elif isinstance(route, APIRoute) or hasattr(route, "methods"):
            yield prefix + route.path, set(route.methods or ())


def _write_routes(app: FastAPI) -> list[tuple[str, str]]:
    routes = []
    for path, methods in _walk(app.routes):
        for method in sorted(methods & {"POST", "PUT", "PATCH", "DELETE"}):
            routes.append((method, re.sub(r"\{[^}]+\}", "x1", path)))
    # Every documented write must have been found by the walk as well.
    for path, operations in app.openapi()["paths"].items():
        for method in operations:
            if method.upper() in {"POST", "PUT", "PATCH", "DELETE"}:
                assert (method.upper(), re.sub(r"\{[^}]+\}", "x1", path)) in routes, path
    return routes


# Authentication --------------------------------------------------------------------------------


def test_every_write_route_refuses_requests_without_a_valid_token(api: FastAPI) -> None:
    routes = _write_routes(api)
    assert ("POST", "/v1/articles") in routes and ("POST", "/v1/subscriptions") in routes
    assert len(routes) >= 5, routes
    reader = make_token(api.state.store, "read:all")
    with TestClient(api) as client:
        for method, path in routes:
            body: Any = {"text": "Putin tiba."} if path == "/v1/articles" else {"channel": "sse"}
            for headers, wanted in (
                ({}, 401),
                ({"Authorization": "Bearer pt_0123456789abcdef_" + "A" * 43}, 401),
                ({"Authorization": "Basic YWRtaW46YWRtaW4="}, 401),
                (reader, 403),
            ):
                response = client.request(method, path, json=body, headers=headers)
                assert response.status_code == wanted, (method, path, headers, response.text)
    # Nothing was written by the refused requests.
    assert api.state.store.subscriptions() == []
    assert api.state.store.counters()["accepted"] == 0


# Tokens in logs --------------------------------------------------------------------------------


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        # httpx's own INFO line is the test's client logging its request URL, not the server.
        if not record.name.startswith(("httpx", "httpcore")):
            self.lines.append(self.format(record))


@pytest.fixture
def captured() -> Iterator[_Capture]:
    handler = _Capture()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_tokens_never_reach_the_application_logs(api: FastAPI, captured: _Capture) -> None:
    admin = make_token(api.state.store)
    token = admin["Authorization"].split()[1]
    wrong = token[:-4] + "AAAA"
    with TestClient(api) as client:
        client.post("/v1/articles", json={"text": "Putin tiba di Moskow."}, headers=admin)
        client.post(
            "/v1/articles",
            content=b"{not json",
            headers={**admin, "Content-Type": "application/json"},
        )
        client.get("/v1/alerts", headers={"Authorization": f"Bearer {wrong}"})
        client.get(f"/v1/alerts?token={token}")
        created = client.post(
            "/v1/subscriptions",
            headers=admin,
            json={"actors_any": ["xi-jinping"], "channel": "sse"},
        ).json()
        client.get("/v1/subscriptions", headers=admin)
        client.get("/v1/alerts", headers={"Authorization": f"Bearer {created['token']}"})
    text = "\n".join(captured.lines)
    for secret in (token, token.rsplit("_", 1)[1], wrong, created["token"], created["secret"]):
        assert secret not in text


def test_redacting_filter_masks_tokens_and_secrets() -> None:
    token = "pt_0123456789abcdef_" + "Z" * 43
    secret = new_secret()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    log = logging.getLogger("pantau.test.redaction")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning(
            "GET /v1/alerts/stream?token=%s Authorization: Bearer %s %s", token, token, secret
        )
    finally:
        log.removeHandler(handler)
    out = stream.getvalue()
    assert token not in out and secret not in out and "pt_0123456789abcdef_[redacted]" in out
    assert redact(f"Bearer {token}") == "Bearer [redacted]"


def test_shipped_api_process_does_not_write_access_logs() -> None:
    """`pantau up` serves the API with uvicorn at --log-level warning: no access log lines, so
    an EventSource `?token=` never reaches a log file in the shipped configuration."""
    import inspect

    from workers.runtime import Deployment

    source = inspect.getsource(Deployment.start_api)
    assert re.search(r'"--log-level",\s*"warning"', source), "uvicorn access logs would be on"


def _installed_redacting_filter() -> bool:
    loggers = [
        logging.getLogger(),
        *[
            logging.getLogger(n)
            for n in ("uvicorn", "uvicorn.access", "uvicorn.error", "celery", "workers")
        ],
    ]
    for logger in loggers:
        for holder in (logger, *logger.handlers):
            if any(isinstance(f, RedactingFilter) for f in holder.filters):
                return True
    return False


def test_access_log_at_info_level_redacts_query_tokens(api: FastAPI) -> None:
    admin = make_token(api.state.store)
    token = admin["Authorization"].split()[1]
    handler = _Capture()
    access = logging.getLogger("uvicorn.access")
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(api, host="127.0.0.1", port=port, log_level="info", access_log=True)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, 30, "the API to start")
        access.addHandler(handler)
        import httpx

        httpx.get(f"http://127.0.0.1:{port}/v1/alerts?token={token}", timeout=10)
        time.sleep(0.2)
    finally:
        access.removeHandler(handler)
        server.should_exit = True
        thread.join(timeout=10)
    assert handler.lines, "no access log line at all"
    assert token not in "\n".join(handler.lines)


# Webhook signatures (Standard Webhooks) ---------------------------------------------------------


def _independent_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def test_webhook_signature_matches_an_independent_hmac() -> None:
    secret = new_secret()
    body = json.dumps({"type": "alert.created", "x": "ü"}, ensure_ascii=False).encode()
    stamp = int(time.time())
    expected = _independent_signature(secret, "msg_abc", stamp, body)
    assert sign(secret, "msg_abc", stamp, body) == expected
    headers = signed_headers(secret, "msg_abc", stamp, body)
    assert headers == {
        "webhook-id": "msg_abc",
        "webhook-timestamp": str(stamp),
        "webhook-signature": expected,
    }
    verify(secret, headers, body)
    verify(secret, {**headers, "webhook-signature": f"v1a,xyz {expected}"}, body)  # rotation list
    for bad in (
        {
            **headers,
            "webhook-signature": _independent_signature(new_secret(), "msg_abc", stamp, body),
        },
        {**headers, "webhook-id": "msg_other"},
        {**headers, "webhook-timestamp": str(stamp + 1)},
    ):
        with pytest.raises(SignatureError):
            verify(secret, bad, body)
    with pytest.raises(SignatureError):
        verify(secret, headers, body + b" ")
    old = stamp - 3600
    with pytest.raises(SignatureError):
        verify(secret, signed_headers(secret, "msg_abc", old, body), body)


def test_a_real_delivery_verifies_with_the_independent_hmac() -> None:
    seen: list[tuple[dict[str, str], bytes]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    secret = new_secret()
    try:
        result = deliver(
            f"http://127.0.0.1:{server.server_address[1]}/hook",
            b'{"a":1}',
            msg_id="msg_real",
            secret=secret,
            policy=OutboundPolicy.from_setting("127.0.0.1"),
        )
    finally:
        server.shutdown()
        server.server_close()
    assert result.delivered
    headers, body = seen[0]
    assert headers["webhook-signature"] == _independent_signature(
        secret, headers["webhook-id"], int(headers["webhook-timestamp"]), body
    )
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60


# SSRF -------------------------------------------------------------------------------------------

REFUSED = [
    "http://127.0.0.1/",
    "http://127.1.2.3:8080/x",
    "http://localhost/",
    "http://[::1]/",
    "http://0.0.0.0/",
    "http://[::]/",
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fe80::1]/",
    "http://[fd00:ec2::254]/",
    "http://metadata.google.internal/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[2002:7f00:1::]/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://224.0.0.1/",
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_INFO",
    "ftp://10.0.0.1/",
    "http:///nohost",
]


@pytest.mark.parametrize("url", REFUSED)
def test_ssrf_targets_refused_for_feeds_and_webhooks(
    url: str, redis_url: str, tmp_path: Path
) -> None:
    policy = OutboundPolicy.from_setting("")
    with pytest.raises(InputError):
        policy.check(url)
    with pytest.raises(InputError):
        fetch(url, policy=policy, max_bytes=1024)
    result = deliver(url, b"{}", msg_id="msg_x", secret=new_secret(), policy=policy)
    assert not result.delivered and not result.retry
    from workers.store import Store

    store = Store.connect(redis_url, make_settings(redis_url, tmp_path))
    try:
        with pytest.raises((InputError, ValidationError)):  # the model or the guard refuses
            create_subscription(
                store,
                SubscriptionIn(actors_any=["xi-jinping"], channel="webhook", webhook_url=url),
                policy,
            )
        assert store.subscriptions() == []
    finally:
        store.drop_namespace()


def test_loopback_only_when_allow_listed_and_redirects_rechecked() -> None:
    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_POST = do_GET

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/feed"
    try:
        with pytest.raises(InputError):
            OutboundPolicy.from_setting("").check(url)
        allowed = OutboundPolicy.from_setting("127.0.0.1")
        allowed.check(url)  # allow-listed: passes the guard
        with pytest.raises(InputError) as refused:
            fetch(url, policy=allowed, max_bytes=1024)
        assert "169.254.169.254" in str(refused.value)
        # The webhook client never follows a redirect at all.
        result = deliver(url, b"{}", msg_id="msg_r", secret=new_secret(), policy=allowed)
        assert result.status == 302 and not result.delivered and not result.retry
    finally:
        server.shutdown()
        server.server_close()


# Deployment files -------------------------------------------------------------------------------


def test_compose_redis_requires_a_password_and_is_not_public() -> None:
    path = next(
        (
            p
            for p in (
                ROOT / "docker-compose.yml",
                ROOT / "compose.yaml",
                ROOT / "docker-compose.yaml",
                ROOT / "compose.yml",
            )
            if p.exists()
        ),
        None,
    )
    if path is None:
        pytest.skip("no docker-compose.yml in the repository: nothing to check")
    services = yaml.safe_load(path.read_text())["services"]
    redis_services = {
        name: s
        for name, s in services.items()
        if "redis" in name or "redis" in str(s.get("image", ""))
    }
    assert redis_services, "no Redis service in the compose file"
    for name, service in redis_services.items():
        command = service.get("command") or ""
        command = " ".join(command) if isinstance(command, list) else str(command)
        environment = json.dumps(service.get("environment") or {})
        assert "--requirepass" in command or "REDIS_PASSWORD" in environment, name
        if "--requirepass" in command:  # from the environment, never a literal in the file
            password = command.split("--requirepass", 1)[1].split()[0]
            assert password.startswith("${") and ":?" in password, (name, "hard-coded password")
        for port in service.get("ports") or []:
            text = str(
                port
                if not isinstance(port, dict)
                else port.get("host_ip", "") + ":" + str(port.get("published", ""))
            )
            assert text.startswith(("127.0.0.1:", "[::1]:", "localhost:")), (name, port)


# Pickle -----------------------------------------------------------------------------------------


class _Canary:
    """Unpickling this creates a directory: proof that a worker deserialised pickle."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.mkdir, (str(self.path),))


def test_pickle_messages_are_refused_by_a_running_worker(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    store = pipeline.store
    canary = tmp_path / "pickle-was-loaded"
    article_id = f"pickle-{uuid.uuid4().hex[:8]}"
    task_id = str(uuid.uuid4())
    record = {
        "id": article_id,
        "text": "Vladimir Putin tiba di Moskow pada Senin.",
        "content_hash": "0" * 64,
        "ingested_at": "2026-01-01T00:00:00Z",
        "canary": _Canary(canary),
    }
    headers = {
        "lang": "py",
        "task": "pantau.ingest.ingest_articles",
        "id": task_id,
        "root_id": task_id,
        "parent_id": None,
        "group": None,
        "retries": 0,
        "eta": None,
        "expires": None,
        "argsrepr": "[...]",
        "kwargsrepr": "{}",
        "origin": "attacker",
    }
    body = (([record],), {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None})
    with Connection(
        pipeline.deployment.redis_url,
        transport_options={"global_keyprefix": f"{pipeline.settings.namespace}:"},
    ) as connection:
        producer = connection.Producer()
        producer.publish(
            pickle.dumps(body),
            exchange="",
            routing_key="ingest",
            headers=headers,
            declare=[Queue("ingest")],
            content_type="application/x-python-serialize",
            content_encoding="binary",
        )
    log = pipeline.settings.data_dir / "logs" / "ingest.log"
    wait_until(
        lambda: (
            "refusing to deserialize untrusted content" in log.read_text(errors="replace").lower()
            and store.queue_depths()["ingest"] == 0
        ),
        60,
        "the worker to refuse the message",
    )
    time.sleep(1)
    assert not canary.exists(), "a worker unpickled the message"
    assert not store.is_ingested(article_id)
    assert not store.redis.exists(store.key("article", article_id))
    assert store.redis.get(store.key("deliveries", task_id, "0")) is None, "the task ran"
    assert pipeline.deployment.dead_processes() == []
    # The worker keeps working: a JSON message after the refused one completes. (Other tests
    # of this module pointed this process's Celery at another namespace: point it back.)
    celery_app.configure(pipeline.settings, pipeline.deployment.redis_url)
    article = normalise(
        RawArticle(text=f"Xi Jinping tiba di Beijing {uuid.uuid4().hex}."), max_chars=10_000
    )
    send_articles([article])
    wait_until(lambda: store.is_completed(article.id), 120, "a JSON article after the pickle one")
