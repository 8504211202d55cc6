"""Fault injection on a real deployment: every article is completed or dead-lettered, none lost.

Run with `.venv/bin/python -m pytest tests/chaos -s` to see the fault table (also appended to
artifacts/chaos.jsonl, one JSON line per scenario).
"""

from __future__ import annotations

import json
import re
import signal
import time
from collections import Counter
from contextlib import suppress
from pathlib import Path

import psutil
import pytest

from tests.chaos.conftest import (
    ChaosPipeline,
    ChaosRedis,
    Replay,
    Row,
    chaos_pipeline,
    corpus,
    pending,
    redeliveries,
    report,
    tally,
    wait_accounted,
    wait_for,
)
from workers.alert.subscriptions import SubscriptionIn
from workers.alert.webhooks import message_id
from workers.api.subscriptions import create_subscription
from workers.bench_latency import WebhookReceiver
from workers.extract.tasks import FAULT_INJECT_ARTICLE, FAULT_INJECT_MODE
from workers.ingest.tasks import publish
from workers.ingest.urls import OutboundPolicy

pytestmark = pytest.mark.chaos

WEBHOOK_RETRY_S = 420  # a delivery's 7th try can wait 300 s (backoff ceiling), plus margin
DRAIN_S = 240  # the longest wait: SIGKILLed messages come back after VT (60 s) + a sweep (<=100 s)


def _finish(
    fault: str,
    pipeline: ChaosPipeline,
    ids: list[str],
    started: float,
    recovered: float | None,
    since: float,
    raw_duplicates: int = 0,
    notes: str = "",
) -> Row:
    """Account for every id, print and record the row, and fail on any loss."""
    counted = tally(pipeline.store, ids)
    repeated, extra = redeliveries(pipeline.store)
    row = Row(
        fault=fault,
        sent=len(ids),
        processed=counted.processed,
        dead_lettered=counted.dead_lettered,
        lost=len(counted.lost),
        raw_duplicates=raw_duplicates,
        redelivered_messages=repeated,
        redeliveries=extra,
        recover_s=round(recovered - since, 1) if recovered else None,
        wall_s=round(time.monotonic() - started, 1),
        notes=notes,
    )
    report(row)
    assert not counted.lost, f"{len(counted.lost)} article(s) lost, e.g. {counted.lost[:5]}"
    assert recovered is not None, "the pipeline did not drain in time"
    return row


def _kill(pid: int) -> None:
    with suppress(psutil.NoSuchProcess):
        psutil.Process(pid).send_signal(signal.SIGKILL)


def _extract_reserved(pipeline: ChaosPipeline) -> bool:
    """Whether an extract message is reserved (in kombu's unacked hash): the worker runs it."""
    unacked = pipeline.store.key("unacked")
    return any(
        "pantau.extract.extract_batch" in raw for _, raw in pipeline.store.redis.hscan_iter(unacked)
    )


def test_extract_worker_sigkilled_mid_replay(
    chaos_redis: ChaosRedis, tmp_path: Path, chaos_watchlist: Path
) -> None:
    """SIGKILL the pool child (requeued at once: reject_on_worker_lost), then the main process
    while it runs a batch (the batch comes back after the visibility timeout), then restart it.

    The main process is killed while an extract message is reserved (recorded in kombu's unacked
    hash), with batches of 64 so a task lasts long enough to aim at. Killed at a random moment,
    it can also die between BRPOP taking a message off the queue and kombu recording it as
    unacked: that message is in no queue (seen in two runs, 16 and 50 articles; see
    docs/RELIABILITY.md). Beat runs, with the reconciler after 60 s, as in a deployment: it is
    what sends such articles to extraction again."""
    articles = corpus()
    ids = [a.id for a in articles]
    # Published at once just before the main process is aimed at: ten extract batches queued,
    # so one is reserved however fast extraction kept up with the paced replay until then.
    aimed = list(articles[-640:])
    with chaos_pipeline(
        chaos_redis,
        tmp_path / "var",
        chaos_watchlist,
        beat=True,
        visibility_timeout_s=60,
        reconcile_after_s=60,
        extract_batch_size=64,
    ) as pipeline:
        started = time.monotonic()
        replay = Replay(pipeline, articles[:-640], pause_s=0.5)
        replay.start()
        assert wait_for(lambda: pipeline.counter("extracted") >= 150, 120), "no extraction"
        main = psutil.Process(pipeline.deployment.processes["extract"].pid)
        child = main.children()[0]
        child.send_signal(signal.SIGKILL)
        child_killed = time.monotonic()
        before = pipeline.counter("extracted")
        # The main process forks a new child (which loads the models) and carries on. Kill the
        # main process soon after: kombu sweeps for expired unacked messages every ~100 s.
        resumed = wait_for(lambda: pipeline.counter("extracted") > before, 120)
        assert resumed, "extraction did not resume after the pool child was killed"
        sent, spooled = publish(aimed, pipeline.outbox, pipeline.store)
        assert (sent, spooled) == (len(aimed), 0)
        assert wait_for(lambda: _extract_reserved(pipeline), 60), "no batch to kill the worker in"
        orphans = [p.pid for p in main.children()]
        main.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        for pid in orphans:  # the pool children would outlive their parent otherwise
            _kill(pid)
        pipeline.deployment.processes.pop("extract").wait(timeout=10)
        pipeline.start(("extract",))
        replay.finish()
        recovered = wait_accounted(pipeline, ids, DRAIN_S)
        _finish(
            "a) extract pool child + main SIGKILL, restart",
            pipeline,
            ids,
            started,
            recovered,
            killed,
            notes=f"visibility_timeout_s=60, extract_batch_size=64; pool child replaced and "
            f"extracting again after {resumed - child_killed:.1f} s; reconciled="
            f"{pipeline.counter('reconciled')}; recover_s from the main SIGKILL (its unacked "
            "batch is restored after VT + kombu's restore sweep)",
        )


def test_redis_restarted_mid_replay(
    chaos_redis: ChaosRedis, tmp_path: Path, chaos_watchlist: Path
) -> None:
    """Stop Redis (AOF written), 2 s down, start it again on the same port and directory; a
    batch published during the outage goes to the outbox and is sent once Redis is back;
    workers reconnect by themselves.

    Beat runs, with the reconciler after 60 s: a message a worker took off its queue just as
    Redis shut down (BRPOP answered, the unacked write refused) is in no queue and not in
    `unacked`; one run lost an extract batch of 16 that way without it (docs/RELIABILITY.md).
    """
    articles = corpus()
    ids = [a.id for a in articles]
    held = list(articles[-100:])  # published while Redis is down
    with chaos_pipeline(
        chaos_redis,
        tmp_path / "var",
        chaos_watchlist,
        beat=True,
        visibility_timeout_s=60,
        reconcile_after_s=60,
    ) as pipeline:
        started = time.monotonic()
        replay = Replay(pipeline, articles[:-100], pause_s=0.5)
        replay.start()
        assert wait_for(lambda: pipeline.counter("extracted") >= 150, 120), "no extraction"
        chaos_redis.stop()
        down = time.monotonic()
        sent, spooled = publish(held, pipeline.outbox, pipeline.store)
        assert (sent, spooled) == (0, len(held)), "Redis was down: the batch must be spooled"
        time.sleep(max(0.0, 2 - (time.monotonic() - down)))
        chaos_redis.start()
        back = time.monotonic()
        # kombu 5.x can crash a worker's main process while it restores unacked messages on a
        # lost connection ("Unrecoverable error: ... 'NoneType' object has no attribute
        # 'hostname'"). `pantau up` restarts an exited worker; do the same here and count it.
        restarted: list[str] = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for kind in pipeline.deployment.dead_processes():
                restarted.append(kind)
                pipeline.deployment.restart(kind)
            time.sleep(0.5)
        replay.finish()  # the replay's own batches, then whatever the outbox holds
        recovered = wait_accounted(pipeline, ids, DRAIN_S)
        assert pipeline.deployment.dead_processes() == [], "a worker died after the restart"
        _finish(
            "b) Redis restart (2 s down, AOF)",
            pipeline,
            ids,
            started,
            recovered,
            back,
            notes=f"down {back - down:.1f} s; workers restarted: {restarted or 'none'}; "
            f"spooled to the outbox: {len(held)} held back + "
            f"{replay.spooled} from the replay; reconciled="
            f"{pipeline.counter('reconciled')}; recover_s from Redis back up",
        )


def _subscribe(pipeline: ChaosPipeline, hooks: WebhookReceiver) -> str:
    """A realtime webhook subscription to the frequent actors, delivered to `hooks`; its id."""
    created = create_subscription(
        pipeline.store,
        SubscriptionIn(
            actors_any=["joko-widodo", "kpk"], channel="webhook", webhook_url=f"{hooks.url}/hook"
        ),
        OutboundPolicy.from_setting("127.0.0.1"),
    )
    hooks.secret = created["secret"]
    return str(created["id"])


def _expected_webhook_ids(pipeline: ChaosPipeline, subscription_id: str) -> set[str]:
    """The webhook-id of every alert recorded for the subscription."""
    entries = pipeline.store.read_subscription_alerts(subscription_id)
    return {message_id(subscription_id, alert.alert_id) for _, alert in entries}


def _webhook_dead_letters(pipeline: ChaosPipeline) -> list[dict[str, str]]:
    return [
        e
        for _, e in pipeline.store.dead_letters(count=10_000)
        if e["task"] == "pantau.alert.deliver_webhook"
    ]


def _tries(pipeline: ChaosPipeline) -> dict[int, int]:
    """How many messages took n tries, for the messages retried at least once (the
    delivery-count keys end in the retry number)."""
    most: dict[str, int] = {}
    for key in pipeline.store.redis.scan_iter(
        match=pipeline.store.key("deliveries", "*"), count=1000
    ):
        task_id, retries = key.rsplit(":", 2)[-2:]
        most[task_id] = max(most.get(task_id, 0), int(retries) + 1)
    return dict(sorted(Counter(n for n in most.values() if n > 1).items()))


@pytest.mark.timeout(900)
def test_webhook_receiver_down_60s(
    chaos_redis: ChaosRedis, tmp_path: Path, chaos_watchlist: Path, hooks: WebhookReceiver
) -> None:
    """The webhook receiver refuses connections for 60 s while alerts flow: every alert still
    reaches it (each webhook-id at least once) through the delivery retries."""
    articles = corpus()
    ids = [a.id for a in articles]
    with chaos_pipeline(chaos_redis, tmp_path / "var", chaos_watchlist) as pipeline:
        subscription_id = _subscribe(pipeline, hooks)
        started = time.monotonic()
        replay = Replay(pipeline, articles)
        replay.start()
        assert wait_for(lambda: len(hooks.ids()) >= 3, 120), "no webhook delivery"
        hooks.stop()
        time.sleep(60)
        hooks.start()
        back = time.monotonic()
        replay.finish()
        # Articles first; the webhook retries are scheduled apart from them: after a 60 s outage
        # some deliveries are at their 7th try, whose backoff ceiling is 300 s.
        accounted = wait_for(lambda: not tally(pipeline.store, ids).lost, DRAIN_S)
        assert accounted is not None, pending(pipeline.store, ids)

        def expected() -> set[str]:
            return _expected_webhook_ids(pipeline, subscription_id)

        recovered = wait_for(lambda: expected() <= hooks.ids(), WEBHOOK_RETRY_S)
        missing = expected() - hooks.ids()
        webhook_dead = _webhook_dead_letters(pipeline)
        tries = _tries(pipeline)
        _finish(
            "c) webhook receiver down 60 s",
            pipeline,
            ids,
            started,
            recovered,
            back,
            raw_duplicates=hooks.raw_duplicates,
            notes=f"alerts={len(expected())} webhook_ids_received={len(hooks.ids())} "
            f"missing={len(missing)} bad_signatures={hooks.bad_signatures} "
            f"retried messages by tries={tries}; "
            f"recover_s from the receiver back up to the last alert delivered",
        )
        assert not missing, f"{len(missing)} alert(s) never reached the receiver"
        assert not webhook_dead, webhook_dead[0]["error"]
        assert hooks.bad_signatures == 0
        assert len(expected()) >= 10, "too few alerts to exercise the outage"


def _hold_a_delivery(hooks: WebhookReceiver, delay_s: float = 2.0) -> str:
    """Make the receiver slow until a POST is being held; that POST's webhook-id."""
    hooks.holding.clear()
    hooks.delay_s = delay_s
    assert hooks.holding.wait(90), "no webhook POST to hold"
    return hooks.held[-1]


def test_alert_worker_sigkilled_mid_delivery(
    chaos_redis: ChaosRedis, tmp_path: Path, chaos_watchlist: Path, hooks: WebhookReceiver
) -> None:
    """The receiver records a webhook-id, then holds its answer; the alert worker is SIGKILLed
    while it waits for that answer. First its pool child, mid-replay (the message is requeued
    at once: reject_on_worker_lost); then the whole worker, main process and child, which is
    started again as `pantau up` does (the messages it held come back after the visibility
    timeout and kombu's restore sweep). Each killed delivery is POSTed again with the same
    webhook-id: raw duplicates, counted; deduplicated on webhook-id, the receiver has every
    alert exactly once.

    The main process is killed at a quiet moment (the replay done, a last batch of five
    articles naming the actors sent on its own, nothing else in flight): killed while it takes
    new messages off the queue it can lose one (kombu's BRPOP-then-unacked window, see
    docs/RELIABILITY.md); an earlier version of this scenario, killing it mid-replay, lost an
    `evaluate` message that way in one run of two."""
    articles = corpus()
    ids = [a.id for a in articles]
    naming = [a for a in articles if re.search(r"\b(Jokowi|Joko Widodo|KPK)\b", a.text)]
    last = {a.id for a in naming[-5:]}  # sent on their own for the main-process kill
    first = tuple(a for a in articles if a.id not in last)
    with chaos_pipeline(
        chaos_redis, tmp_path / "var", chaos_watchlist, visibility_timeout_s=60
    ) as pipeline:
        subscription_id = _subscribe(pipeline, hooks)
        started = time.monotonic()
        replay = Replay(pipeline, first, pause_s=0.5)
        replay.start()
        assert wait_for(lambda: len(hooks.ids()) >= 3, 120), "no webhook delivery"

        main = psutil.Process(pipeline.deployment.processes["alert"].pid)
        held_child = _hold_a_delivery(hooks)
        main.children()[0].send_signal(signal.SIGKILL)
        hooks.delay_s = 0
        child_killed = time.monotonic()
        again = wait_for(lambda: hooks.counts.get(held_child, 0) >= 2, 120)
        assert again, "the delivery whose pool child was killed was not sent again"
        replay.finish()
        quiet = wait_accounted(pipeline, [a.id for a in first], DRAIN_S)
        assert quiet is not None, pending(pipeline.store, ids)

        publish([a for a in articles if a.id in last], pipeline.outbox, pipeline.store)
        held_main = _hold_a_delivery(hooks, delay_s=5.0)
        time.sleep(0.5)  # the main process has taken what it can; nothing else is coming
        orphans = [p.pid for p in main.children()]
        main.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        for pid in orphans:
            _kill(pid)
        hooks.delay_s = 0
        pipeline.deployment.processes.pop("alert").wait(timeout=10)
        pipeline.start(("alert",))  # what `pantau up` does within a second
        drained = wait_accounted(pipeline, ids, DRAIN_S)
        assert drained is not None, pending(pipeline.store, ids)
        expected = _expected_webhook_ids(pipeline, subscription_id)
        recovered = wait_for(
            lambda: hooks.counts.get(held_main, 0) >= 2 and expected <= hooks.ids(), DRAIN_S
        )
        expected = _expected_webhook_ids(pipeline, subscription_id)
        missing = expected - hooks.ids()
        extra = hooks.ids() - expected
        repeated = {i: n for i, n in hooks.counts.items() if n > 1}
        _finish(
            "e) alert worker SIGKILLed mid-delivery (pool child, then main + child), restart",
            pipeline,
            ids,
            started,
            recovered,
            killed,
            raw_duplicates=hooks.raw_duplicates,
            notes=f"visibility_timeout_s=60; receiver holds the answer 2 s (5 s for the main "
            f"kill); alerts={len(expected)} webhook_ids_received={len(hooks.ids())} "
            f"missing={len(missing)} extra={len(extra)} bad_signatures={hooks.bad_signatures}; "
            f"child-killed delivery POSTed again after {again - child_killed:.1f} s; "
            f"times each repeated id arrived={sorted(repeated.values())}; recover_s from the "
            "main-process SIGKILL to its held delivery POSTed again",
        )
        assert not missing, f"{len(missing)} alert(s) never reached the receiver"
        assert not extra, f"{len(extra)} webhook-id(s) that match no recorded alert"
        assert held_child in repeated and held_main in repeated
        assert not _webhook_dead_letters(pipeline)
        assert hooks.bad_signatures == 0
        assert pipeline.deployment.dead_processes() == []


def _poison(mode: str, chaos_redis: ChaosRedis, tmp_path: Path, watchlist: Path) -> None:
    articles = corpus()
    ids = [a.id for a in articles]
    # Two poison articles in one message: positions 3 and 7 of one replay chunk (one ingest
    # message, then one extract message; a message cut in two keeps its first half, so both
    # stay together). Each must be dead-lettered alone and every other article complete.
    chunk = (len(ids) // 3) // 50 * 50
    poisons = [ids[chunk + 3], ids[chunk + 7]]
    env = {FAULT_INJECT_ARTICLE: ",".join(poisons), FAULT_INJECT_MODE: mode}
    with chaos_pipeline(chaos_redis, tmp_path / "var", watchlist, env=env) as pipeline:
        started = time.monotonic()
        replay = Replay(pipeline, articles)
        replay.start()
        replay.finish()
        recovered = wait_accounted(pipeline, ids, DRAIN_S)
        entries = [e for _, e in pipeline.store.dead_letters(count=10_000)]
        poisoned = {
            poison: [e for e in entries if poison in e.get("article_ids", "")] for poison in poisons
        }
        counted = tally(pipeline.store, ids)
        collateral = counted.dead_lettered - len(poisons)
        reasons = [found[0]["error"][:60] if found else None for found in poisoned.values()]
        row = _finish(
            f"d) two poison articles in one message ({mode})",
            pipeline,
            ids,
            started,
            recovered,
            started,
            notes=f"poisons={poisons}; reasons={reasons}; "
            f"other articles dead-lettered with them={collateral}",
        )
        for poison, found in poisoned.items():
            assert found, f"the poison article {poison} is not in the dead-letter stream"
            assert pipeline.store.dead_lettered_count([poison]) == 1
            assert not pipeline.store.is_completed(poison)
            # The culprit is isolated: dead-lettered by itself, once.
            assert len(found) == 1 and json.loads(found[0]["article_ids"]) == [poison]
            if mode == "raise":
                # The per-article fallback names the culprit at once.
                assert f"fault injected on article {poison}" in found[0]["error"]
            else:
                # Redelivered after the crash, the batch goes one article at a time; the
                # article the worker died on twice, alone, is dead-lettered by itself, and the
                # message's delivery count starts again for the second one.
                assert "died 2 times extracting this article alone" in found[0]["error"]
        # Every other article completes.
        assert row.processed == len(ids) - len(poisons) and row.dead_lettered == len(poisons)
        assert pipeline.deployment.dead_processes() == []


def test_poison_article_hard_crash(
    chaos_redis: ChaosRedis, tmp_path: Path, chaos_watchlist: Path
) -> None:
    """os._exit(1) in the pool child on two articles of one message: the message is redelivered
    and extracted one article at a time; each article the worker dies on (twice) is
    dead-lettered alone, and the delivery limit does not take the rest of the message."""
    _poison("exit", chaos_redis, tmp_path, chaos_watchlist)


def test_poison_article_exception(
    chaos_redis: ChaosRedis, tmp_path: Path, chaos_watchlist: Path
) -> None:
    """An exception on two articles: the per-article fallback dead-letters only those two."""
    _poison("raise", chaos_redis, tmp_path, chaos_watchlist)
