"""The HTTP API: health, status and /metrics (the push API and alert endpoints build on it)."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from workers import app as celery_app
from workers import metrics
from workers.api import alerts, articles, dashboard, subscriptions
from workers.api.security import requires
from workers.auth import install_redaction
from workers.ingest.tasks import send_accepted
from workers.outbox import Outbox
from workers.runtime import resolve_redis_url
from workers.settings import Settings
from workers.store import Store

log = logging.getLogger(__name__)
OUTBOX_DRAIN_S = 5.0


def _drain_outbox(outbox: Outbox, store: Store, stop: threading.Event) -> None:
    """Send what `pantau ingest` or this API spooled while Redis was unreachable."""
    while not stop.wait(OUTBOX_DRAIN_S):
        try:
            sent = outbox.drain(lambda batch: send_accepted(batch, store))
            if sent:
                log.info("outbox: %d spooled article(s) sent", sent)
        except Exception:  # the thread must outlive any one failure; the spool keeps the batch
            log.exception("outbox: drain failed; trying again in %.0f s", OUTBOX_DRAIN_S)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The FastAPI application, built from settings (read from PANTAU_* when not given)."""
    settings = settings or Settings()
    install_redaction()
    store_url = resolve_redis_url(settings)
    store = Store.connect(store_url, settings)
    stop = threading.Event()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        drainer = threading.Thread(target=_drain_outbox, args=(outbox, store, stop), daemon=True)
        drainer.start()
        yield
        stop.set()

    api = FastAPI(
        lifespan=lifespan,
        title="Pantau",
        version="0.1.0",
        description="Live news monitoring: push articles, read alerts, watch throughput.",
    )
    registry = metrics.multiprocess_registry()
    registry.register(
        metrics.QueueDepthCollector(
            store.queue_depths,
            lambda: {"unacked": store.unacked(), "dead_letter": store.dlq_depth()},
        )
    )
    celery_app.configure(settings, store_url)
    outbox = Outbox(settings.data_dir / "outbox", settings.outbox_max_bytes)
    write = Depends(requires(store, "admin"))
    api.include_router(articles.router(store, settings, outbox), dependencies=[write])
    api.include_router(alerts.router(store, store_url))
    api.include_router(subscriptions.router(store, settings))
    api.include_router(dashboard.router(store))
    api.state.store = store
    api.state.settings = settings

    @api.get("/healthz", summary="Liveness and broker reachability")
    def healthz() -> dict[str, Any]:
        store.ping()
        return {"ok": True}

    @api.get("/v1/status", summary="Queues, article counters and workers")
    def status() -> dict[str, Any]:
        return store.status()

    @api.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    def prometheus_metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return api
