"""Extract stage glue: load stored articles, run the extractor, store results, hand on to alerts."""

from __future__ import annotations

import logging
import os
import time
import traceback
from collections import Counter
from functools import cache
from typing import NamedTuple

from workers import metrics, services
from workers.app import app
from workers.dlq import dead_letter
from workers.domain import Article, Extraction
from workers.extract.pipeline import PIPE_BATCH, Extractor
from workers.ingest.tasks import RETRY
from workers.store import ISOLATED, Store
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


# Chaos tests only (tests/chaos): the extract worker crashes on these article ids (one, or
# several separated by commas), hard (os._exit in the pool child) or, with
# PANTAU_FAULT_INJECT_MODE=raise, with an exception.
# A no-op unless PANTAU_FAULT_INJECT_ARTICLE is set in the worker's environment.
FAULT_INJECT_ARTICLE = "PANTAU_FAULT_INJECT_ARTICLE"
FAULT_INJECT_MODE = "PANTAU_FAULT_INJECT_MODE"


def _inject_fault(articles: list[Article]) -> None:
    raw = os.environ.get(FAULT_INJECT_ARTICLE)
    if not raw:
        return
    targets = set(raw.split(","))
    hit = next((article.id for article in articles if article.id in targets), None)
    if hit is None:
        return
    if os.environ.get(FAULT_INJECT_MODE) == "raise":
        raise RuntimeError(f"fault injected on article {hit} ({FAULT_INJECT_ARTICLE})")
    os._exit(1)


def extractor() -> Extractor:
    """This process's extractor (pipelines loaded once), following watchlist changes."""
    current = _extractor()
    watchlist = _watchlist_source().current()
    if watchlist is not current.watchlist:
        current.set_watchlist(watchlist)
    return current


# A message taken while the extract queue is empty is cut in two when it holds at least this
# many articles and the live extract workers have more than one pool process between them
# (`halves`): an idle extract child, of this worker or another, takes the second half at once,
# so K children share a burst's last message (or a feed poll's lone batch) instead of one
# extracting it all while the others wait.
SPLIT_AT = 32


def _shared_with_others(store: Store) -> bool:
    """Whether another extract pool process may be idle: the extract queue is empty, and the
    live extract workers (on every host) have more than one pool process between them."""
    return not store.queue_depths()["extract"] and store.worker_slots("extract") > 1


def halves(store: Store, article_ids: list[str]) -> tuple[list[str], list[str]]:
    """The ids this task keeps and the ids to send on as a message of their own: the second
    half when the message is long enough and another extract child may be idle, else none."""
    if len(article_ids) < SPLIT_AT or not _shared_with_others(store):
        return article_ids, []
    middle = len(article_ids) // 2
    return article_ids[:middle], article_ids[middle:]


# While it extracts, a task whose message was taken first (not redelivered, not retried) looks
# again after each pipe batch. When at least this many articles are left and another extract
# child may be idle (as for `halves`), it sends the second half of what is left on as a
# message of its own (an idle child takes it) and goes on with the first half: the last
# messages of a burst end together on K children, instead of one finishing a long message
# while the others wait. Each half is at least half a pipe batch.
HAND_ON_AT = PIPE_BATCH


def extract_sharing(store: Store, kept: list[Article], task_id: str) -> list[Extraction]:
    """Extract `kept`, handing the second half of what is left on whenever another extract
    child may be idle (see `HAND_ON_AT`). `kept` shrinks as it does (what this task still
    answers for, should the extractor raise); Redis notes each new kept list after the
    hand-on (`Store.note_cut`), so a later delivery of the message keeps only its part.
    """

    def someone_idle(left: int) -> bool:
        return left >= HAND_ON_AT and _shared_with_others(store)

    done: list[Extraction] = []
    pending = list(kept)
    while pending:
        extracted, pending = extractor().extract_until(pending, someone_idle)
        done.extend(extracted)
        if not pending:
            break
        middle = len(pending) // 2
        pending, rest = pending[:middle], pending[middle:]
        app.send_task("pantau.extract.extract_batch", args=[[a.id for a in rest]])
        handed_on = {a.id for a in rest}
        kept[:] = [a for a in kept if a.id not in handed_on]
        if task_id:
            store.note_cut(task_id, [a.id for a in kept])
        metrics.EXTRACT_SPLITS.inc()
    return done


# A redelivered message (its worker died on it) is extracted one article at a time; an article
# whose extraction alone was started this often without finishing is dead-lettered by itself.
DIED_ON_LIMIT = 2


class Delivery(NamedTuple):
    """Which delivery of which message a task is running (Celery's request)."""

    task_id: str
    retries: int
    number: int  # 1 for the first delivery (`PantauTask.__call__` counts them)


@app.task(name="pantau.extract.extract_batch", stage="extract", **RETRY)
def extract_batch(article_ids: list[str]) -> None:
    """Tag entities and events in stored articles, then hand them to the alert stage.

    The batch goes through the extractor at once, unless another extract child may be idle
    (the extract queue is empty, and there is more than one extract pool process): then its
    second half goes back to the queue first (`halves`); on a first delivery, so does the
    second half of what is left whenever another extract child may be idle between pipe
    batches (`extract_sharing`). When the extractor raises, and on every delivery after one
    whose worker died (a segfault, an OOM kill), the articles go one at a time instead
    (`extract_one_by_one`): the culprit is dead-lettered alone, the others go on. A message
    comes back (redelivered, or retried after an error) with all the ids it was sent with:
    after a cut it keeps only its own part, which Redis remembers.
    """
    store = services.store()
    started = time.perf_counter()
    request = extract_batch.request
    delivery = Delivery(
        request.id or "", request.retries or 0, getattr(request, "pantau_deliveries", 1)
    )
    task_id, deliveries = delivery.task_id, delivery.number
    if deliveries == 1 and not delivery.retries:
        article_ids, rest = halves(store, article_ids)
        if rest:
            app.send_task("pantau.extract.extract_batch", args=[rest])
            # Noted after sending: a death in between repeats the second half's work (the next
            # delivery has all the ids) instead of losing it.
            if task_id:
                store.note_cut(task_id, article_ids)
            metrics.EXTRACT_SPLITS.inc()
    elif task_id:
        article_ids = store.kept_after_cut(task_id) or article_ids
    articles = store.load_articles(article_ids)
    if len(articles) < len(article_ids):
        log.warning(
            "%d of %d articles expired before extraction",
            len(article_ids) - len(articles),
            len(article_ids),
        )
    cpu_started = time.process_time()
    if deliveries > 1:
        log.warning("message %s delivered again: extracting one article at a time", task_id)
        results = extract_one_by_one(store, articles, delivery)
    else:
        try:
            _inject_fault(articles)
            if delivery.retries:
                results = extractor().extract_many(articles)
            else:
                results = extract_sharing(store, articles, task_id)
        except Exception:
            log.exception("batch of %d failed; extracting one by one", len(articles))
            results = extract_one_by_one(store, articles, delivery)
        else:
            store.save_extractions(results)
    metrics.EXTRACT_CPU_SECONDS.inc(time.process_time() - cpu_started)
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


def extract_one_by_one(
    store: Store, articles: list[Article], delivery: Delivery
) -> list[Extraction]:
    """Extract and store each article alone; dead-letter the one that fails.

    An exception names its article at once. A hard crash kills the process, so each article's
    start is noted in Redis first (`Store.note_attempt`): on the next delivery the articles
    already stored are kept, and one started `DIED_ON_LIMIT` times without finishing is
    dead-lettered alone. Twice, so that a worker killed from outside (an operator, a
    deploy) while it held an innocent article does not condemn it. Dead-lettering it restarts
    the count the delivery limit applies to (`Store.isolate`), so a second poison article in
    the same message is isolated the same way instead of the limit taking the whole message;
    later deliveries skip the isolated one.
    """
    task_id = delivery.task_id
    attempts = store.attempts(task_id) if task_id else {}
    stored = {e.article_id: e for e in store.load_extractions([a.id for a in articles])}
    results: list[Extraction] = []
    for article in articles:
        if article.id in stored:  # extracted by an earlier delivery before it died
            results.append(stored[article.id])
            continue
        died_on = attempts.get(article.id, 0)
        if died_on == ISOLATED:  # an earlier delivery of this message dead-lettered it
            continue
        if died_on >= DIED_ON_LIMIT:
            _dead_letter_one(
                store,
                article,
                delivery,
                f"the worker died {died_on} times extracting this article alone",
            )
            continue
        if task_id:
            store.note_attempt(task_id, article.id)
        try:
            _inject_fault([article])
            extraction = extractor().extract_many([article])
        except Exception as error:
            error_text = f"{type(error).__name__}: {error}"
            _dead_letter_one(store, article, delivery, error_text, traceback.format_exc())
            continue
        store.save_extractions(extraction)
        results.extend(extraction)
    if task_id:
        store.forget_attempts(task_id)
    return results


def _dead_letter_one(
    store: Store, article: Article, delivery: Delivery, error: str, trace: str = ""
) -> None:
    """Dead-letter one article of a message alone; the message's later deliveries skip it."""
    dead_letter(
        store,
        task=extract_batch.name,
        stage="extract",
        args=[[article.id]],
        kwargs={},
        error=error,
        traceback=trace,
        task_id=delivery.task_id,
        retries=0,
    )
    if delivery.task_id:
        store.isolate(delivery.task_id, delivery.retries, delivery.number, article.id)
    metrics.ARTICLES.labels(stage="extract", outcome="dead_lettered").inc()
