"""Hostile input to the HTTP API and the ingest paths: schema fuzzing plus hand-made attacks.

The API runs on a real Redis (the `redis_url` fixture); no worker consumes, so accepted
articles just wait in this test's namespace, which is dropped at the end.
"""

from __future__ import annotations

import gzip
import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation.modes import GenerationMode

from tests.integration.conftest import make_settings, make_token, redis_url, wait_until
from workers import app as celery_app
from workers.api.app import create_app
from workers.errors import PantauError
from workers.ingest import urls
from workers.ingest.fetch import fetch
from workers.ingest.urls import OutboundPolicy
from workers.runtime import free_port

__all__ = ["redis_url"]  # the session Redis fixture, imported for this folder
GB = 1024**3


def _no_dns(host: str, port: int) -> list[str]:
    """Fuzzed webhook URLs must not leave the machine: only localhost resolves."""
    if host in ("localhost", "localhost.localdomain"):
        return ["127.0.0.1"]
    raise socket.gaierror(socket.EAI_NONAME, "not resolved in tests")


@pytest.fixture(scope="module")
def api(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    """The API on the session's Redis, in its own namespace, with an admin token."""
    patch = pytest.MonkeyPatch()
    patch.setattr(urls, "_system_resolver", _no_dns)
    app = create_app(make_settings(redis_url, tmp_path_factory.mktemp("api")))
    app.state.admin = make_token(app.state.store)
    try:
        yield app
    finally:
        app.state.store.drop_namespace()
        patch.undo()
        celery_app.app._pool = None  # the next configure() must not reuse this namespace
        if "amqp" in celery_app.app.__dict__:
            celery_app.app.__dict__["amqp"]._producer_pool = None


@pytest.fixture(scope="module")
def client(api: FastAPI) -> Iterator[TestClient]:
    with TestClient(api) as test_client:
        test_client.headers.update(api.state.admin)
        yield test_client


@pytest.fixture(scope="module")
def server(api: FastAPI) -> Iterator[str]:
    """The same app served by uvicorn: streamed bodies need a real socket."""
    port = free_port()
    running = uvicorn.Server(uvicorn.Config(api, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    wait_until(lambda: running.started, 30, "the API to start")
    yield f"127.0.0.1:{port}"
    running.should_exit = True
    thread.join(timeout=10)


# Schema fuzzing ------------------------------------------------------------------------------


FUZZ_EXAMPLES = 30  # per operation and generation mode (schema-valid, schema-violating)


@pytest.mark.timeout(400)
def test_fuzz_no_server_error(api: FastAPI) -> None:
    """Every operation but the SSE stream, schema-driven inputs with an admin token: never a
    5xx, never a hang (10 s per request). schemathesis' own pytest loader does not run under
    pytest 9 (`Function._nodeid`), so the operations are driven with hypothesis directly."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", api).exclude(
        path="/v1/alerts/stream"  # SSE: an endless response by design
    )
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10, [op.label for op in operations]
    statuses: dict[str, set[int]] = {}

    plan = [(op, mode) for op in operations for mode in GenerationMode]  # valid and invalid
    for operation, mode in plan:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=FUZZ_EXAMPLES,
            deadline=10_000,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def no_server_error(case: Any) -> None:
            started = time.monotonic()
            response = case.call(headers=api.state.admin)
            assert time.monotonic() - started < 10, f"{case.method} {case.path} took too long"
            statuses.setdefault(case.operation.label, set()).add(response.status_code)
            # 503 is the push API's documented back-pressure/outage answer, not a crash.
            assert response.status_code < 500 or (
                response.status_code == 503 and case.path == "/v1/articles"
            ), (
                f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
            )

        try:
            no_server_error()
        except Unsatisfiable:
            # Nothing to violate (an operation without parameters or body) in negative mode.
            assert mode is GenerationMode.NEGATIVE, operation.label
    # The token works: the fuzzer got past authentication (some 2xx) on most operations.
    authorised = [label for label, codes in statuses.items() if any(c < 300 for c in codes)]
    print(json.dumps({label: sorted(codes) for label, codes in statuses.items()}, indent=1))
    assert len(authorised) >= len(operations) // 2, statuses


# Oversized and endless bodies ---------------------------------------------------------------


def _read_status(sock: socket.socket, timeout_s: float = 20) -> int:
    sock.settimeout(timeout_s)
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else -1


def _headers(host: str, token: dict[str, str], extra: str) -> bytes:
    return (
        f"POST /v1/articles HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Authorization: {token['Authorization']}\r\n{extra}\r\n"
    ).encode()


def test_one_gigabyte_declared_is_refused_before_reading(server: str, api: FastAPI) -> None:
    """Content-Length: 1 GB: 413 after a few KB, without waiting for the body."""
    host, port = server.split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        sock.sendall(_headers(server, api.state.admin, f"Content-Length: {GB}\r\n"))
        sock.sendall(b'{"text": "' + b"a" * 65536)
        assert _read_status(sock) == 413
    assert time.monotonic() - started < 10


def test_endless_chunked_body_is_cut_off_at_the_limit(server: str, api: FastAPI) -> None:
    """No Content-Length (chunked): the server stops reading past max_request_bytes (10 MB)."""
    host, port = server.split(":")
    chunk = b"a" * 65536
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    sent = 0
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        sock.sendall(_headers(server, api.state.admin, "Transfer-Encoding: chunked\r\n"))
        sock.sendall(b"1\r\n[\r\n")
        status = None
        while sent < GB and time.monotonic() - started < 60:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                status = _read_status(sock)
                break
            try:
                sock.sendall(frame)
            except (BrokenPipeError, ConnectionResetError):
                status = _read_status(sock)
                break
            sent += len(chunk)
        assert status == 413, f"status {status} after {sent} bytes"
    assert sent < 64 * 1024 * 1024, f"the server read {sent} bytes before refusing"


def test_content_encoding_is_not_decoded(client: TestClient) -> None:
    """A gzip/deflate bomb is harmless: Starlette never inflates request bodies, so the
    compressed bytes reach the parser as they are and are refused as not-JSON."""
    payload = b'[{"text": "' + b"a" * (50 * 1024 * 1024) + b'"}]'
    for encoding, squeezed in (
        ("gzip", gzip.compress(payload, 9)),
        ("deflate", zlib.compress(payload, 9)),
    ):
        assert len(squeezed) < 200_000
        started = time.monotonic()
        response = client.post(
            "/v1/articles",
            content=squeezed,
            headers={"Content-Type": "application/json", "Content-Encoding": encoding},
        )
        assert response.status_code == 400, response.text
        assert time.monotonic() - started < 5


def test_deeply_nested_json_is_refused(client: TestClient) -> None:
    for body in ("[" * 100_000 + "]" * 100_000, '{"a":' * 50_000 + "1" + "}" * 50_000):
        response = client.post(
            "/v1/articles", content=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400, response.text[:300]


def test_hundred_thousand_tiny_articles_refused_in_bounded_time(client: TestClient) -> None:
    body = "".join(json.dumps({"text": f"a{i}"}) + "\n" for i in range(100_000))
    started = time.monotonic()
    response = client.post(
        "/v1/articles", content=body, headers={"Content-Type": "application/x-ndjson"}
    )
    assert response.status_code == 413, response.text[:300]
    assert "at most" in response.json()["error"]
    assert time.monotonic() - started < 30
    queued = client.app.state.store.redis.llen(client.app.state.store.key("ingest"))
    assert queued < 100, "a refused request must enqueue nothing"


def test_non_utf8_and_binary_bodies(client: TestClient) -> None:
    for body in (b"\xff\xfe\xfa\x00\x01\x02" * 100, bytes(range(256)) * 10, b"\x80\x81\x82"):
        response = client.post(
            "/v1/articles", content=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code in (400, 415), response.text[:300]
    # Windows-1252 that is valid JSON is read (with a warning), not crashed on.
    latin = '{"text": "Caf\u00e9 di Jakarta pada Senin pagi ramai pengunjung."}'.encode("cp1252")
    assert (
        client.post(
            "/v1/articles", content=latin, headers={"Content-Type": "application/json"}
        ).status_code
        == 202
    )


# Ingest paths outside the API ---------------------------------------------------------------

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><title>&lol9;</title>
<item><title>&lol9;</title><description>&lol9;</description></item>
</channel></rss>
"""


def test_billion_laughs_feed_refused_by_dry_run(tmp_path: Path) -> None:
    feed = tmp_path / "lolz.xml"
    feed.write_text(BILLION_LAUGHS)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PANTAU_")}
    env["PANTAU_DATA_DIR"] = str(tmp_path / "var")
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "workers.cli", "ingest", "--dry-run", str(feed)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, (done.stdout[-500:], done.stderr[-500:])
    assert done.stdout == ""
    reason = [line for line in done.stderr.splitlines() if line.strip()]
    assert reason and any("entities" in line or "refused" in line for line in reason), done.stderr
    assert "lollol" not in done.stderr
    assert time.monotonic() - started < 60


class _Bomb(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(_Bomb.body)))
        self.end_headers()
        self.wfile.write(_Bomb.body)

    def log_message(self, *_: object) -> None:
        pass


def test_decompression_bomb_fetch_is_bounded() -> None:
    """256 MB of zeros gzipped to ~250 KB: fetch stops at max_bytes, quickly, small memory."""
    squeeze = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b"\0" * (1024 * 1024)
    _Bomb.body = b"".join(squeeze.compress(block) for _ in range(256)) + squeeze.flush()
    assert len(_Bomb.body) < 1_000_000
    bomb = ThreadingHTTPServer(("127.0.0.1", 0), _Bomb)
    threading.Thread(target=bomb.serve_forever, daemon=True).start()
    try:
        started = time.monotonic()
        with pytest.raises(PantauError) as refused:
            fetch(
                f"http://127.0.0.1:{bomb.server_address[1]}/feed.xml",
                policy=OutboundPolicy.from_setting("127.0.0.1"),
                max_bytes=1024 * 1024,
            )
        assert time.monotonic() - started < 10
        assert "byte" in str(refused.value) or "large" in str(refused.value), refused.value
    finally:
        bomb.shutdown()
        bomb.server_close()
