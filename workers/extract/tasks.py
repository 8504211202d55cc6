"""Extract stage glue: load stored articles, run the extractor, store results, hand on to alerts."""

from __future__ import annotations

import logging
import os
import time
import traceback
from collections import Counter
from functools import cache

from workers import metrics, services
from workers.app import app
from workers.dlq import dead_letter
from workers.domain import Article
from workers.extract.pipeline import Extractor
from workers.ingest.tasks import RETRY
from workers.watchlist_source import WatchlistSource

log = logging.getLogger(__name__)


@cache
def _watchlist_source() -> WatchlistSource:
    return WatchlistSource.from_settings(services.settings(), services.store())


@cache
def _extractor() -> Extractor:
    extractor = Extractor(_watchlist_source().current())
    extractor.warm_up()
    return extractor


# Chaos tests only (tests/chaos): the extract worker crashes on this one article id, hard
# (os._exit in the pool child) or, with PANTAU_FAULT_INJECT_MODE=raise, with an exception.
# A no-op unless PANTAU_FAULT_INJECT_ARTICLE is set in the worker's environment.
FAULT_INJECT_ARTICLE = "PANTAU_FAULT_INJECT_ARTICLE"
FAULT_INJECT_MODE = "PANTAU_FAULT_INJECT_MODE"


def _inject_fault(articles: list[Article]) -> None:
    target = os.environ.get(FAULT_INJECT_ARTICLE)
    if not target or all(article.id != target for article in articles):
        return
    if os.environ.get(FAULT_INJECT_MODE) == "raise":
        raise RuntimeError(f"fault injected on article {target} ({FAULT_INJECT_ARTICLE})")
    os._exit(1)


def extractor() -> Extractor:
    """This process's extractor (pipelines loaded once), following watchlist changes."""
    current = _extractor()
    watchlist = _watchlist_source().current()
    if watchlist is not current.watchlist:
        current.set_watchlist(watchlist)
    return current


@app.task(name="pantau.extract.extract_batch", stage="extract", **RETRY)
def extract_batch(article_ids: list[str]) -> None:
    """Tag entities and events in stored articles, then hand them to the alert stage."""
    store = services.store()
    started = time.perf_counter()
    articles = store.load_articles(article_ids)
    if len(articles) < len(article_ids):
        log.warning(
            "%d of %d articles expired before extraction",
            len(article_ids) - len(articles),
            len(article_ids),
        )
    cpu_started = time.process_time()
    try:
        _inject_fault(articles)
        results = extractor().extract_many(articles)
    except Exception:
        # One bad article must not sink its batch: retry one by one, dead-letter the culprits.
        log.exception("batch of %d failed; extracting one by one", len(articles))
        results = []
        for article in articles:
            try:
                _inject_fault([article])
                results.extend(extractor().extract_many([article]))
            except Exception as error:
                dead_letter(
                    store,
                    task=extract_batch.name,
                    stage="extract",
                    args=[[article.id]],
                    kwargs={},
                    error=f"{type(error).__name__}: {error}",
                    traceback=traceback.format_exc(),
                    task_id=extract_batch.request.id or "",
                    retries=0,
                )
                metrics.ARTICLES.labels(stage="extract", outcome="dead_lettered").inc()
    metrics.EXTRACT_CPU_SECONDS.inc(time.process_time() - cpu_started)
    store.save_extractions(results)
    store.count_once("extracted", [r.article_id for r in results])
    app.send_task("pantau.alert.evaluate", args=[[r.article_id for r in results]])
    labels = Counter(ent.label for r in results for ent in r.entities)
    types = Counter(event.type for r in results for event in r.events)
    for label, n in labels.items():
        metrics.ENTITIES.labels(label=label).inc(n)
    for event_type, n in types.items():
        metrics.EVENTS.labels(type=event_type).inc(n)
    metrics.ARTICLES.labels(stage="extract", outcome="ok").inc(len(results))
    metrics.STAGE_SECONDS.labels(stage="extract").observe(time.perf_counter() - started)
    metrics.LAST_SUCCESS.labels(stage="extract").set_to_current_time()
