"""One bounded HTTP GET for feeds and article pages: SSRF-checked redirects, size and time limits.

Every hop (the first URL and each redirect target) goes through `OutboundPolicy.check` first.
TOCTOU limitation: the check resolves the host name, then httpx resolves it again when it
connects, so a DNS answer that changes in between (DNS rebinding) can still reach an internal
address. The check stops literal addresses, names that resolve to internal ranges and
redirects into them; a hard guarantee needs an egress firewall/proxy or a transport that
connects to the vetted address. The DNS lookup itself is not bounded by `timeout`.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import httpx

from workers.errors import InputError, PermanentError, TransientError
from workers.ingest.urls import OutboundPolicy

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_TIMEOUT: tuple[float, float] = (5.0, 15.0)  # (connect, read between bytes), seconds
DEFAULT_DEADLINE_S = 60.0  # whole fetch, all hops, headers and body
DEFAULT_MAX_REDIRECTS = 3
USER_AGENT = "Pantau/0.1 (news monitor; +https://github.com/pantau)"
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9, "
    "application/rdf+xml;q=0.9, application/xml;q=0.9, text/xml;q=0.9, text/html;q=0.8, */*;q=0.5"
)
INFLATE_STEP = 64 * 1024  # decompressed bytes produced per zlib call
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
TRANSIENT_STATUSES = frozenset({408, 425, 429})


class FetchTransientError(TransientError):
    """A fetch failure worth retrying later; `retry_after` (seconds) when the server said so."""

    def __init__(
        self, url: str, problem: str, *, status: int | None = None, retry_after: float | None = None
    ):
        super().__init__(f"{url}: {problem}")
        self.url = url
        self.problem = problem
        self.status = status
        self.retry_after = retry_after


class FetchPermanentError(PermanentError):
    """A fetch failure that will recur (4xx, oversized body, redirect loop, bad encoding)."""

    def __init__(self, url: str, problem: str, *, status: int | None = None):
        super().__init__(f"{url}: {problem}")
        self.url = url
        self.problem = problem
        self.status = status


@dataclass(frozen=True)
class FetchResult:
    """What one fetch returned. `body` is None on 304 Not Modified."""

    status: int
    body: bytes | None
    etag: str | None
    last_modified: str | None
    final_url: str
    content_type: str | None
    not_modified: bool = False


class _UnsupportedEncoding(Exception):
    pass


class _BoundedInflater:
    """gzip/deflate decoding that never produces more than INFLATE_STEP bytes per zlib call.

    httpx's `iter_bytes()` inflates each network read in one call: a 32 KiB gzip bomb came
    out of it as a single 32 MiB chunk (measured), so counting its output bounds the kept body
    but not the transient memory (up to ~1000x a 64 KiB read). Decoding `iter_raw()` here in
    steps keeps the peak at max_bytes + INFLATE_STEP.
    """

    def __init__(self, content_encoding: str | None) -> None:
        codings = [c.strip().lower() for c in (content_encoding or "").split(",")]
        codings = [c for c in codings if c and c != "identity"]
        if len(codings) > 1 or (codings and codings[0] not in ("gzip", "x-gzip", "deflate")):
            raise _UnsupportedEncoding(content_encoding or "")
        self.kind = codings[0] if codings else None
        self._started = False
        self._raw_deflate = False
        self._d = self._new()

    def _new(self) -> zlib._Decompress | None:
        if self.kind is None:
            return None
        if self.kind in ("gzip", "x-gzip"):
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        return zlib.decompressobj(-zlib.MAX_WBITS if self._raw_deflate else zlib.MAX_WBITS)

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._d is None:
            if data:
                yield data
            return
        if not self._started and self.kind == "deflate":
            self._started = True
            try:  # "deflate" should be zlib-wrapped; some servers send raw deflate
                zlib.decompressobj(zlib.MAX_WBITS).decompress(data[:64], 1)
            except zlib.error:
                self._raw_deflate = True
                self._d = self._new()
        pending = data
        while True:
            assert self._d is not None
            piece = self._d.decompress(pending, INFLATE_STEP)
            if piece:
                yield piece
            pending = self._d.unconsumed_tail
            if self._d.eof and self._d.unused_data:  # multi-member gzip
                pending = self._d.unused_data
                self._d = self._new()
                continue
            if not pending and len(piece) < INFLATE_STEP:
                return

    def flush(self) -> bytes:
        return self._d.flush() if self._d is not None and not self._d.eof else b""


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def fetch(
    url: str,
    *,
    policy: OutboundPolicy,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    deadline_s: float = DEFAULT_DEADLINE_S,
    max_redirects: int = DEFAULT_MAX_REDIRECTS,
    etag: str | None = None,
    last_modified: str | None = None,
    client: httpx.Client | None = None,
) -> FetchResult:
    """GET `url` with conditional headers, following at most `max_redirects` redirects by hand.

    Raises InputError when the policy refuses a hop (naming that URL), FetchPermanentError
    (a PermanentError) on 4xx other than 408/425/429, too many redirects, a body over
    `max_bytes` after decompression, or undecodable content, and FetchTransientError (a
    TransientError) on timeouts, connection errors, 5xx, 408/425/429, and when the whole
    fetch exceeds `deadline_s`. The deadline is checked between body chunks, so a trickling
    server is cut off at most one read timeout after it.
    """
    connect_s, read_s = timeout
    own_client = client is None
    if client is None:
        # trust_env=False: no proxy from the environment, so the SSRF check and the connection
        # see the same host. Only gzip/deflate, which httpx always decodes.
        client = httpx.Client(
            follow_redirects=False,
            trust_env=False,
            headers={
                "User-Agent": USER_AGENT,
                "Accept": ACCEPT,
                "Accept-Encoding": "gzip, deflate",
            },
        )
    headers: dict[str, str] = {"Accept-Encoding": "gzip, deflate"}  # what _BoundedInflater decodes
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    started = time.monotonic()
    current = url
    try:
        for _hop in range(max_redirects + 1):
            policy.check(current)
            remaining = deadline_s - (time.monotonic() - started)
            if remaining <= 0:
                raise FetchTransientError(current, f"deadline of {deadline_s:g} s exceeded")
            hop_timeout = httpx.Timeout(
                connect=min(connect_s, remaining),
                read=min(read_s, remaining),
                write=min(read_s, remaining),
                pool=min(connect_s, remaining),
            )
            try:
                request = client.build_request("GET", current, headers=headers, timeout=hop_timeout)
            except (httpx.InvalidURL, httpx.UnsupportedProtocol, ValueError) as exc:
                raise InputError(current, f"invalid URL ({exc})") from None
            result = _send(
                client, request, current, started, deadline_s, max_bytes, etag, last_modified
            )
            if isinstance(result, FetchResult):
                return result
            current = result  # a redirect target, checked at the top of the loop
        raise FetchPermanentError(url, f"more than {max_redirects} redirects (last: {current})")
    finally:
        if own_client:
            client.close()


def _send(
    client: httpx.Client,
    request: httpx.Request,
    url: str,
    started: float,
    deadline_s: float,
    max_bytes: int,
    etag: str | None,
    last_modified: str | None,
) -> FetchResult | str:
    """Send one request; a FetchResult, or the absolute URL of the redirect target."""
    try:
        response = client.send(request, stream=True, follow_redirects=False)
    except httpx.TimeoutException as exc:
        raise FetchTransientError(url, f"timeout ({type(exc).__name__})") from None
    except httpx.UnsupportedProtocol as exc:
        raise InputError(url, f"unsupported protocol ({exc})") from None
    except httpx.TransportError as exc:
        raise FetchTransientError(url, f"connection failed ({type(exc).__name__}: {exc})") from None
    try:
        status = response.status_code
        if status in REDIRECT_STATUSES:
            location = response.headers.get("location")
            if not location:
                raise FetchPermanentError(
                    url, f"HTTP {status} redirect without Location", status=status
                )
            try:
                return str(response.url.join(location))
            except (httpx.InvalidURL, ValueError) as exc:
                raise InputError(url, f"redirect to an invalid URL {location!r} ({exc})") from None
        if status == 304:
            return FetchResult(
                status=304,
                body=None,
                etag=response.headers.get("etag") or etag,
                last_modified=response.headers.get("last-modified") or last_modified,
                final_url=str(response.url),
                content_type=response.headers.get("content-type"),
                not_modified=True,
            )
        if status >= 500 or status in TRANSIENT_STATUSES:
            raise FetchTransientError(
                url,
                f"HTTP {status}",
                status=status,
                retry_after=_retry_after(response.headers.get("retry-after")),
            )
        if status >= 400 or not 200 <= status < 300:
            raise FetchPermanentError(url, f"HTTP {status}", status=status)
        declared = response.headers.get("content-length")
        if (
            declared
            and declared.isdigit()
            and "content-encoding" not in response.headers
            and int(declared) > max_bytes
        ):
            raise FetchPermanentError(
                url, f"body of {declared} bytes exceeds the limit of {max_bytes}", status=status
            )
        try:
            inflater = _BoundedInflater(response.headers.get("content-encoding"))
        except _UnsupportedEncoding as exc:
            raise FetchPermanentError(
                url, f"unsupported content encoding {exc}", status=status
            ) from None
        chunks: list[bytes] = []
        size = 0

        def keep(piece: bytes) -> None:
            nonlocal size
            size += len(piece)
            if size > max_bytes:
                raise FetchPermanentError(
                    url,
                    f"body exceeds the limit of {max_bytes} bytes (decompressed)",
                    status=status,
                )
            chunks.append(piece)

        try:
            # Raw (still compressed) bytes, decoded here in bounded steps; the DECOMPRESSED size
            # counts against max_bytes, so a gzip bomb stops at max_bytes + INFLATE_STEP.
            for raw in response.iter_raw():
                for piece in inflater.feed(raw):
                    keep(piece)
                if time.monotonic() - started > deadline_s:
                    raise FetchTransientError(
                        url,
                        f"deadline of {deadline_s:g} s exceeded while reading the body",
                        status=status,
                    )
            keep(inflater.flush())
        except zlib.error as exc:
            raise FetchPermanentError(
                url, f"undecodable {inflater.kind} body ({exc})", status=status
            ) from None
        except httpx.TimeoutException as exc:
            raise FetchTransientError(
                url, f"timeout reading the body ({type(exc).__name__})"
            ) from None
        except httpx.DecodingError as exc:
            raise FetchPermanentError(
                url, f"undecodable content encoding ({exc})", status=status
            ) from None
        except httpx.TransportError as exc:
            raise FetchTransientError(
                url, f"connection broken ({type(exc).__name__}: {exc})"
            ) from None
        return FetchResult(
            status=status,
            body=b"".join(chunks),
            etag=response.headers.get("etag"),
            last_modified=response.headers.get("last-modified"),
            final_url=str(response.url),
            content_type=response.headers.get("content-type"),
            not_modified=False,
        )
    finally:
        response.close()
