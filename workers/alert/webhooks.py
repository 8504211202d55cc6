"""Webhook delivery signed per Standard Webhooks (https://www.standardwebhooks.com/).

Each request carries `webhook-id` (the same on every retry of one message, so receivers can
drop duplicates), `webhook-timestamp` (integer Unix seconds, fresh on every try) and
`webhook-signature`: `v1,<base64 HMAC-SHA256>` of `f"{id}.{timestamp}.{body}"`, keyed with the
bytes of the subscription's `whsec_<base64>` secret.

Retry schedule (`backoff_s`, equal jitter): a delivery is tried at most MAX_ATTEMPTS = 8 times.
After the n-th failed try the wait is uniform in [c/2, c] with c = min(300, 5 * 2**(n-1))
seconds, i.e. ceilings of 5, 10, 20, 40, 80, 160, 300 s: the eight tries span at least ~5 min
(so a receiver down for a minute or two cannot use them up) and at most ~10 min. A Retry-After
from the receiver raises the wait to that value (capped at RETRY_AFTER_CAP_S).

SSRF: the URL goes through `OutboundPolicy.check` before every try, redirects are never
followed, and no proxy is taken from the environment. The same TOCTOU caveat as
`workers.ingest.fetch` applies (the check and the connection each resolve the host), and the
DNS lookup is not bounded by `timeout_s`; httpx's timeouts are per phase, so a receiver that
trickles its response headers can hold a try longer than `timeout_s` (the task time limit is the
backstop).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Literal

import httpx

from workers.alert.subscriptions import secret_bytes
from workers.domain import short_hash
from workers.errors import InputError, TransientError
from workers.ingest.urls import OutboundPolicy

MAX_ATTEMPTS = 8
BACKOFF_BASE_S = 5.0
BACKOFF_CAP_S = 300.0
RETRY_AFTER_CAP_S = 3600.0
DEFAULT_TOLERANCE_S = 300
USER_AGENT = "Pantau-Webhooks/0.1"
RETRY_STATUSES = frozenset({408, 425, 429})

Outcome = Literal["delivered", "retry", "failed", "refused"]


class SignatureError(InputError):
    """A webhook request whose signature headers are missing, malformed, expired or wrong."""

    def __init__(self, problem: str) -> None:
        super().__init__("webhook signature", problem)


def message_id(*parts: str) -> str:
    """A stable `webhook-id` from what identifies the message (e.g. subscription and alert id).

    Stable on purpose: a retried or redelivered message keeps its id, so receivers can dedup.
    """
    return "msg_" + short_hash("webhook", *parts)


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value for one message: `v1,<base64 HMAC-SHA256>`."""
    signed = f"{msg_id}.{int(timestamp)}.".encode() + body
    digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signed_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for one message."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp)),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    *,
    now: float | None = None,
) -> None:
    """Raise SignatureError unless the headers carry a valid, fresh v1 signature of `body`.

    Header names are matched case-insensitively; the timestamp may be at most `tolerance_s`
    away from now in either direction; every `v1,` signature in the list is tried with a
    constant-time compare.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    msg_id = lowered.get("webhook-id")
    stamp = lowered.get("webhook-timestamp")
    signatures = lowered.get("webhook-signature")
    if not msg_id or not stamp or not signatures:
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature header")
    try:
        timestamp = int(stamp.strip())
    except ValueError:
        raise SignatureError(f"webhook-timestamp {stamp[:20]!r} is not integer seconds") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise SignatureError(
            f"timestamp is more than {tolerance_s} s from now (replay or clock skew)"
        )
    try:
        expected = sign(secret, msg_id, timestamp, body).encode("ascii")
    except ValueError as err:
        raise SignatureError(f"unusable secret ({err})") from None
    found = False
    for candidate in signatures.split(" "):
        if not candidate.startswith("v1,"):
            continue  # other versions (e.g. v1a asymmetric) are not ours to check
        found = True
        if hmac.compare_digest(candidate.encode("utf-8", "replace"), expected):
            return
    raise SignatureError("no matching v1 signature" if found else "no v1 signature")


@dataclass(frozen=True)
class DeliveryResult:
    """How one delivery try went and what to do next.

    `status` is the HTTP status (None when no response came); `retry` says whether trying again
    later may help; `retry_after_s` is the receiver's Retry-After in seconds, when it sent one.
    """

    status: int | None
    retry: bool
    reason: str
    retry_after_s: float | None = None
    refused: bool = False  # the outbound policy refused the URL; nothing was sent

    @property
    def delivered(self) -> bool:
        """The receiver accepted the message (2xx)."""
        return self.status is not None and 200 <= self.status < 300

    @property
    def outcome(self) -> Outcome:
        """A metric label: delivered, retry, failed (permanent) or refused (policy, before connecting)."""
        if self.delivered:
            return "delivered"
        if self.retry:
            return "retry"
        return "refused" if self.refused else "failed"


_clients: dict[int, httpx.Client] = {}


def shared_client() -> httpx.Client:
    """This process's HTTP client for deliveries, made on first use after any fork.

    Building an httpx.Client costs ~14 ms (an SSL context), more than a local POST. trust_env is
    off: no proxy from the environment, so the SSRF check and the connection see the same host.
    """
    client = _clients.get(os.getpid())
    if client is None:
        client = _clients[os.getpid()] = httpx.Client(follow_redirects=False, trust_env=False)
    return client


def deliver(
    url: str,
    body: bytes,
    *,
    msg_id: str,
    secret: str,
    policy: OutboundPolicy,
    timeout_s: float = 10.0,
    client: httpx.Client | None = None,
    timestamp: int | None = None,
) -> DeliveryResult:
    """POST one signed JSON message to `url`; never raises for network or receiver failures.

    2xx: delivered. Timeouts, connection errors, 5xx, 408, 425, 429: retry (with the receiver's
    Retry-After, if any). 3xx: permanent failure (redirects are not followed). Other 4xx: permanent.
    A URL the policy refuses (non-http(s), private, loopback, link-local, metadata addresses not in
    the allow-list) is a permanent failure without any connection; a temporary DNS failure is a retry.
    """
    try:
        policy.check(url)
    except InputError as err:
        return DeliveryResult(
            None, False, f"refused by the outbound policy: {err.problem}", refused=True
        )
    except TransientError as err:
        return DeliveryResult(None, True, f"DNS lookup failed: {err}")
    stamp = int(time.time()) if timestamp is None else timestamp
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        **signed_headers(secret, msg_id, stamp, body),
    }
    own_client = client is None
    if client is None:
        # trust_env=False: no proxy from the environment, so the SSRF check and the connection
        # see the same host.
        client = httpx.Client(follow_redirects=False, trust_env=False)
    try:
        try:
            request = client.build_request(
                "POST", url, content=body, headers=headers, timeout=httpx.Timeout(timeout_s)
            )
        except (httpx.InvalidURL, httpx.UnsupportedProtocol, ValueError) as err:
            return DeliveryResult(None, False, f"invalid URL ({err})")
        try:
            response = client.send(request, stream=True, follow_redirects=False)
        except httpx.TimeoutException as err:
            return DeliveryResult(
                None, True, f"timeout after {timeout_s:g} s ({type(err).__name__})"
            )
        except httpx.UnsupportedProtocol as err:
            return DeliveryResult(None, False, f"unsupported protocol ({err})")
        except httpx.TransportError as err:
            return DeliveryResult(None, True, f"connection failed ({type(err).__name__}: {err})")
        try:
            return _judge(response)
        finally:
            response.close()  # the body is never read: the status says everything
    finally:
        if own_client:
            client.close()


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date), or None if absent/unparsable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return min(max(0.0, seconds), RETRY_AFTER_CAP_S)


def _judge(response: httpx.Response) -> DeliveryResult:
    status = response.status_code
    phrase = f"HTTP {status} {response.reason_phrase}".strip()
    if 200 <= status < 300:
        return DeliveryResult(status, False, "delivered")
    if 300 <= status < 400:
        location = (response.headers.get("location") or "(no Location)")[:200]
        return DeliveryResult(
            status, False, f"{phrase}: redirect to {location} not followed; fix the webhook URL"
        )
    if status >= 500 or status in RETRY_STATUSES:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        return DeliveryResult(status, True, f"{phrase}: receiver unavailable", retry_after)
    if status == 410:
        return DeliveryResult(status, False, f"{phrase}: the receiver removed this endpoint")
    return DeliveryResult(status, False, f"{phrase}: receiver refused the message")


def backoff_s(attempt: int, *, rng: Callable[[], float] = random.random) -> float:
    """Seconds to wait after the `attempt`-th failed try (1, 2, ...): equal jitter, capped.

    Uniform in [c/2, c] with c = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**(attempt-1)): ceilings
    of 5, 10, 20, 40, 80, 160, 300, 300... s. The fixed half is a floor: with full jitter
    (uniform in [0, c]) the early tries of a delivery could all fall inside a short outage.
    With Celery, pass `self.request.retries + 1`.
    """
    if attempt < 1:
        raise ValueError(f"attempt counts failed tries from 1, got {attempt}")
    ceiling = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** min(attempt - 1, 32))
    return ceiling / 2 + rng() * ceiling / 2


def retry_delay_s(
    attempt: int, result: DeliveryResult, *, rng: Callable[[], float] = random.random
) -> float | None:
    """Seconds until the next try after the `attempt`-th failed one, or None to give up.

    None when the failure is permanent or MAX_ATTEMPTS tries are used up; otherwise the jittered
    backoff, raised to the receiver's Retry-After when it asked for longer.
    """
    if result.delivered or not result.retry or attempt >= MAX_ATTEMPTS:
        return None
    delay = backoff_s(attempt, rng=rng)
    if result.retry_after_s is not None:
        delay = max(delay, result.retry_after_s)
    return delay
