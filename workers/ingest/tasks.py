"""Ingest stage glue: dedup normalised articles, store them, hand them to extraction in batches."""

from __future__ import annotations

import logging
import time
import uuid
from functools import cache
from typing import Any

import kombu.exceptions
import redis

from workers import metrics, services
from workers.app import app
from workers.domain import Article, RawArticle
from workers.errors import InputError, PermanentError, TransientError
from workers.ingest import dedup
from workers.ingest.feeds import FeedConfig, load_feeds, next_poll_delay, parse_feed
from workers.ingest.fetch import fetch
from workers.ingest.fulltext import extract_page
from workers.ingest.normalise import normalise
from workers.ingest.urls import OutboundPolicy
from workers.outbox import Outbox
from workers.resources import config_file
from workers.settings import Settings
from workers.store import Store

log = logging.getLogger(__name__)

RETRY = {
    "autoretry_for": (TransientError, redis.ConnectionError, redis.TimeoutError),
    "retry_backoff": True,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 8,
}


# Publishing from the CLI and the API gives up after about 3 s: the outbox takes over from there.
QUICK_PUBLISH = {"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1.0}


# Articles per ingest message.
SEND_BATCH = 64


def send_articles(
    articles: list[Article],
    batch_size: int = SEND_BATCH,
    quick: bool = False,
    store: Store | None = None,
) -> None:
    """Enqueue normalised articles for the ingest stage (used by the CLI, the API and replays).

    With a store, each batch is also held in Redis until the ingest stage has stored it, so the
    reconciler can send it again if its message is lost (docs/RELIABILITY.md).
    """
    options: dict[str, Any] = {"retry_policy": QUICK_PUBLISH} if quick else {}
    for start in range(0, len(articles), batch_size):
        batch = [a.model_dump(mode="json") for a in articles[start : start + batch_size]]
        kwargs: dict[str, str] = {}
        if store is not None:
            kwargs["batch_id"] = uuid.uuid4().hex
            store.hold_batch(kwargs["batch_id"], batch, time.time())
        app.send_task("pantau.ingest.ingest_articles", args=[batch], kwargs=kwargs, **options)


def assign_stories(store: Store, articles: list[Article]) -> list[str]:
    """Each article's story: a near-duplicate's story within the window (stored, or earlier in
    this batch), else its own. One lookup and one write to Redis for the whole batch."""
    sigs = [None if a.story_id else dedup.signature(a.text) for a in articles]
    bands = [dedup.band_keys(sig) if sig else [] for sig in sigs]
    stored = store.story_candidates(bands)
    # Stories this batch opens, seen by the articles after them (as Redis will see them).
    batch_band: dict[str, str] = {}
    batch_sig: dict[str, str] = {}
    assigned: list[str] = []
    remember: list[tuple[str, str, list[str], bool]] = []
    for article, sig, keys, candidates in zip(articles, sigs, bands, stored, strict=True):
        if sig is None:  # a redelivery keeps what it was given
            assigned.append(str(article.story_id))
            continue
        in_batch = [(batch_band[k], batch_sig[batch_band[k]]) for k in keys if k in batch_band]
        for candidate, signature in dict(candidates + in_batch).items():
            if dedup.is_near_duplicate(sig, dedup.Signature.from_str(signature)):
                story_id, story_sig, opens = candidate, signature, False
                metrics.STORY_MERGES.inc()
                break
        else:
            story_id, story_sig, opens = article.id, sig.to_str(), True
        remember.append((story_id, story_sig, keys, opens))
        batch_sig.setdefault(story_id, story_sig)
        for key in keys:
            batch_band.setdefault(key, story_id)
        assigned.append(story_id)
    store.remember_stories(remember)
    return assigned


def ingest_batch(store: Store, articles: list[Article], batch_size: int) -> list[str]:
    """Drop exact duplicates, give each article its story, store, and enqueue for extraction."""
    started = time.perf_counter()
    fresh: list[Article] = []
    duplicates = 0
    in_batch: set[str] = set()
    seen = store.seen_article_ids([a.content_hash for a in articles])
    for article, first_id in zip(articles, seen, strict=True):
        # The same id again is a redelivery unless that article already went all the way through.
        redelivery = first_id == article.id and not store.is_completed(article.id)
        if (first_id is None or redelivery) and article.content_hash not in in_batch:
            in_batch.add(article.content_hash)
            fresh.append(article)
        else:
            duplicates += 1
    stories = assign_stories(store, fresh)
    fresh = [a.model_copy(update={"story_id": s}) for a, s in zip(fresh, stories, strict=True)]
    store.save_articles(fresh)
    ids = [a.id for a in fresh]
    store.track_inflight(ids, time.time())
    for start in range(0, len(ids), batch_size):
        app.send_task("pantau.extract.extract_batch", args=[ids[start : start + batch_size]])
    store.mark_seen(fresh)
    store.count_once("ingested", ids)
    store.count("duplicates", duplicates)
    metrics.DEDUP_DROPS.labels(kind="exact").inc(duplicates)
    metrics.ARTICLES.labels(stage="ingest", outcome="ok").inc(len(fresh))
    metrics.ARTICLES.labels(stage="ingest", outcome="duplicate").inc(duplicates)
    metrics.STAGE_SECONDS.labels(stage="ingest").observe(time.perf_counter() - started)
    metrics.LAST_SUCCESS.labels(stage="ingest").set_to_current_time()
    return ids


PUBLISH_ERRORS = (kombu.exceptions.OperationalError, redis.RedisError, OSError)


class SpoolFull(TransientError):
    """Redis is unreachable and the local outbox is full: the caller must retry later."""


def send_accepted(articles: list[Article], store: Store, quick: bool = True) -> None:
    """Send accepted articles and count them.

    `quick` gives up after ~3 s (callers that can spool: the API, feeds); without it the
    send retries as long as Celery's publisher does (the demo and the bench, which own Redis).
    """
    send_articles(articles, quick=quick, store=store)
    store.count("accepted", len(articles))


def publish(articles: list[Article], outbox: Outbox, store: Store) -> tuple[int, int]:
    """Send articles to the ingest queue, or spool them when Redis is unreachable.

    Spooled batches from earlier go first. Returns (sent, spooled); raises SpoolFull when
    the articles could be neither sent nor spooled.
    """
    outbox.drain(lambda batch: send_accepted(batch, store))
    try:
        send_accepted(articles, store)
    except PUBLISH_ERRORS as error:
        if not outbox.spool(articles):
            raise SpoolFull(f"Redis unreachable ({error}) and the outbox is full") from error
        log.warning("Redis unreachable (%s): %d article(s) spooled", error, len(articles))
        return 0, len(articles)
    return len(articles), 0


@app.task(name="pantau.ingest.ingest_articles", stage="ingest", **RETRY)
def ingest_articles(records: list[dict[str, Any]], batch_id: str | None = None) -> None:
    """Ingest normalised article records sent by the CLI, the API or a replay."""
    articles = [Article.model_validate(record) for record in records]
    store = services.store()
    ingest_batch(store, articles, services.settings().extract_batch_size)
    if batch_id:
        store.release_batch(batch_id)


@app.task(name="pantau.ingest.reconcile", stage="ingest")
def reconcile() -> None:
    """Beat's safety net: re-send work whose message was lost (none completed, none dead).

    Redis's transport can lose a message when a worker dies between taking it off the queue
    and recording it as unacked. Two kinds of work are tracked, each re-sent when it is still
    pending `PANTAU_RECONCILE_AFTER_S` after it was sent and older than any message still
    waiting in its queue: ingest batches held since they were published (`send_articles` with
    a store), and articles in flight since the ingest stage stored them. Every stage is
    idempotent, so a false alarm costs only work.
    """
    store = services.store()
    settings = services.settings()
    now = time.time()
    waiting = store.oldest_message_age_s()
    _reconcile_batches(store, _cutoff(now, settings.reconcile_after_s, waiting["ingest"]), now)
    _reconcile_articles(
        store, settings, _cutoff(now, settings.reconcile_after_s, waiting["extract"]), now
    )


def _cutoff(now: float, after_s: float, oldest_waiting_s: float | None) -> float:
    """Work sent before this Unix time is overdue: older than `after_s` and than the queue."""
    before = now - after_s
    return before if oldest_waiting_s is None else min(before, now - oldest_waiting_s)


def _reconcile_batches(store: Store, before: float, now: float) -> None:
    """Send again the ingest batches published before `before` that no ingest task stored."""
    resent = 0
    for batch_id in store.stale_batches(before):
        records = store.held_batch(batch_id)
        if records is None:  # stored just now, or its copy outlived PANTAU_ARTICLE_TTL_S
            store.forget_batch(batch_id)
            continue
        app.send_task(
            "pantau.ingest.ingest_articles", args=[records], kwargs={"batch_id": batch_id}
        )
        store.retrack_batch(batch_id, now)  # the clock restarts: no resend before the next period
        resent += len(records)
    if resent:
        store.count("reconciled", resent)
        metrics.RECONCILED.inc(resent)
        log.warning("reconcile: %d lost article(s) sent to ingest again", resent)


def _reconcile_articles(store: Store, settings: Settings, before: float, now: float) -> None:
    """Send again to extraction the stored articles in flight since before `before`."""
    stale = store.stale_inflight(before)
    if not stale:
        return
    done = [i for i in stale if store.is_completed(i) or store.dead_lettered_count([i])]
    store.settle(done)
    pending = [a.id for a in store.load_articles([i for i in stale if i not in set(done)])]
    expired = set(stale) - set(done) - set(pending)
    if expired:
        log.error(
            "%d in-flight article(s) expired before completing: %s",
            len(expired),
            sorted(expired)[:10],
        )
        store.settle(sorted(expired))
    for start in range(0, len(pending), settings.extract_batch_size):
        app.send_task(
            "pantau.extract.extract_batch",
            args=[pending[start : start + settings.extract_batch_size]],
        )
    store.track_inflight(pending, now)  # the clock restarts: no resend before the next period
    store.count("reconciled", len(pending))
    metrics.RECONCILED.inc(len(pending))
    log.warning("reconcile: %d lost article(s) sent to extraction again", len(pending))


@app.task(name="pantau.ingest.poll_feeds", stage="ingest", ignore_result=True)
def poll_feeds() -> None:
    """Beat's tick: enqueue a poll for every feed whose next poll is due."""
    store = services.store()
    for feed in feed_list():
        if store.claim_feed_poll(feed.url):
            app.send_task("pantau.ingest.poll_feed", args=[feed.url])


@app.task(name="pantau.ingest.poll_feed", stage="ingest", acks_late=True)
def poll_feed(url: str) -> None:
    """Fetch one feed (conditional GET), ingest its new entries, schedule the next poll."""
    store = services.store()
    settings = services.settings()
    feed = next((f for f in feed_list() if f.url == url), None)
    if feed is None:
        return
    state = store.feed_state(url)
    try:
        result = fetch(
            url,
            policy=outbound_policy(),
            max_bytes=settings.max_feed_bytes,
            etag=state.get("etag"),
            last_modified=state.get("last_modified"),
        )
    except (TransientError, PermanentError, InputError) as error:
        failures = int(state.get("failures", 0)) + 1
        delay = next_poll_delay(failures, feed.interval_s)
        store.update_feed_state(url, delay, failures=failures, last_error=str(error)[:500])
        metrics.FEED_POLLS.labels(outcome="error").inc()
        log.warning(
            "feed %s failed (%d in a row), next try in %.0f s: %s", url, failures, delay, error
        )
        return
    if result.not_modified or not result.body:
        store.update_feed_state(url, feed.interval_s, failures=0, last_status=result.status)
        metrics.FEED_POLLS.labels(outcome="not_modified").inc()
        return
    parsed = parse_feed(result.body, feed_url=url, feed_name=feed.name, language=feed.language)
    articles = feed_articles(store, feed, parsed.entries, settings)
    ids = ingest_batch(store, articles, settings.extract_batch_size) if articles else []
    store.count("accepted", len(articles))
    store.update_feed_state(
        url,
        feed.interval_s,
        failures=0,
        last_status=result.status,
        etag=result.etag or "",
        last_modified=result.last_modified or "",
        last_error=parsed.error or "",
        last_new=len(ids),
    )
    metrics.FEED_POLLS.labels(outcome="ok").inc()


def feed_articles(
    store: Store, feed: FeedConfig, entries: list[RawArticle], settings: Settings
) -> list[Article]:
    """Normalised articles for a feed's entries; full text fetched for new entries if asked."""
    articles = []
    for entry in entries:
        if feed.full_text and entry.url:
            probe = normalise(
                entry.model_copy(update={"text": entry.text or entry.title or "-"}),
                max_chars=settings.max_article_chars,
            )
            if store.is_ingested(probe.id):
                continue  # known entry: don't fetch its page again
            entry = full_text(entry, settings) or entry
        try:
            articles.append(
                normalise(
                    entry,
                    max_chars=settings.max_article_chars,
                    source=f"{feed.url} {entry.url or ''}",
                )
            )
        except InputError as error:
            log.info("feed entry skipped: %s", error)
    return articles


def full_text(entry: RawArticle, settings: Settings) -> RawArticle | None:
    """The entry's page text (trafilatura), keeping the feed's fields where the page has none."""
    assert entry.url is not None
    try:
        page = fetch(entry.url, policy=outbound_policy(), max_bytes=settings.max_feed_bytes)
    except (TransientError, PermanentError, InputError) as error:
        log.info("full text of %s not fetched: %s", entry.url, error)
        return None
    extracted = extract_page(page.body or b"", page.final_url) if page.body else None
    if extracted is None or not extracted.text.strip():
        return None
    return extracted.model_copy(
        update={
            "title": extracted.title or entry.title,
            "author": extracted.author or entry.author,
            "published_at": extracted.published_at or entry.published_at,
            "source": entry.source,
            "language": entry.language or extracted.language,
            "url": extracted.url or entry.url,
        }
    )


_feeds_cache: dict[str, Any] = {"mtime": None, "feeds": []}


def feed_list() -> list[FeedConfig]:
    """The configured feeds, re-read when config/feeds.yaml changes (a bad edit keeps the last)."""
    path = config_file("feeds.yaml", services.settings().feeds)
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return []
    if mtime != _feeds_cache["mtime"]:
        _feeds_cache["mtime"] = mtime
        try:
            _feeds_cache["feeds"] = load_feeds(path)
        except InputError as error:
            log.error("feeds not reloaded: %s", error)
    return list(_feeds_cache["feeds"])


@cache
def outbound_policy() -> OutboundPolicy:
    """The SSRF policy for feeds and pages (PANTAU_OUTBOUND_ALLOWLIST)."""
    return OutboundPolicy.from_setting(services.settings().outbound_allowlist)
