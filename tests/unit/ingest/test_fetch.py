"""fetch() against a local threaded HTTP server on 127.0.0.1 (ephemeral port)."""

from __future__ import annotations

import socket
import threading
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from workers.errors import InputError, PermanentError, TransientError
from workers.ingest.fetch import FetchPermanentError, FetchTransientError, fetch
from workers.ingest.urls import OutboundPolicy

FEED = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Local</title>
<item><title>One</title><link>http://example.com/1</link><description>First item.</description></item>
</channel></rss>"""
ETAG = '"v1"'
LAST_MODIFIED = "Tue, 29 Oct 2024 10:00:00 GMT"
BOMB_SIZE = 32 * 1024 * 1024  # decompressed size of the gzip bomb


def _gzip_bomb() -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b"\0" * (1024 * 1024)
    parts = [compressor.compress(block) for _ in range(BOMB_SIZE // len(block))]
    parts.append(compressor.flush())
    return b"".join(parts)


BOMB = _gzip_bomb()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def do_GET(self) -> None:
        path = self.path
        try:
            if path == "/feed":
                if self.headers.get("If-None-Match") == ETAG:
                    self._send(304, headers={"ETag": ETAG})
                    return
                self._send(
                    200,
                    FEED,
                    {
                        "Content-Type": "application/rss+xml",
                        "ETag": ETAG,
                        "Last-Modified": LAST_MODIFIED,
                    },
                )
            elif path.startswith("/r/"):
                hops = int(path.rsplit("/", 1)[1])
                target = f"/r/{hops - 1}" if hops > 1 else "/feed"
                self._send(302, headers={"Location": target})
            elif path == "/to-internal":
                self._send(301, headers={"Location": "http://10.0.0.1/feed"})
            elif path == "/to-metadata":
                self._send(307, headers={"Location": "http://169.254.169.254/latest/meta-data/"})
            elif path == "/slow":
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("Content-Length", "100000")
                self.end_headers()
                for _ in range(200):  # one byte every 0.1 s: each read is quick, the whole is not
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.1)
            elif path == "/big-declared":
                self._send(200, b"a" * (2 * 1024 * 1024), {"Content-Type": "text/plain"})
            elif path == "/big-undeclared":
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Connection", "close")
                self.end_headers()
                for _ in range(32):
                    self.wfile.write(b"b" * 65536)
                self.close_connection = True
            elif path == "/bomb":
                self._send(
                    200, BOMB, {"Content-Type": "application/rss+xml", "Content-Encoding": "gzip"}
                )
            elif path == "/gzip-feed":
                compressor = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
                body = compressor.compress(FEED) + compressor.flush()
                self._send(
                    200, body, {"Content-Type": "application/rss+xml", "Content-Encoding": "gzip"}
                )
            elif path in ("/deflate-zlib", "/deflate-raw"):
                wbits = zlib.MAX_WBITS if path.endswith("zlib") else -zlib.MAX_WBITS
                compressor = zlib.compressobj(6, zlib.DEFLATED, wbits)
                body = compressor.compress(FEED) + compressor.flush()
                self._send(
                    200,
                    body,
                    {"Content-Type": "application/rss+xml", "Content-Encoding": "deflate"},
                )
            elif path == "/gzip-two-members":
                members = []
                for half in (FEED[:50], FEED[50:]):
                    compressor = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
                    members.append(compressor.compress(half) + compressor.flush())
                self._send(200, b"".join(members), {"Content-Encoding": "gzip"})
            elif path == "/brotli":
                self._send(200, b"\x0b\x02\x80hello\x03", {"Content-Encoding": "br"})
            elif path == "/bad-gzip":
                self._send(
                    200, b"\x1f\x8b\x08\x00garbage-garbage-garbage", {"Content-Encoding": "gzip"}
                )
            elif path == "/500":
                self._send(500, b"oops")
            elif path == "/503-retry":
                self._send(503, b"busy", {"Retry-After": "7"})
            elif path == "/429":
                self._send(429, b"slow down", {"Retry-After": "30"})
            elif path == "/408":
                self._send(408, b"")
            elif path == "/404":
                self._send(404, b"nope")
            elif path == "/410":
                self._send(410, b"gone")
            elif path == "/redirect-no-location":
                self._send(302)
            else:
                self._send(404)
        except (BrokenPipeError, ConnectionResetError):
            pass


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients hang up on purpose here (limits, deadlines)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = QuietServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def policy() -> OutboundPolicy:
    return OutboundPolicy.from_setting("127.0.0.1")


def test_normal_feed(server: str, policy: OutboundPolicy) -> None:
    result = fetch(f"{server}/feed", policy=policy)
    assert result.status == 200
    assert result.body == FEED
    assert result.etag == ETAG
    assert result.last_modified == LAST_MODIFIED
    assert result.content_type == "application/rss+xml"
    assert result.final_url == f"{server}/feed"
    assert not result.not_modified


@pytest.mark.parametrize(
    "path", ["/gzip-feed", "/deflate-zlib", "/deflate-raw", "/gzip-two-members"]
)
def test_compressed_bodies_are_decoded(server: str, policy: OutboundPolicy, path: str) -> None:
    assert fetch(f"{server}{path}", policy=policy).body == FEED


@pytest.mark.parametrize("path", ["/brotli", "/bad-gzip"])
def test_unsupported_or_broken_encoding_is_permanent(
    server: str, policy: OutboundPolicy, path: str
) -> None:
    with pytest.raises(FetchPermanentError, match=r"encoding|undecodable"):
        fetch(f"{server}{path}", policy=policy)


def test_conditional_get_304(server: str, policy: OutboundPolicy) -> None:
    result = fetch(f"{server}/feed", policy=policy, etag=ETAG, last_modified=LAST_MODIFIED)
    assert result.status == 304
    assert result.not_modified
    assert result.body is None
    assert result.etag == ETAG
    assert result.last_modified == LAST_MODIFIED


def test_three_redirects_followed(server: str, policy: OutboundPolicy) -> None:
    result = fetch(f"{server}/r/3", policy=policy)
    assert result.status == 200
    assert result.final_url == f"{server}/feed"
    assert result.body == FEED


def test_four_redirects_refused(server: str, policy: OutboundPolicy) -> None:
    with pytest.raises(PermanentError, match=r"more than 3 redirects"):
        fetch(f"{server}/r/4", policy=policy)


def test_redirect_hops_are_ssrf_checked(server: str, policy: OutboundPolicy) -> None:
    with pytest.raises(InputError) as info:
        fetch(f"{server}/to-internal", policy=policy)  # refused before any connection
    assert info.value.source == "http://10.0.0.1/feed"
    with pytest.raises(InputError, match="metadata"):
        fetch(f"{server}/to-metadata", policy=policy)


def test_first_hop_is_ssrf_checked(server: str) -> None:
    with pytest.raises(InputError, match="loopback"):
        fetch(f"{server}/feed", policy=OutboundPolicy.from_setting(""))


def test_slow_trickle_is_bounded_by_the_deadline(server: str, policy: OutboundPolicy) -> None:
    started = time.monotonic()
    with pytest.raises(TransientError, match="deadline"):
        fetch(f"{server}/slow", policy=policy, timeout=(1.0, 0.5), deadline_s=1.0)
    assert time.monotonic() - started < 3.0


def test_oversized_declared_body(server: str, policy: OutboundPolicy) -> None:
    with pytest.raises(FetchPermanentError, match="exceeds"):
        fetch(f"{server}/big-declared", policy=policy, max_bytes=1024 * 1024)


def test_oversized_streamed_body(server: str, policy: OutboundPolicy) -> None:
    with pytest.raises(FetchPermanentError, match="exceeds"):
        fetch(f"{server}/big-undeclared", policy=policy, max_bytes=1024 * 1024)


def test_gzip_bomb_is_bounded(server: str, policy: OutboundPolicy) -> None:
    assert len(BOMB) < 100 * 1024  # small on the wire ...
    started = time.monotonic()
    tracemalloc.start()
    try:
        with pytest.raises(FetchPermanentError, match="decompressed"):
            fetch(f"{server}/bomb", policy=policy, max_bytes=1024 * 1024)  # ... 32 MiB inflated
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 5.0
    assert peak < 8 * 1024 * 1024  # never the whole 32 MiB in memory, not even for a moment


@pytest.mark.parametrize("path", ["/500", "/503-retry", "/429", "/408"])
def test_transient_statuses(server: str, policy: OutboundPolicy, path: str) -> None:
    with pytest.raises(TransientError) as info:
        fetch(f"{server}{path}", policy=policy)
    assert f"{server}{path}" in str(info.value)


def test_retry_after_is_kept(server: str, policy: OutboundPolicy) -> None:
    with pytest.raises(FetchTransientError) as info:
        fetch(f"{server}/429", policy=policy)
    assert info.value.status == 429
    assert info.value.retry_after == 30


@pytest.mark.parametrize(("path", "status"), [("/404", 404), ("/410", 410)])
def test_permanent_statuses(server: str, policy: OutboundPolicy, path: str, status: int) -> None:
    with pytest.raises(PermanentError) as info:
        fetch(f"{server}{path}", policy=policy)
    assert isinstance(info.value, FetchPermanentError)
    assert info.value.status == status
    assert f"{server}{path}" in str(info.value) and str(status) in str(info.value)


def test_redirect_without_location(server: str, policy: OutboundPolicy) -> None:
    with pytest.raises(PermanentError, match="Location"):
        fetch(f"{server}/redirect-no-location", policy=policy)


def test_connection_refused_is_transient(policy: OutboundPolicy) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before the fetch: nobody listens
    with pytest.raises(TransientError):
        fetch(f"http://127.0.0.1:{port}/feed", policy=policy, timeout=(1.0, 1.0))


def test_caller_client_is_used_and_left_open(server: str, policy: OutboundPolicy) -> None:
    with httpx.Client(follow_redirects=True, trust_env=False) as client:
        with pytest.raises(PermanentError):  # follow_redirects on the client is overridden
            fetch(f"{server}/r/4", policy=policy, client=client)
        assert fetch(f"{server}/feed", policy=policy, client=client).body == FEED
        assert not client.is_closed
