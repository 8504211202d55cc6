"""The HTTP API: health, status and /metrics (the push API and alert endpoints build on it)."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from workers import app as celery_app
from workers import metrics
from workers.api import alerts, articles, subscriptions
from workers.api.security import requires
from workers.runtime import resolve_redis_url
from workers.settings import Settings
from workers.store import Store


def create_app(settings: Settings | None = None) -> FastAPI:
    """The FastAPI application, built from settings (read from PANTAU_* when not given)."""
    settings = settings or Settings()
    store_url = resolve_redis_url(settings)
    store = Store.connect(store_url, settings)
    api = FastAPI(
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
    write = Depends(requires(store, "admin"))
    api.include_router(articles.router(store, settings), dependencies=[write])
    api.include_router(alerts.router(store, store_url))
    api.include_router(subscriptions.router(store, settings))
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
