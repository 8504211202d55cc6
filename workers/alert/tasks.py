"""Alert stage glue: match extractions against the watchlist, record each alert once."""

from __future__ import annotations

import logging
import time
from datetime import datetime
from functools import cache

from workers import metrics, services
from workers.alert.rules import match_watchlist
from workers.app import app
from workers.ingest.tasks import RETRY
from workers.watchlist_source import WatchlistSource

log = logging.getLogger(__name__)


@cache
def _watchlist_source() -> WatchlistSource:
    return WatchlistSource.from_settings(services.settings())


def _seconds_between(earlier: str, later: str) -> float:
    return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds()


@app.task(name="pantau.alert.evaluate", stage="alert", **RETRY)
def evaluate(article_ids: list[str]) -> None:
    """Alert on every watched actor the articles mention; a redelivery adds no second alert."""
    store = services.store()
    started = time.perf_counter()
    watchlist = _watchlist_source().current()
    extractions = store.load_extractions(article_ids)
    recorded = 0
    for extraction in extractions:
        for alert in match_watchlist(extraction, watchlist):
            if store.append_alert_once(alert):
                recorded += 1
                metrics.INGEST_TO_ALERT_SECONDS.observe(
                    _seconds_between(alert.ingested_at, alert.alerted_at)
                )
                metrics.ALERTS.labels(channel="stream", outcome="ok").inc()
    store.count("alerts", recorded)
    store.count_once("completed", [e.article_id for e in extractions], value=f"{time.time():.3f}")
    metrics.ARTICLES.labels(stage="alert", outcome="ok").inc(len(extractions))
    metrics.STAGE_SECONDS.labels(stage="alert").observe(time.perf_counter() - started)
    metrics.LAST_SUCCESS.labels(stage="alert").set_to_current_time()
