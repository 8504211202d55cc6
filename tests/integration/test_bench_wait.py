"""The bench's wait for a replay (by counters, confirmed article by article) and the
deployment's wait for its workers, against a real Redis."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.integration.conftest import make_settings
from workers.bench import wait_completed
from workers.domain import RawArticle
from workers.ingest.normalise import normalise
from workers.store import Store


def _articles(n: int) -> list:
    return [normalise(RawArticle(text=f"Artikel nomor {i}."), max_chars=100) for i in range(n)]


def test_wait_completed_counts_completed_and_dead_lettered_articles(
    redis_url: str, tmp_path: Path
) -> None:
    store = Store.connect(redis_url, make_settings(redis_url, tmp_path))
    articles = _articles(5)
    ids = [a.id for a in articles]
    try:
        store.count_once("completed", ids[:2], value=f"{time.time():.3f}")

        def finish_later() -> None:  # the rest settle while the bench waits
            time.sleep(0.7)
            store.count_once("completed", ids[2:4], value=f"{time.time():.3f}")
            store.count_once("dead_lettered", ids[4:])

        finisher = threading.Thread(target=finish_later)
        finisher.start()
        # Counters moved before the wait began are not this replay's, so only the safety-net
        # checks by id (every 0.2 s) see the first two; later checks read only what is pending.
        assert wait_completed(store, articles, 30, check_every_s=0.2) == 4
        finisher.join()
    finally:
        store.drop_namespace()


def test_wait_completed_names_what_is_missing_at_the_deadline(
    redis_url: str, tmp_path: Path
) -> None:
    store = Store.connect(redis_url, make_settings(redis_url, tmp_path))
    articles = _articles(3)
    try:
        store.count_once("completed", [articles[0].id], value=f"{time.time():.3f}")
        with pytest.raises(TimeoutError, match="2 of 3 articles not done"):
            wait_completed(store, articles, 1.5, check_every_s=0.5)
    finally:
        store.drop_namespace()


def test_wait_ready_names_the_kinds_whose_pool_children_are_not_ready(
    redis_url: str, tmp_path: Path
) -> None:
    """Registered worker processes whose pool children never come up (stand-ins: `sleep`)."""
    import subprocess

    from workers.errors import PantauError
    from workers.runtime import Deployment

    settings = make_settings(redis_url, tmp_path)
    store = Store.connect(redis_url, settings)
    deployment = Deployment(settings, concurrency={"ingest": 1, "extract": 2, "alert": 1})
    try:
        for kind in ("ingest", "extract", "alert"):
            deployment.processes[kind] = subprocess.Popen(["sleep", "60"])
            store.register_worker(f"{kind}@test", kind, deployment.processes[kind].pid, "test")
        with pytest.raises(
            PantauError, match=r"pool children ready: ingest 0 of 1, extract 0 of 2"
        ):
            deployment.wait_ready(store, timeout_s=1)
    finally:
        for process in deployment.processes.values():
            process.kill()
            process.wait()
        store.drop_namespace()
