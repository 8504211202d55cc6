"""Standard Webhooks signing and delivery against a local threaded HTTP server on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from workers.alert.subscriptions import new_secret
from workers.alert.webhooks import (
    BACKOFF_CAP_S,
    MAX_ATTEMPTS,
    DeliveryResult,
    SignatureError,
    backoff_s,
    deliver,
    message_id,
    parse_retry_after,
    retry_delay_s,
    sign,
    signed_headers,
    verify,
)
from workers.ingest.urls import OutboundPolicy

# A fixed key, so the expected signature below is computed independently of the code under test.
KEY = bytes(range(32))
SECRET = "whsec_" + base64.b64encode(KEY).decode()
BODY = b'{"type":"alert.created","alert":{"actor_id":"xi"}}'
MSG_ID = "msg_2KWPBgLlAfxdpx2AI54pPJ85f1W"
STAMP = 1_674_087_231


def _expected(msg_id: str, stamp: int, body: bytes, key: bytes = KEY) -> str:
    digest = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


# Signing and verifying ------------------------------------------------------------------------


def test_sign_matches_the_spec_computed_by_hand() -> None:
    assert sign(SECRET, MSG_ID, STAMP, BODY) == _expected(MSG_ID, STAMP, BODY)
    # The prefix is optional when signing, as in the reference libraries.
    assert sign(SECRET.removeprefix("whsec_"), MSG_ID, STAMP, BODY) == _expected(
        MSG_ID, STAMP, BODY
    )


def test_sign_standard_webhooks_reference_vector() -> None:
    # The test vector of the Standard Webhooks reference libraries.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == expected


def test_verify_accepts_good_signature_and_lists() -> None:
    headers = signed_headers(SECRET, MSG_ID, STAMP, BODY)
    verify(SECRET, headers, BODY, now=STAMP + 10)
    upper = {k.upper(): v for k, v in headers.items()}
    upper["WEBHOOK-SIGNATURE"] = "v1a,xyz v1,AAAA " + headers["webhook-signature"]
    verify(SECRET, upper, BODY, now=STAMP - 10)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ("body", "no matching"),
        ("secret", "no matching"),
        ("old", "from now"),
        ("future", "from now"),
        ("id", "no matching"),
        ("missing", "missing"),
        ("stamp", "integer seconds"),
        ("version", "no v1 signature"),
    ],
)
def test_verify_rejects(change: str, problem: str) -> None:
    headers = signed_headers(SECRET, MSG_ID, STAMP, BODY)
    body, secret, now = BODY, SECRET, float(STAMP)
    if change == "body":
        body = BODY.replace(b"xi", b"XI")
    elif change == "secret":
        secret = new_secret()
    elif change == "old":
        now = STAMP + 301
    elif change == "future":
        now = STAMP - 301
    elif change == "id":
        headers["webhook-id"] = "msg_other"
    elif change == "missing":
        del headers["webhook-signature"]
    elif change == "stamp":
        headers["webhook-timestamp"] = "1674087231.5"
    elif change == "version":
        headers["webhook-signature"] = headers["webhook-signature"].replace("v1,", "v2,")
    with pytest.raises(SignatureError, match=problem):
        verify(secret, headers, body, now=now)


def test_message_id_is_stable() -> None:
    assert message_id("sub_1", "alert_1") == message_id("sub_1", "alert_1")
    assert message_id("sub_1", "alert_1") != message_id("sub_1", "alert_2")


# Backoff ------------------------------------------------------------------------------------


def test_backoff_schedule_ceilings_and_jitter() -> None:
    ceilings = [backoff_s(n, rng=lambda: 1.0) for n in range(1, MAX_ATTEMPTS)]
    assert ceilings == [5, 10, 20, 40, 80, 160, 300]
    assert backoff_s(50, rng=lambda: 1.0) == BACKOFF_CAP_S
    assert backoff_s(3, rng=lambda: 0.0) == 10.0  # the floor: half the ceiling
    assert all(20 <= backoff_s(4) <= 40 for _ in range(200))
    # The eight tries of one delivery span at least ~5 minutes, whatever the jitter draws.
    assert sum(backoff_s(n, rng=lambda: 0.0) for n in range(1, MAX_ATTEMPTS)) >= 300
    with pytest.raises(ValueError):
        backoff_s(0)


def test_retry_delay_honours_retry_after_and_gives_up() -> None:
    busy = DeliveryResult(429, True, "busy", retry_after_s=120.0)
    assert retry_delay_s(1, busy, rng=lambda: 1.0) == 120.0
    assert retry_delay_s(7, busy, rng=lambda: 1.0) == 300.0
    assert retry_delay_s(MAX_ATTEMPTS, busy) is None
    assert retry_delay_s(1, DeliveryResult(404, False, "gone")) is None
    assert retry_delay_s(1, DeliveryResult(200, False, "delivered")) is None


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", now=40.0) == 60.0
    assert parse_retry_after("-5") == 0.0
    assert parse_retry_after("99999999") == 3600.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


# Delivery -----------------------------------------------------------------------------------

RELEASE = threading.Event()  # lets the hanging handler go at teardown
RECEIVED: list[tuple[str, dict[str, str], bytes]] = []


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _send(self, status: int, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        RECEIVED.append((self.path, dict(self.headers.items()), body))
        try:
            if self.path == "/ok":
                try:
                    verify(SECRET, dict(self.headers.items()), body)
                    self._send(200)
                except SignatureError:
                    self._send(401)
            elif self.path == "/fail":
                self._send(500)
            elif self.path == "/busy":
                self._send(429, {"Retry-After": "7"})
            elif self.path == "/moved":
                self._send(302, {"Location": "http://169.254.169.254/latest/meta-data/"})
            elif self.path == "/hang":
                RELEASE.wait(10)
            else:
                self._send(404)
        except (BrokenPipeError, ConnectionResetError):
            pass


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the client hangs up on /hang on purpose


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
        RELEASE.set()
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def policy() -> OutboundPolicy:
    return OutboundPolicy.from_setting("127.0.0.1")


def _deliver(url: str, policy: OutboundPolicy, **kwargs: object) -> DeliveryResult:
    return deliver(url, BODY, msg_id=MSG_ID, secret=SECRET, policy=policy, timeout_s=2.0, **kwargs)  # type: ignore[arg-type]


def test_deliver_200_signed_per_spec(server: str, policy: OutboundPolicy) -> None:
    RECEIVED.clear()
    result = _deliver(f"{server}/ok", policy)
    assert result.delivered and result.status == 200 and not result.retry
    assert result.outcome == "delivered"
    _path, headers, body = RECEIVED[-1]
    lowered = {k.lower(): v for k, v in headers.items()}
    assert body == BODY and lowered["content-type"] == "application/json"
    assert lowered["webhook-id"] == MSG_ID
    stamp = int(lowered["webhook-timestamp"])
    assert abs(stamp - time.time()) < 60
    assert lowered["webhook-signature"] == _expected(MSG_ID, stamp, BODY)


def test_deliver_500_retries(server: str, policy: OutboundPolicy) -> None:
    result = _deliver(f"{server}/fail", policy)
    assert (result.status, result.retry, result.retry_after_s) == (500, True, None)
    assert result.outcome == "retry"


def test_deliver_429_returns_retry_after(server: str, policy: OutboundPolicy) -> None:
    result = _deliver(f"{server}/busy", policy)
    assert (result.status, result.retry, result.retry_after_s) == (429, True, 7.0)


def test_deliver_404_is_permanent(server: str, policy: OutboundPolicy) -> None:
    result = _deliver(f"{server}/missing", policy)
    assert (result.status, result.retry, result.outcome) == (404, False, "failed")


def test_deliver_302_is_not_followed(server: str, policy: OutboundPolicy) -> None:
    RECEIVED.clear()
    result = _deliver(f"{server}/moved", policy)
    assert (result.status, result.retry) == (302, False)
    assert "not followed" in result.reason and "169.254.169.254" in result.reason
    assert [path for path, _, _ in RECEIVED] == ["/moved"]


def test_deliver_timeout_retries_within_bounds(server: str, policy: OutboundPolicy) -> None:
    started = time.monotonic()
    result = deliver(
        f"{server}/hang", BODY, msg_id=MSG_ID, secret=SECRET, policy=policy, timeout_s=0.5
    )
    assert time.monotonic() - started < 5
    assert (result.status, result.retry) == (None, True)
    assert "timeout" in result.reason


def test_deliver_connection_refused_retries(policy: OutboundPolicy) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = _deliver(f"http://127.0.0.1:{port}/hook", policy)
    assert (result.status, result.retry) == (None, True)
    assert "connection failed" in result.reason


def _no_network_client(sent: list[httpx.Request]) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200)

    return httpx.Client(transport=httpx.MockTransport(handler))


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/hook",
        "http://[::1]:8080/hook",
        "http://metadata.google.internal/",
        "http://internal.example/hook",  # resolves to 10.1.2.3 below
        "ftp://hooks.example/in",
        "file:///etc/passwd",
    ],
)
def test_deliver_refuses_before_connecting(url: str) -> None:
    sent: list[httpx.Request] = []
    policy = OutboundPolicy(resolver=lambda host, port: ["10.1.2.3"])
    with _no_network_client(sent) as client:
        result = _deliver(url, policy, client=client)
    assert sent == []
    assert (result.status, result.retry, result.outcome) == (None, False, "refused")
    assert result.reason.startswith("refused by the outbound policy")


def test_deliver_loopback_refused_unless_allow_listed(server: str) -> None:
    RECEIVED.clear()
    result = _deliver(f"{server}/ok", OutboundPolicy())
    assert result.outcome == "refused" and "loopback" in result.reason
    assert RECEIVED == []
