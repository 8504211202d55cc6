"""Alert stage glue: watchlist alerts once per story, subscriptions, and their delivery channels."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from functools import cache
from typing import Any

from workers import metrics, services
from workers.alert.digest import digest_id, digest_window, render_alert, render_digest
from workers.alert.rules import match_watchlist
from workers.alert.subscriptions import Subscription, dedup_key, select_alerts
from workers.alert.webhooks import deliver, message_id, retry_delay_s, shared_client
from workers.app import app
from workers.domain import Alert, Extraction
from workers.errors import PermanentError
from workers.ingest.tasks import RETRY, outbound_policy
from workers.store import Store
from workers.watchlist_source import WatchlistSource

log = logging.getLogger(__name__)
WEBHOOK_MAX_TRIES = 8


@cache
def _watchlist_source() -> WatchlistSource:
    return WatchlistSource.from_settings(services.settings(), services.store())


_subscriptions: dict[str, Any] = {"version": None, "items": []}


def subscriptions(store: Store) -> list[Subscription]:
    """Every subscription, re-read when their version counter moves."""
    version = store.version("subs")
    if version != _subscriptions["version"]:
        _subscriptions.update(version=version, items=store.subscriptions())
    return list(_subscriptions["items"])


def _seconds_since(iso: str) -> float:
    return time.time() - datetime.fromisoformat(iso).timestamp()


@app.task(name="pantau.alert.evaluate", stage="alert", **RETRY)
def evaluate(article_ids: list[str]) -> None:
    """Alert on watched actors, once per story; route alerts to the subscriptions that want them."""
    store = services.store()
    started = time.perf_counter()
    watchlist = _watchlist_source().current()
    extractions = store.load_extractions(article_ids)
    current_subscriptions = subscriptions(store)
    recorded = 0
    for extraction in extractions:
        alerts = match_watchlist(extraction, watchlist)
        for alert in alerts:
            if store.append_alert_once(alert):
                recorded += 1
                metrics.INGEST_TO_ALERT_SECONDS.labels(channel="stream").observe(
                    _seconds_since(alert.ingested_at)
                )
                metrics.ALERTS.labels(channel="stream", outcome="delivered").inc()
        for subscription in current_subscriptions:
            route(store, subscription, extraction, alerts)
        metrics.PIPELINE_SECONDS.observe(_seconds_since(extraction.ingested_at))
    store.index_extractions(extractions, time.time())
    store.count("alerts", recorded)
    store.count_once("completed", [e.article_id for e in extractions], value=f"{time.time():.3f}")
    store.settle([e.article_id for e in extractions])
    metrics.ARTICLES.labels(stage="alert", outcome="ok").inc(len(extractions))
    metrics.STAGE_SECONDS.labels(stage="alert").observe(time.perf_counter() - started)
    metrics.LAST_SUCCESS.labels(stage="alert").set_to_current_time()


def route(
    store: Store, subscription: Subscription, extraction: Extraction, alerts: list[Alert]
) -> None:
    """Record each wanted alert once per (subscription, actor, story) and cooldown; deliver it."""
    for alert in select_alerts(subscription, extraction, alerts):
        key = dedup_key(subscription.id, alert.actor_id, alert.story_id)
        if store.redis.exists(store.key("sub-sent", key)):
            continue
        message = render_alert(subscription.id, alert)
        if subscription.mode == "realtime" and subscription.channel == "webhook":
            # Sent before the mark: a crash in between repeats the message with the same
            # webhook-id (receivers dedup on it) rather than losing it.
            app.send_task(
                "pantau.alert.deliver_webhook",
                args=[
                    subscription.id,
                    message,
                    message_id(subscription.id, alert.alert_id),
                    alert.ingested_at,
                ],
            )
        if (
            store.append_subscription_alert_once(
                subscription.id, key, subscription.cooldown_s, alert
            )
            is None
        ):
            continue
        if subscription.mode == "realtime":
            store.publish(subscription.id, message)
            if subscription.channel != "webhook":
                metrics.ALERTS.labels(channel=subscription.channel, outcome="delivered").inc()
                metrics.INGEST_TO_ALERT_SECONDS.labels(channel=subscription.channel).observe(
                    _seconds_since(alert.ingested_at)
                )


@app.task(
    name="pantau.alert.deliver_webhook", stage="alert", bind=True, max_retries=WEBHOOK_MAX_TRIES - 1
)
def deliver_webhook(
    self: Any,
    subscription_id: str,
    message: dict[str, Any],
    msg_id: str,
    ingested_at: str | None = None,
) -> None:
    """POST one message to a subscription's webhook (Standard Webhooks), retrying as it says."""
    store = services.store()
    subscription = store.subscription(subscription_id)
    if subscription is None or not subscription.webhook_url:
        log.info("subscription %s gone; message %s not delivered", subscription_id, msg_id)
        return
    body = json.dumps(message, separators=(",", ":")).encode()
    result = deliver(
        subscription.webhook_url,
        body,
        msg_id=msg_id,
        secret=subscription.secret,
        policy=outbound_policy(),
        timeout_s=services.settings().webhook_timeout_s,
        client=shared_client(),
    )
    metrics.ALERTS.labels(channel="webhook", outcome=result.outcome).inc()
    if result.delivered:
        if ingested_at:
            metrics.INGEST_TO_ALERT_SECONDS.labels(channel="webhook").observe(
                _seconds_since(ingested_at)
            )
        return
    delay = retry_delay_s(self.request.retries + 1, result) if result.retry else None
    if delay is None or self.request.retries >= WEBHOOK_MAX_TRIES - 1:
        raise PermanentError(
            f"webhook {subscription.webhook_url} for {subscription_id}: {result.reason}"
        )
    metrics.TASK_RETRIES.labels(stage="alert").inc()
    # A retry waits in the worker as an unacked message: keep it well inside the visibility
    # timeout, or Redis would hand a second copy to another worker (a duplicate POST).
    delay = min(delay, services.settings().visibility_timeout_s / 2)
    raise self.retry(countdown=delay, exc=PermanentError(result.reason))


@app.task(name="pantau.alert.send_digests", stage="alert")
def send_digests() -> None:
    """Beat's tick: send each digest subscription the alerts of its last complete window, once."""
    store = services.store()
    now = datetime.now(UTC)
    for subscription in subscriptions(store):
        if subscription.mode != "digest" or subscription.digest_every is None:
            continue
        start, end = digest_window(now, subscription.digest_every)
        digest = digest_id(subscription.id, start, subscription.digest_every)
        if not store.claim("digest", digest, ttl_s=8 * 24 * 3600):
            continue
        entries = store.read_subscription_alerts(
            subscription.id,
            f"{int(start.timestamp() * 1000)}-0",
            f"{int(end.timestamp() * 1000) - 1}-999999",
        )
        if not entries:
            continue
        message = render_digest(subscription, [alert for _, alert in entries], (start, end))
        store.publish(subscription.id, message)
        if subscription.channel == "webhook":
            app.send_task("pantau.alert.deliver_webhook", args=[subscription.id, message, digest])
