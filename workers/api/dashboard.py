"""The built-in dashboard: one HTML page, its static assets and the JSON summary it polls.

Mount it on the API with `api.include_router(dashboard.router(store))`. Routes:

- `GET /`                        the page (`workers/api/static/index.html`)
- `GET /static/<asset>`          its script and stylesheet (a fixed list; shipped inside the wheel)
- `GET /v1/dashboard/summary`    counters, queues, workers, throughput and latency, polled every 2 s

The page and the numbers are public like `/v1/status`; alert content (the newest alerts in the
summary, and the live stream `GET /v1/alerts/stream?token=...`) needs an API token that grants
`read:all`, which the page keeps in the browser's localStorage (given once as `/#token=pt_...`).

Throughput is the change of the article counters between polls, kept in a small ring of
(time, counters) samples inside the router; latency is sampled from the newest alerts of the
alert stream. Both are bounded: a page left open for days grows nothing.
"""

from __future__ import annotations

import itertools
import json
import math
import threading
import time
from collections import deque
from collections.abc import Sequence
from datetime import datetime
from importlib import resources
from typing import Any

import redis
from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse

from workers.api.security import READ_ALL, authenticate
from workers.settings import WORKER_KINDS
from workers.store import Store

# The counter that counts articles leaving each stage. Extract has none yet: the page shows "-"
# for it until a counter of that name appears in `Store.counters()`.
STAGE_COUNTERS = {"ingest": "ingested", "extract": "extracted", "alert": "completed"}
POLL_INTERVAL_S = 2.0
# Samples closer together than this are not stored (several open pages poll the same router).
MIN_SAMPLE_INTERVAL_S = 1.0
MAX_SAMPLES = 90  # about three minutes of history at one sample per 2 s
RATE_WINDOW_S = 10.0  # the headline rate: counters change over (up to) the last 10 s
LATENCY_SAMPLE = 500  # latency percentiles over the newest 500 alerts (one per article)
LATENCY_REFRESH_S = 5.0
RECENT_ALERTS = 10
SNIPPET_CHARS = 280

ASSETS = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_NO_CACHE = {"Cache-Control": "no-cache"}


def _asset(name: str) -> bytes:
    """One file of workers/api/static/ (works from a source tree and from an installed wheel)."""
    return resources.files("workers.api").joinpath("static", name).read_bytes()


def _parse_time(value: str) -> float:
    """Unix time of an ISO 8601 timestamp (`Z` accepted)."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """The nearest-rank q-th percentile (0 < q <= 100) of already sorted values."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


class RateRing:
    """A bounded ring of (monotonic time, counters) samples and the rates between them."""

    def __init__(self, maxlen: int = MAX_SAMPLES) -> None:
        self.samples: deque[tuple[float, dict[str, int]]] = deque(maxlen=maxlen)
        self.lock = threading.Lock()

    def add(self, now: float, counters: dict[str, int], min_interval_s: float) -> None:
        """Store a sample unless the previous one is younger than `min_interval_s`."""
        with self.lock:
            if not self.samples or now - self.samples[-1][0] >= min_interval_s:
                self.samples.append((now, dict(counters)))

    def rates(self, now: float, counters: dict[str, int], window_s: float) -> dict[str, float]:
        """Per-second change of each counter from the oldest sample within `window_s` to now."""
        with self.lock:
            older = [(t, values) for t, values in self.samples if now - t > 0]
        # The oldest sample inside the window; the newest older one when the window is empty.
        inside = [sample for sample in older if now - sample[0] <= window_s]
        reference = inside[0] if inside else (older[-1] if older else None)
        if reference is None:
            return {name: 0.0 for name in counters}
        t0, before = reference
        elapsed = now - t0
        return {
            name: max(0.0, (value - before.get(name, value)) / elapsed)
            for name, value in counters.items()
        }

    def series(self, name: str) -> list[float]:
        """The rate of one counter between consecutive samples, oldest first (for sparklines)."""
        with self.lock:
            samples = list(self.samples)
        out = []
        for (t0, a), (t1, b) in itertools.pairwise(samples):
            if name in a and name in b and t1 > t0:
                out.append(round(max(0.0, (b[name] - a[name]) / (t1 - t0)), 3))
        return out


class LatencySampler:
    """Ingest-to-alert latency percentiles from the newest alerts, recomputed when they change."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.lock = threading.Lock()
        self.cached: tuple[str, float, dict[str, Any]] | None = None  # (newest id, when, result)

    def read(self, newest_id: str, now: float) -> dict[str, Any]:
        """p50 / p95 / p99 in seconds over the last LATENCY_SAMPLE alerted articles."""
        with self.lock:
            if self.cached and (
                self.cached[0] == newest_id or now - self.cached[1] < LATENCY_REFRESH_S
            ):
                return self.cached[2]
            result = self._compute()
            self.cached = (newest_id, now, result)
            return result

    def _compute(self) -> dict[str, Any]:
        entries: Any = self.store.redis.xrevrange(self.store.key("alerts"), count=LATENCY_SAMPLE)
        seen: set[str] = set()
        latencies: list[float] = []
        for _, fields in entries:
            try:
                alert = json.loads(fields["alert"])
                article_id = alert["article_id"]
                if article_id in seen:  # several actors in one article: count the article once
                    continue
                seen.add(article_id)
                latencies.append(
                    _parse_time(alert["alerted_at"]) - _parse_time(alert["ingested_at"])
                )
            except (KeyError, TypeError, ValueError):
                continue
        latencies.sort()
        return {
            "p50": percentile(latencies, 50),
            "p95": percentile(latencies, 95),
            "p99": percentile(latencies, 99),
            "samples": len(latencies),
            "over": f"last {LATENCY_SAMPLE} alerts",
        }


def _recent_alerts(entries: list[tuple[str, dict[str, str]]]) -> list[dict[str, Any]]:
    """The newest alerts, trimmed to what the page shows."""
    out = []
    for entry_id, fields in entries:
        try:
            alert = json.loads(fields["alert"])
        except (KeyError, ValueError):
            continue
        snippet = str(alert.get("snippet") or "")
        out.append(
            {
                "id": entry_id,
                **{
                    k: alert.get(k)
                    for k in (
                        "alert_id",
                        "article_id",
                        "actor_id",
                        "actor_name",
                        "title",
                        "url",
                        "language",
                        "alerted_at",
                        "event_types",
                    )
                },
                "snippet": snippet[:SNIPPET_CHARS],
            }
        )
    return out


def _alert_access(store: Store, request: Request) -> str:
    """`ok` when the request's token may read every alert; else `missing`, `refused`, `unchecked`."""
    if not request.headers.get("authorization") and "token" not in request.query_params:
        return "missing"
    try:
        record = authenticate(store, request)
    except HTTPException as err:
        return "unchecked" if err.status_code == 503 else "refused"
    return "ok" if record.allows(READ_ALL) else "refused"


def router(store: Store) -> APIRouter:
    """The dashboard's routes, reading `store`; holds its own small, bounded sample ring."""
    api = APIRouter()
    ring = RateRing()
    latency = LatencySampler(store)

    @api.get("/", include_in_schema=False)
    def index() -> Response:
        return Response(
            _asset("index.html"),
            media_type="text/html; charset=utf-8",
            headers={**_NO_CACHE, "Content-Security-Policy": _CSP},
        )

    @api.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in ASSETS:
            raise HTTPException(status_code=404, detail="no such asset")
        return Response(_asset(name), media_type=ASSETS[name], headers=_NO_CACHE)

    @api.get("/v1/dashboard/summary", summary="What the dashboard shows, polled every 2 s")
    def summary(request: Request) -> Any:
        try:
            access = _alert_access(store, request)
            with store.redis.pipeline(transaction=False) as pipe:
                pipe.xrevrange(store.key("alerts"), count=RECENT_ALERTS)
                pipe.hlen(store.key("unacked"))
                pipe.xlen(store.key("dlq"))
                newest, unacked, dlq = pipe.execute()
            counters = store.counters()
            queues = store.queue_depths()
            workers = store.workers()
            now = time.monotonic()
            ring.add(now, counters, MIN_SAMPLE_INTERVAL_S)
            rates = ring.rates(now, counters, RATE_WINDOW_S)
            lat = latency.read(newest[0][0] if newest else "0-0", now)
        except redis.RedisError as err:
            return JSONResponse({"error": f"Redis unavailable: {err}"}, status_code=503)
        stages = []
        for stage in WORKER_KINDS:
            counter = STAGE_COUNTERS[stage]
            kind_workers = [w for w in workers if w["kind"] == stage]
            stages.append(
                {
                    "stage": stage,
                    "counter": counter if counter in counters else None,
                    "count": counters.get(counter),
                    "rate": round(rates[counter], 3) if counter in rates else None,
                    "series": ring.series(counter) if counter in counters else [],
                    "queue": queues.get(stage, 0),
                    "workers": len(kind_workers),
                    "workers_alive": sum(1 for w in kind_workers if w["alive"]),
                }
            )
        return JSONResponse(
            {
                "namespace": store.ns,
                "time": time.time(),
                "poll_interval_s": POLL_INTERVAL_S,
                "stages": stages,
                "counters": counters,
                "rates": {k: round(v, 3) for k, v in rates.items()},
                "queues": queues,
                "unacked": int(unacked),
                "dead_letter_depth": int(dlq),
                "workers": workers,
                "latency": lat,
                "alert_access": access,
                "recent_alerts": _recent_alerts(newest) if access == "ok" else [],
            },
            headers={"Cache-Control": "no-store"},
        )

    return api
