"""The seed article through real Redis and real workers of all three queues."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from tests.integration.conftest import Pipeline, make_settings, wait_until
from workers.app import app
from workers.domain import Article, Extraction, RawArticle
from workers.extract.pipeline import PIPE_BATCH
from workers.extract.tasks import HAND_ON_AT, SPLIT_AT, halves
from workers.ingest.normalise import normalise
from workers.ingest.tasks import send_articles
from workers.metrics import sample_sum
from workers.store import Store


def _alerts_for(pipeline: Pipeline, article_id: str) -> list[str]:
    return sorted(a.actor_id for _, a in pipeline.store.read_alerts() if a.article_id == article_id)


def test_pipeline_seed_alerts_watched_actors_once(pipeline: Pipeline, seed_text: str) -> None:
    article = normalise(RawArticle(text=seed_text, source="Bisnis.com"), max_chars=1_000_000)
    send_articles([article])
    wait_until(lambda: pipeline.store.is_completed(article.id), 120, "the seed to complete")
    assert _alerts_for(pipeline, article.id) == ["choe-son-hui", "kim-jong-un", "vladimir-putin"]
    alert = next(a for _, a in pipeline.store.read_alerts() if a.actor_id == "kim-jong-un")
    assert alert.ingested_at <= alert.alerted_at and alert.alerted_at.endswith("Z")
    assert all(seed_text.replace("\r\n", "\n")[s.start : s.end] == s.text for s in alert.spans)

    # Re-ingesting the same article is an exact duplicate: dropped, no second alert.
    duplicates = pipeline.counter("duplicates")
    send_articles([normalise(RawArticle(text=seed_text), max_chars=1_000_000)])
    wait_until(lambda: pipeline.counter("duplicates") == duplicates + 1, 60, "the duplicate drop")
    pipeline.wait_idle()
    assert _alerts_for(pipeline, article.id) == ["choe-son-hui", "kim-jong-un", "vladimir-putin"]

    # A redelivered alert task (the same ids again) records nothing new.
    alerts_before = pipeline.counter("alerts")
    app.send_task("pantau.alert.evaluate", args=[[article.id]])
    app.send_task("pantau.extract.extract_batch", args=[[article.id]])
    pipeline.wait_idle()
    assert pipeline.counter("alerts") == alerts_before


def test_pipeline_article_without_watched_actor_alerts_nobody(pipeline: Pipeline) -> None:
    article = normalise(
        RawArticle(text="Presiden Prancis Emmanuel Macron tiba di Jakarta pada Senin."),
        max_chars=10_000,
    )
    send_articles([article])
    wait_until(lambda: pipeline.store.is_completed(article.id), 60, "the article to complete")
    assert _alerts_for(pipeline, article.id) == []


def test_pipeline_poison_message_is_dead_lettered_and_workers_keep_running(
    pipeline: Pipeline,
) -> None:
    depth = pipeline.store.dlq_depth()
    app.send_task("pantau.ingest.ingest_articles", args=[[{"id": "poison", "text": 42}]])
    wait_until(lambda: pipeline.store.dlq_depth() == depth + 1, 60, "the dead letter")
    entry = pipeline.store.dead_letters(count=1000)[-1][1]
    assert entry["task"] == "pantau.ingest.ingest_articles" and "ValidationError" in entry["error"]
    assert pipeline.deployment.dead_processes() == []
    article = normalise(
        RawArticle(text="Vladimir Putin berbicara di Moskow tentang ekonomi."), max_chars=10_000
    )
    send_articles([article])
    wait_until(lambda: pipeline.store.is_completed(article.id), 60, "work after the poison")
    assert _alerts_for(pipeline, article.id) == ["vladimir-putin"]


def test_pipeline_redelivered_extract_message_pins_a_hard_crash_on_one_article(
    pipeline: Pipeline,
) -> None:
    """A delivery after one whose worker died goes one article at a time: it keeps what an
    earlier delivery stored, dead-letters alone the article the worker died on twice, and
    extracts the rest."""
    kept, culprit, fresh = [
        normalise(RawArticle(text=f"Vladimir Putin bertemu {name} di Moskow."), max_chars=10_000)
        for name in ("Emmanuel Macron", "Olaf Scholz", "Narendra Modi")
    ]
    articles = [kept, culprit, fresh]
    pipeline.store.save_articles(articles)
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    # What earlier deliveries left: `kept` extracted and stored (no entities, so a second
    # extraction would show in its alerts), then two deaths while holding `culprit` alone.
    stored = Extraction(
        article_id=kept.id,
        story_id=kept.id,
        language="id",
        text=kept.text,
        ingested_at=now,
        extracted_at=now,
    )
    pipeline.store.save_extractions([stored])
    task_id = uuid.uuid4().hex
    pipeline.store.count_delivery(task_id, 0)
    pipeline.store.note_attempt(task_id, culprit.id)
    pipeline.store.note_attempt(task_id, culprit.id)
    app.send_task("pantau.extract.extract_batch", args=[[a.id for a in articles]], task_id=task_id)
    wait_until(
        lambda: pipeline.store.is_completed(kept.id) and pipeline.store.is_completed(fresh.id),
        60,
        "the other articles to complete",
    )
    entries = [e for _, e in pipeline.store.dead_letters(count=1000) if culprit.id in e["args"]]
    assert len(entries) == 1 and json.loads(entries[0]["article_ids"]) == [culprit.id]
    assert "died 2 times extracting this article alone" in entries[0]["error"]
    assert not pipeline.store.is_completed(culprit.id)
    assert _alerts_for(pipeline, kept.id) == []  # the stored extraction, not a new one
    assert _alerts_for(pipeline, fresh.id) == ["vladimir-putin"]
    assert pipeline.store.attempts(task_id) == {}


def test_pipeline_second_poison_article_gets_its_own_deliveries(pipeline: Pipeline) -> None:
    """A message whose earlier deliveries dead-lettered one article alone and then died on a
    second: the delivery limit counts from the first isolation, not from the first delivery,
    so this delivery (past the limit in all) still runs; it skips the isolated article,
    dead-letters the second alone and extracts the rest."""
    first, second, fresh = [
        normalise(RawArticle(text=f"Vladimir Putin bertemu {name} di Moskow."), max_chars=10_000)
        for name in ("Xi Jinping", "Recep Tayyip Erdogan", "Luiz Inacio Lula")
    ]
    pipeline.store.save_articles([first, second, fresh])
    task_id = uuid.uuid4().hex
    limit = pipeline.settings.max_deliveries
    # What earlier deliveries left: delivery 4 dead-lettered `first` alone (isolated), then the
    # worker died twice holding `second` alone, up to the limit.
    for _ in range(4):
        pipeline.store.count_delivery(task_id, 0)
    pipeline.store.isolate(task_id, 0, 4, first.id)
    for _ in range(limit - 4):
        pipeline.store.count_delivery(task_id, 0)
    pipeline.store.note_attempt(task_id, second.id)
    pipeline.store.note_attempt(task_id, second.id)
    depth = pipeline.store.dlq_depth()
    app.send_task(
        "pantau.extract.extract_batch", args=[[first.id, second.id, fresh.id]], task_id=task_id
    )
    wait_until(lambda: pipeline.store.is_completed(fresh.id), 60, "the other article to complete")
    entries = pipeline.store.dead_letters(count=1000)[depth:]
    assert [json.loads(e["article_ids"]) for _, e in entries] == [[second.id]]
    assert "died 2 times extracting this article alone" in entries[0][1]["error"]
    assert not pipeline.store.is_completed(first.id) and not pipeline.store.is_completed(second.id)
    assert _alerts_for(pipeline, fresh.id) == ["vladimir-putin"]
    # The count itself stays true: limit + 1 deliveries of this message.
    assert pipeline.store.count_delivery(task_id, 0)[0] == limit + 2


def test_pipeline_status_reports_workers_and_counters(pipeline: Pipeline) -> None:
    status = pipeline.store.status()
    assert set(status["queues"]) == {"ingest", "extract", "alert"}
    kinds = {w["kind"] for w in status["workers"] if w["alive"]}
    assert kinds == {"ingest", "extract", "alert"}
    pids = {w["pid"] for w in status["workers"]}
    assert pids == {p.pid for p in pipeline.deployment.processes.values()}
    assert {"ingested", "completed", "dead_lettered"} <= set(status["articles"])


def test_pipeline_reconciler_resends_an_article_whose_message_was_lost(pipeline: Pipeline) -> None:
    """A message lost between the queue and the worker (the article is stored, no message
    carries it) is found by the reconciler and completes."""
    article = normalise(
        RawArticle(text="Vladimir Putin menelepon Presiden Turki soal gandum."), max_chars=10_000
    )
    store = pipeline.store
    store.save_articles([article.model_copy(update={"story_id": article.id})])
    store.track_inflight([article.id], at=0.0)  # entered long ago; its message never arrives
    reconciled = pipeline.counter("reconciled")
    app.send_task("pantau.ingest.reconcile")
    wait_until(lambda: store.is_completed(article.id), 60, "the reconciled article")
    assert pipeline.counter("reconciled") == reconciled + 1
    assert article.id not in store.stale_inflight(before=10**12)
    assert _alerts_for(pipeline, article.id) == ["vladimir-putin"]


def test_pipeline_reconciler_resends_an_ingest_batch_whose_message_was_lost(
    pipeline: Pipeline,
) -> None:
    """An ingest message lost before any worker recorded it: the batch held at publish time is
    sent again by the reconciler and completes; a batch that went through is released."""
    store = pipeline.store
    held = store.redis.zcard(store.key("held_batches"))
    through = normalise(RawArticle(text="Menteri Choe Son Hui tiba di Moskow."), max_chars=10_000)
    send_articles([through], store=store)
    wait_until(lambda: store.is_completed(through.id), 60, "the article sent normally")
    assert store.redis.zcard(store.key("held_batches")) == held  # released by the ingest task

    lost = normalise(
        RawArticle(text="Kim Jong Un menerima Vladimir Putin di Pyongyang."), max_chars=10_000
    )
    store.hold_batch("lost-batch", [lost.model_dump(mode="json")], at=0.0)  # message never sent
    reconciled = pipeline.counter("reconciled")
    app.send_task("pantau.ingest.reconcile")
    wait_until(lambda: store.is_completed(lost.id), 60, "the reconciled batch")
    assert pipeline.counter("reconciled") == reconciled + 1
    assert store.held_batch("lost-batch") is None
    assert "lost-batch" not in store.stale_batches(before=10**12)
    assert sorted(_alerts_for(pipeline, lost.id)) == ["kim-jong-un", "vladimir-putin"]


def test_pipeline_dead_lettered_ingest_batch_is_no_longer_held(pipeline: Pipeline) -> None:
    """A batch the ingest stage refuses goes to the dead-letter stream, which keeps it: the
    reconciler must not send it again and again."""
    store = pipeline.store
    record = {"id": "not-an-article"}  # no text: the ingest task cannot validate it
    store.hold_batch("refused-batch", [record], at=0.0)
    app.send_task(
        "pantau.ingest.ingest_articles", args=[[record]], kwargs={"batch_id": "refused-batch"}
    )
    wait_until(
        lambda: any(
            "refused-batch" in fields["kwargs"] for _, fields in store.dead_letters(count=1000)
        ),
        60,
        "the dead letter",
    )
    assert store.held_batch("refused-batch") is None
    assert "refused-batch" not in store.stale_batches(before=10**12)


def _redelivered_extracts(pipeline: Pipeline, ids: list[str], task_id: str) -> float:
    """Send a message again under its task id (as a redelivery brings it back: all its ids);
    how many articles the extract stage counts for it."""

    def extracted() -> float:
        return sample_sum(str(pipeline.settings.metrics_dir / "extract"), "pantau_articles_total")

    done = extracted()
    app.send_task("pantau.extract.extract_batch", args=[ids], task_id=task_id)
    wait_until(lambda: extracted() > done, 60, "the redelivered message to finish")
    pipeline.wait_idle()
    return extracted() - done


@contextlib.contextmanager
def second_extract_worker(store: Store) -> Iterator[None]:
    """A live extract worker "on another host" in the registry (it takes no messages): the
    test pipeline's one extract child then has another pool process to cut and hand on for."""
    name = "extract.1.0@elsewhere"
    store.register_worker(name, "extract", 1, "elsewhere", concurrency=1)
    store.redis.set(store.key("worker", name, "alive"), "1", ex=600)  # no heartbeat thread
    try:
        yield
    finally:
        store.unregister_worker(name)


def _extract_splits(pipeline: Pipeline) -> float:
    return sample_sum(str(pipeline.settings.metrics_dir / "extract"), "pantau_extract_splits_total")


def test_halves_cuts_a_long_message_only_while_the_extract_queue_is_empty(
    redis_url: str, tmp_path: Path
) -> None:
    settings = make_settings(redis_url, tmp_path)
    store = Store.connect(redis_url, settings)
    ids = [f"article-{i}" for i in range(40)]
    try:
        store.register_worker("extract.1.0@here", "extract", 1, "here", concurrency=1)
        assert halves(store, ids) == (ids, [])  # one pool process: nobody to cut for
        store.register_worker("extract.2.0@there", "extract", 2, "there", concurrency=1)
        assert halves(store, ids) == (ids[:20], ids[20:])
        short = ids[: SPLIT_AT - 1]
        assert halves(store, short) == (short, [])
        store.redis.lpush(store.key("extract"), "another message")
        assert halves(store, ids) == (ids, [])
    finally:
        store.drop_namespace()


def test_pipeline_splits_an_extract_message_taken_from_an_empty_queue(pipeline: Pipeline) -> None:
    """The second half of a long message goes on as a message of its own; every article of
    both halves completes."""
    pipeline.wait_idle()
    articles = [
        normalise(
            RawArticle(text=f"Vladimir Putin menerima delegasi ke-{i} di Moskow pada hari {i}."),
            max_chars=10_000,
        )
        for i in range(SPLIT_AT + 8)
    ]
    pipeline.store.save_articles(articles)
    before = _extract_splits(pipeline)
    ids = [a.id for a in articles]
    task_id = uuid.uuid4().hex
    with second_extract_worker(pipeline.store):
        app.send_task("pantau.extract.extract_batch", args=[ids], task_id=task_id)
        wait_until(
            lambda: all(pipeline.store.is_completed(a.id) for a in articles),
            60,
            "both halves to complete",
        )
    # 40 ids: one cut into 20 + 20. The kept 20 hand nothing on (the other 20 wait in the
    # queue: the registered second worker takes nothing). The test pipeline's one child then
    # takes those 20 from an empty queue: too few to cut, but 12 are left after its first pipe
    # batch, so it hands 6 on (`extract_sharing`).
    assert _extract_splits(pipeline) == before + 2
    assert all(_alerts_for(pipeline, a.id) == ["vladimir-putin"] for a in articles)
    assert pipeline.store.kept_after_cut(task_id) == ids[:20]

    # The message again (as a redelivery brings it back: all 40 ids): it keeps its own half.
    assert _redelivered_extracts(pipeline, ids, task_id) == 20
    assert _extract_splits(pipeline) == before + 2


def _short_articles(count: int, tag: str) -> list[Article]:
    return [
        normalise(
            RawArticle(
                text=f"Vladimir Putin menerima utusan {tag} ke-{i} di Moskow pada pekan ke-{i}.",
                language="id",
            ),
            max_chars=10_000,
        )
        for i in range(count)
    ]


def test_pipeline_hands_on_half_of_what_is_left_when_another_extract_child_may_be_idle(
    pipeline: Pipeline,
) -> None:
    """A message too short to cut when taken still shares its work: after its first pipe batch
    the extract queue is empty, so half of the rest goes on as a message of its own, once the
    live extract workers have a second pool process between them (here a registered worker
    "on another host"; the test pipeline's one child takes the handed-on part itself). Every
    article completes once; a redelivery keeps the part the message kept."""
    store = pipeline.store
    pipeline.wait_idle()
    count = SPLIT_AT - 1  # not cut when taken
    assert store.worker_slots("extract") == 1
    alone = _short_articles(count, "A")
    store.save_articles(alone)
    before = _extract_splits(pipeline)
    app.send_task("pantau.extract.extract_batch", args=[[a.id for a in alone]])
    wait_until(lambda: all(store.is_completed(a.id) for a in alone), 60, "the message")
    assert _extract_splits(pipeline) == before  # one pool process: nobody to hand on to

    articles = _short_articles(count, "B")
    store.save_articles(articles)
    ids = [a.id for a in articles]
    task_id = uuid.uuid4().hex
    with second_extract_worker(store):
        assert store.worker_slots("extract") == 2
        app.send_task("pantau.extract.extract_batch", args=[ids], task_id=task_id)
        wait_until(
            lambda: all(store.is_completed(a.id) for a in articles), 60, "both parts to complete"
        )
    # 31 ids: a pipe batch of 8 extracted, 23 left: 11 kept, 12 handed on. Then fewer than
    # HAND_ON_AT are left in either part, so neither hands on again.
    assert PIPE_BATCH == HAND_ON_AT == 8
    assert _extract_splits(pipeline) == before + 1
    kept = 8 + 11
    assert store.kept_after_cut(task_id) == ids[:kept]
    assert all(_alerts_for(pipeline, a.id) == ["vladimir-putin"] for a in articles)

    assert _redelivered_extracts(pipeline, ids, task_id) == kept
