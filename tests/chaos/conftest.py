"""Fault-injection fixtures: a restartable Redis (AOF on) per module, a deployment per test, a
webhook receiver that dedups on `webhook-id`, the replay corpus, and the report rows.

Every scenario replays ~2,000 short articles (the first paragraph of IndoSum dev articles, or
generated Indonesian sentences when the corpus is absent), injects one fault, waits for the
queues to drain and accounts for every article id: completed or dead-lettered, never lost.
"""

from __future__ import annotations

import json
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import kombu.pools
import pytest
import redis

from tests.conftest import ROOT, SHARED_DATA, TEST_WATCHLIST
from tests.integration.conftest import make_settings
from workers import app as celery_app
from workers.bench_latency import WebhookReceiver
from workers.domain import Article, RawArticle
from workers.errors import InputError
from workers.ingest.corpora import read_corpus
from workers.ingest.normalise import normalise
from workers.ingest.tasks import publish
from workers.outbox import Outbox
from workers.runtime import Deployment, EmbeddedRedis, free_port
from workers.settings import WORKER_KINDS, Settings
from workers.store import Store

CORPUS = SHARED_DATA / "indosum" / "indosum_dev_union.jsonl"
ARTICLES = 2000
ARTIFACT = ROOT / "artifacts" / "chaos.jsonl"
# Watched actors frequent in the first paragraphs of IndoSum (for the webhook scenario).
FREQUENT_ACTORS = """
  - id: joko-widodo
    name: Joko Widodo
    type: PER
    aliases: [Joko Widodo, Jokowi]
  - id: kpk
    name: Komisi Pemberantasan Korupsi
    type: ORG
    aliases: [KPK, Komisi Pemberantasan Korupsi]
"""


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker here too, so the folder runs warning-free before pyproject has it."""
    config.addinivalue_line("markers", "chaos: fault injection on a real deployment (minutes)")


# The corpus ----------------------------------------------------------------------------------

_SUBJECTS = [
    "Presiden Joko Widodo",
    "Gubernur DKI Jakarta",
    "Ketua KPK",
    "Menteri Keuangan",
    "Wali Kota Surabaya",
    "Kapolri",
    "Ketua DPR",
    "Bupati Bogor",
    "Menteri Luar Negeri",
]
_VERBS = ["meresmikan", "meninjau", "membahas", "mengumumkan", "menolak", "mendukung"]
_OBJECTS = [
    "proyek jalan tol",
    "anggaran pendidikan",
    "kebijakan impor beras",
    "pembangunan pasar",
    "rencana reklamasi",
    "program vaksinasi",
    "revisi undang-undang",
]
_PLACES = ["Jakarta", "Surabaya", "Medan", "Makassar", "Bandung", "Semarang", "Denpasar"]


def _synthetic(n: int) -> Iterator[RawArticle]:
    rng = random.Random(20261126)
    for i in range(n):
        text = (
            f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} di "
            f"{rng.choice(_PLACES)} pada Senin ({i % 28 + 1}/{i % 12 + 1}). Warga menyambut "
            f"rencana nomor {i} itu dengan {rng.choice(['antusias', 'kritik', 'hati-hati'])}."
        )
        yield RawArticle(id=f"synthetic-{i:05d}", text=text, language="id", source="chaos")


@cache
def corpus(n: int = ARTICLES) -> tuple[Article, ...]:
    """n short, distinct articles (no exact duplicates: each must complete on its own)."""
    if CORPUS.exists():
        raws: Iterator[RawArticle] = (
            r.model_copy(update={"text": r.text.split("\n")[0]}) for r in read_corpus(CORPUS)
        )
    else:
        raws = _synthetic(n * 2)
    articles: dict[str, Article] = {}
    hashes: set[str] = set()
    for raw in raws:
        try:
            article = normalise(raw, max_chars=10_000)
        except InputError:
            continue
        if article.content_hash in hashes or article.id in articles or len(article.text) < 40:
            continue
        hashes.add(article.content_hash)
        articles[article.id] = article
        if len(articles) >= n:
            break
    return tuple(articles.values())


# Redis and the deployment -------------------------------------------------------------------


@dataclass
class ChaosRedis:
    """An embedded redis-server (AOF everysec) on a fixed port, so it can be restarted."""

    server: EmbeddedRedis
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.server.start(port=self.port)

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture(scope="module")
def chaos_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaosRedis]:
    """This module's own Redis; stopped (AOF written) at the end."""
    server = ChaosRedis(EmbeddedRedis(tmp_path_factory.mktemp("chaos-redis")), free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


def reset_celery_pool() -> None:
    """Close this process's broker connections, so the next configure() starts afresh.

    Celery's connection pools live in kombu's process-wide registry, keyed by broker URL and
    transport options: closing one pool in place would leave a closed pool there for the next
    test that publishes to the same broker ("Acquire on closed pool"). kombu's own reset closes
    them all and empties the registry.
    """
    app = celery_app.app
    kombu.pools.reset()
    app._pool = None
    amqp = app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None


@dataclass
class ChaosPipeline:
    """A running deployment on the chaos Redis and what a scenario needs."""

    settings: Settings
    store: Store
    deployment: Deployment
    outbox: Outbox
    env: dict[str, str] = field(default_factory=dict)

    def start(self, kinds: tuple[str, ...], env: dict[str, str] | None = None) -> None:
        """Start worker processes of these kinds, with extra environment variables."""
        extra = {**self.env, **(env or {})}
        saved = {k: os.environ.get(k) for k in extra}
        os.environ.update(extra)
        try:
            self.deployment.start_workers(kinds)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def counter(self, name: str) -> int:
        try:
            return self.store.counters()[name]
        except redis.RedisError:
            return -1


@pytest.fixture
def chaos_watchlist(tmp_path: Path) -> Path:
    """The test watchlist plus actors that many IndoSum articles name."""
    path = tmp_path / "watchlist.yaml"
    path.write_text(TEST_WATCHLIST.read_text(encoding="utf-8").rstrip() + "\n" + FREQUENT_ACTORS)
    return path


@contextmanager
def chaos_pipeline(
    server: ChaosRedis,
    data_dir: Path,
    watchlist: Path,
    env: dict[str, str] | None = None,
    beat: bool = False,
    **overrides: Any,
) -> Iterator[ChaosPipeline]:
    """Workers of the three kinds on the chaos Redis, in their own namespace; always stopped.

    With `beat`, celery beat runs too (its reconciler re-sends lost work after
    `reconcile_after_s`, as in a real deployment).
    """
    feeds = data_dir / "feeds.yaml"
    data_dir.mkdir(parents=True, exist_ok=True)
    feeds.write_text("feeds: []\n")
    settings = make_settings(
        server.url,
        data_dir,
        feeds=feeds,
        watchlist=watchlist,
        outbound_allowlist="127.0.0.1",
        **overrides,
    )
    deployment = Deployment(settings)
    deployment.redis_url = server.url
    store = Store.connect(server.url, settings)
    previous = dict(celery_app._explicit)
    reset_celery_pool()
    celery_app.configure(settings, server.url)
    running = ChaosPipeline(
        settings,
        store,
        deployment,
        Outbox(settings.data_dir / "outbox", settings.outbox_max_bytes),
        env or {},
    )
    try:
        running.start(WORKER_KINDS)
        if beat:
            deployment.start_beat()
        deployment.wait_ready(store, timeout_s=180)
        yield running
    finally:
        deployment.stop()
        with suppress(redis.RedisError):
            store.drop_namespace()
        reset_celery_pool()
        if previous:
            celery_app.configure(previous["settings"], previous["broker_url"])


# Replaying, accounting, reporting -----------------------------------------------------------


class Replay(threading.Thread):
    """Publishes articles in chunks through `publish` (outbox on failure), paced, in background."""

    def __init__(
        self,
        pipeline: ChaosPipeline,
        articles: tuple[Article, ...],
        chunk: int = 50,
        pause_s: float = 0.25,
    ) -> None:
        super().__init__(daemon=True, name="replay")
        self.pipeline, self.articles, self.chunk, self.pause_s = pipeline, articles, chunk, pause_s
        self.sent = self.spooled = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for start in range(0, len(self.articles), self.chunk):
                batch = list(self.articles[start : start + self.chunk])
                sent, spooled = publish(batch, self.pipeline.outbox, self.pipeline.store)
                self.sent += sent
                self.spooled += spooled
                time.sleep(self.pause_s)
        except BaseException as error:  # reported by finish()
            self.error = error

    def finish(self, timeout_s: float = 120) -> None:
        """Wait for the replay, then send whatever the outbox still holds."""
        self.join(timeout_s)
        assert not self.is_alive(), "the replay did not finish"
        assert self.error is None, f"the replay failed: {self.error!r}"
        deadline = time.monotonic() + timeout_s
        while self.pipeline.outbox.pending():
            assert time.monotonic() < deadline, "the outbox did not drain"
            with suppress(Exception):  # Redis still away: the outbox keeps the batches
                publish([], self.pipeline.outbox, self.pipeline.store)
            time.sleep(0.5)


@dataclass
class Tally:
    """Where every article id ended up."""

    processed: int
    dead_lettered: int
    lost: list[str]


def tally(store: Store, ids: list[str]) -> Tally:
    """Completed and dead-lettered ids (by their once-marks); lost = neither."""
    processed = dead = 0
    lost = []
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        done = store.redis.mget([store.key("once", "completed", i) for i in chunk])
        dlq = store.redis.mget([store.key("once", "dead_lettered", i) for i in chunk])
        for article_id, completed, dead_lettered in zip(chunk, done, dlq, strict=True):
            processed += bool(completed)
            dead += bool(dead_lettered)
            if not completed and not dead_lettered:
                lost.append(article_id)
    return Tally(processed, dead, lost)


def pending(store: Store, ids: list[str]) -> str:
    """Where the articles that neither completed nor were dead-lettered are: for a failure
    message (stages reached, queues, the tasks held in kombu's unacked hash, counters)."""
    lost = tally(store, ids).lost
    inflight = store.redis.zmscore(store.key("inflight"), lost) if lost else []
    unacked = [
        re.findall(r'"task": "([^"]+)"', raw)[:1]
        for _, raw in store.redis.hscan_iter(store.key("unacked"))
    ]
    return json.dumps(
        {
            "lost": len(lost),
            "lost_ingested": sum(store.is_ingested(i) for i in lost),
            "lost_extracted": len(store.load_extractions(lost)),
            "lost_in_flight": sum(score is not None for score in inflight),
            "some_lost": lost[:5],
            "queues": store.queue_depths(),
            "unacked": unacked[:10],
            "counters": store.counters(),
        }
    )


def idle(store: Store) -> bool:
    """No message waiting in a queue and none reserved."""
    return not any(store.queue_depths().values()) and store.unacked() == 0


def wait_for(predicate: Callable[[], bool], timeout_s: float) -> float | None:
    """Poll (tolerating Redis errors) until predicate() holds; the monotonic time, or None."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if predicate():
                return time.monotonic()
        except redis.RedisError:
            pass
        time.sleep(0.25)
    return None


def wait_accounted(pipeline: ChaosPipeline, ids: list[str], timeout_s: float) -> float | None:
    """Until every id is completed or dead-lettered and the queues are idle."""
    return wait_for(lambda: not tally(pipeline.store, ids).lost and idle(pipeline.store), timeout_s)


def redeliveries(store: Store) -> tuple[int, int]:
    """(messages delivered more than once, extra deliveries) from the delivery-count keys."""
    keys = list(store.redis.scan_iter(match=store.key("deliveries", "*"), count=1000))
    counts = [int(v) for v in store.redis.mget(keys) if v] if keys else []
    repeated = [c for c in counts if c > 1]
    return len(repeated), sum(c - 1 for c in repeated)


@dataclass
class Row:
    """One line of the fault table."""

    fault: str
    sent: int
    processed: int
    dead_lettered: int
    lost: int
    raw_duplicates: int
    redelivered_messages: int
    redeliveries: int
    recover_s: float | None
    wall_s: float
    notes: str = ""


def report(row: Row) -> None:
    """Print the row (pytest -s shows it) and append it to artifacts/chaos.jsonl."""
    print(
        f"\nCHAOS {row.fault}: sent={row.sent} processed={row.processed} "
        f"dead_lettered={row.dead_lettered} lost={row.lost} raw_duplicates={row.raw_duplicates} "
        f"redelivered_messages={row.redelivered_messages} redeliveries={row.redeliveries} "
        f"recover_s={row.recover_s} wall_s={row.wall_s} {row.notes}"
    )
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    with ARTIFACT.open("a", encoding="utf-8") as out:
        out.write(
            json.dumps({"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **asdict(row)})
            + "\n"
        )


# The webhook receiver ------------------------------------------------------------------------


@pytest.fixture
def hooks() -> Iterator[WebhookReceiver]:
    """The bench's local receiver (`workers.bench_latency`): checks signatures (401 when wrong),
    dedups on webhook-id, counts raw duplicates, can stop (connection refused), come back on the
    same port, and hold each answer `delay_s` seconds (a slow receiver)."""
    with WebhookReceiver() as receiver:
        yield receiver
