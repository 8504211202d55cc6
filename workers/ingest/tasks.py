"""Ingest stage glue: dedup normalised articles, store them, hand them to extraction in batches."""

from __future__ import annotations

import logging
import time
from typing import Any

import redis

from workers import metrics, services
from workers.app import app
from workers.domain import Article
from workers.errors import TransientError
from workers.ingest import dedup
from workers.store import Store

log = logging.getLogger(__name__)

RETRY = {
    "autoretry_for": (TransientError, redis.ConnectionError, redis.TimeoutError),
    "retry_backoff": True,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 8,
}


def send_articles(articles: list[Article], batch_size: int = 64) -> None:
    """Enqueue normalised articles for the ingest stage (used by the CLI and the API)."""
    for start in range(0, len(articles), batch_size):
        batch = [a.model_dump(mode="json") for a in articles[start : start + batch_size]]
        app.send_task("pantau.ingest.ingest_articles", args=[batch])


def assign_story(store: Store, article: Article) -> str:
    """The story an article belongs to: a near-duplicate's story within the window, else its own."""
    if article.story_id:  # a redelivery keeps what it was given
        return article.story_id
    sig = dedup.signature(article.text)
    bands = dedup.band_keys(sig)
    for story_id, stored in store.story_candidates(bands):
        if dedup.is_near_duplicate(sig, dedup.Signature.from_str(stored)):
            store.remember_story(story_id, stored, bands, opens_story=False)
            metrics.STORY_MERGES.inc()
            return story_id
    store.remember_story(article.id, sig.to_str(), bands, opens_story=True)
    return article.id


@app.task(name="pantau.ingest.ingest_articles", stage="ingest", **RETRY)
def ingest_articles(records: list[dict[str, Any]]) -> None:
    """Drop exact duplicates, store the rest, and enqueue them for extraction."""
    store = services.store()
    settings = services.settings()
    started = time.perf_counter()
    articles = [Article.model_validate(record) for record in records]
    fresh, duplicates = [], 0
    for article, first_id in zip(
        articles, store.seen_article_ids([a.content_hash for a in articles]), strict=True
    ):
        # The same id again is a redelivery unless that article already went all the way through.
        if first_id is None or (first_id == article.id and not store.is_completed(article.id)):
            fresh.append(article)
        else:
            duplicates += 1
    fresh = [
        article.model_copy(update={"story_id": assign_story(store, article)}) for article in fresh
    ]
    store.save_articles(fresh)
    ids = [a.id for a in fresh]
    size = settings.extract_batch_size
    for start in range(0, len(ids), size):
        app.send_task("pantau.extract.extract_batch", args=[ids[start : start + size]])
    store.mark_seen(fresh)
    store.count_once("ingested", ids)
    store.count("duplicates", duplicates)
    metrics.DEDUP_DROPS.labels(kind="exact").inc(duplicates)
    metrics.ARTICLES.labels(stage="ingest", outcome="ok").inc(len(fresh))
    metrics.ARTICLES.labels(stage="ingest", outcome="duplicate").inc(duplicates)
    metrics.STAGE_SECONDS.labels(stage="ingest").observe(time.perf_counter() - started)
    metrics.LAST_SUCCESS.labels(stage="ingest").set_to_current_time()
