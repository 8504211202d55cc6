"""`pantau bench --rate R --duration S --webhook`: ingest-to-alert latency at a sustained rate.

Articles go in one at a time on a fixed schedule (open loop: a late send does not delay the
ones after it) through `workers.ingest.tasks.publish`, the path of `pantau ingest` and the push
API; each is stamped `ingested_at` when it is accepted. A realtime webhook subscription to the
watched actors delivers alerts to a receiver in this process (`WebhookReceiver`), which checks
the Standard Webhooks signature and notes when each `webhook-id` first arrived. Latency is that
moment minus the article's `ingested_at`; the pipeline's own latency (ingest to the alert stage
done) is measured for every article.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from workers.alert.subscriptions import SubscriptionIn
from workers.alert.watchlist import Actor, Watchlist
from workers.alert.webhooks import SignatureError, message_id, verify
from workers.bench import latency_ms, percentile, summary
from workers.domain import Alert, Article, RawArticle
from workers.ingest.normalise import normalise
from workers.ingest.urls import OutboundPolicy
from workers.outbox import Outbox
from workers.runtime import free_port
from workers.settings import Settings
from workers.store import Store

# Actors that IndoSum names often (Jokowi in ~90 of its 3,263 articles, KPK in ~160); the
# shipped watchlist's actors are rare there. The bench watches them through the watchlist
# overrides, as `PUT /v1/watchlist/{actor_id}` does, so that alerts flow at a useful rate.
CORPUS_ACTORS = (
    Actor(id="joko-widodo", name="Joko Widodo", type="PER", aliases=["Joko Widodo", "Jokowi"]),
    Actor(
        id="kpk",
        name="Komisi Pemberantasan Korupsi",
        type="ORG",
        aliases=["KPK", "Komisi Pemberantasan Korupsi"],
    ),
)
# Near-duplicates share a story (and so an alert) only within this window in the bench: a
# corpus shorter than rate x duration is replayed as revisions, which must alert again.
BENCH_STORY_WINDOW_S = 60


def epoch(iso: str) -> float:
    """Unix time of an ISO 8601 timestamp of a record (`...Z`)."""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def paced(
    count: int,
    rate: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[tuple[int, float]]:
    """Yield 0..count-1, the i-th at start + i/rate, with how late it is (seconds).

    Open loop: the schedule is fixed at the start, so a slow step does not shift the later
    ones (they follow at once until the schedule is caught up).
    """
    if rate <= 0:
        raise ValueError(f"rate must be positive, got {rate}")
    start = clock()
    for index in range(count):
        due = start + index / rate
        wait = due - clock()
        if wait > 0:
            sleep(wait)
        yield index, max(0.0, clock() - due)


class _Server(ThreadingHTTPServer):
    block_on_close = False  # a held (slow) request must not hold up stop()
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: a sender that died mid-request (the chaos suite kills them) is expected."""


class WebhookReceiver:
    """A local webhook receiver on 127.0.0.1 that dedups on `webhook-id`.

    With a `secret`, a request whose Standard Webhooks signature does not verify is answered 401
    and not recorded. Otherwise the first arrival of each `webhook-id` is timed (`clock`), every
    arrival counted (`raw_duplicates` = arrivals beyond the first), then the answer waits
    `delay_s` (a slow receiver) and is `status`. It can stop (connections refused) and start
    again on the same port.
    """

    def __init__(
        self,
        secret: str | None = None,
        *,
        port: int = 0,
        delay_s: float = 0.0,
        status: int = 200,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.secret = secret
        self.port = port or free_port()
        self.delay_s = delay_s
        self.status = status
        self.clock = clock
        self.first_seen: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.bodies: dict[str, dict[str, Any]] = {}
        self.bad_signatures = 0
        self.held: list[str] = []  # webhook-ids whose answer waited delay_s, in order
        self.holding = threading.Event()  # set when a request starts waiting out delay_s
        self.lock = threading.Lock()
        self._server: _Server | None = None

    @property
    def url(self) -> str:
        """The receiver's base URL (any path is accepted)."""
        return f"http://127.0.0.1:{self.port}"

    def receive(self, headers: dict[str, str], body: bytes) -> int:
        """Check and record one request; the HTTP status to answer."""
        at = self.clock()
        if self.secret:
            try:
                verify(self.secret, headers, body)
            except SignatureError:
                with self.lock:
                    self.bad_signatures += 1
                return 401
        msg_id = {k.lower(): v for k, v in headers.items()}.get("webhook-id", "")
        with self.lock:
            self.counts[msg_id] = self.counts.get(msg_id, 0) + 1
            if msg_id not in self.first_seen:
                self.first_seen[msg_id] = at
                try:
                    self.bodies[msg_id] = json.loads(body)
                except ValueError:
                    self.bodies[msg_id] = {}
        return self.status

    def start(self) -> None:
        """Listen (again) on the receiver's port."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = receiver.receive(dict(self.headers), body)
                delay_s = receiver.delay_s
                if delay_s > 0:
                    with receiver.lock:
                        receiver.held.append(self.headers.get("webhook-id") or "")
                    receiver.holding.set()
                    time.sleep(delay_s)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self._server = _Server(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True, name="webhooks").start()

    def stop(self) -> None:
        """Stop listening: new connections are refused."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def ids(self) -> set[str]:
        """Every `webhook-id` received (the receiver's deduplicated view)."""
        with self.lock:
            return set(self.first_seen)

    @property
    def raw_duplicates(self) -> int:
        """Arrivals of a `webhook-id` after its first one."""
        with self.lock:
            return sum(count - 1 for count in self.counts.values())

    def __enter__(self) -> WebhookReceiver:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def watch_corpus_actors(store: Store, watchlist: Watchlist) -> list[str]:
    """Add CORPUS_ACTORS that the watchlist lacks (as API overrides); every watched actor id."""
    for actor in CORPUS_ACTORS:
        if actor.id not in watchlist:
            store.put_actor(actor)
    return [a.id for a in watchlist.actors] + [a.id for a in CORPUS_ACTORS if a.id not in watchlist]


@dataclass
class Sent:
    """The articles sent in the measured phase, with send-side figures."""

    articles: list[Article] = field(default_factory=list)
    lags_s: list[float] = field(default_factory=list)
    first_at: float = 0.0
    last_at: float = 0.0

    @property
    def rate(self) -> float:
        """Articles per second achieved from the first send to the last."""
        span = self.last_at - self.first_at
        return (len(self.articles) - 1) / span if span > 0 and len(self.articles) > 1 else 0.0


def send_paced(
    raw: Sequence[RawArticle],
    rate: float,
    publish: Callable[[list[Article]], object],
    max_chars: int,
    on_sent: Callable[[int], None] | None = None,
) -> Sent:
    """Normalise (which stamps `ingested_at`) and publish each article at its scheduled time."""
    sent = Sent()
    for index, lag in paced(len(raw), rate):
        article = normalise(raw[index], max_chars=max_chars)
        publish([article])
        now = time.time()
        if index == 0:
            sent.first_at = now
        sent.last_at = now
        sent.articles.append(article)
        sent.lags_s.append(lag)
        if on_sent is not None:
            on_sent(index + 1)
    return sent


def expected_webhooks(store: Store, subscription_id: str) -> dict[str, Alert]:
    """The subscription's recorded alerts by the `webhook-id` their delivery carries."""
    return {
        message_id(subscription_id, alert.alert_id): alert
        for _, alert in store.read_subscription_alerts(subscription_id, count=1_000_000)
    }


def wait_delivered(
    store: Store,
    subscription_id: str,
    receiver: WebhookReceiver,
    timeout_s: float,
) -> dict[str, Alert]:
    """Wait until every recorded alert of the subscription reached the receiver (or timeout)."""
    deadline = time.monotonic() + timeout_s
    while True:
        expected = expected_webhooks(store, subscription_id)
        if set(expected) <= receiver.ids() or time.monotonic() > deadline:
            return expected
        time.sleep(0.2)


def webhook_figures(
    expected: dict[str, Alert],
    receiver: WebhookReceiver,
    measured: dict[str, float],
    extracted_at: dict[str, float],
) -> dict[str, Any]:
    """Latency of each delivered alert of a measured article, and where its time went.

    `measured`: article id -> ingested_at (Unix time) of the articles sent in the measured
    phase; `extracted_at`: article id -> when extraction finished.
    """
    latency: list[float] = []
    stages: dict[str, list[float]] = {
        "ingest_to_extracted": [],
        "extracted_to_alerted": [],
        "alerted_to_received": [],
    }
    received = dict(receiver.first_seen)
    for msg_id, alert in expected.items():
        ingested = measured.get(alert.article_id)
        if ingested is None or msg_id not in received:
            continue
        arrived = received[msg_id]
        alerted = epoch(alert.alerted_at)
        latency.append((arrived - ingested) * 1000)
        stages["alerted_to_received"].append((arrived - alerted) * 1000)
        if alert.article_id in extracted_at:
            extracted = extracted_at[alert.article_id]
            stages["ingest_to_extracted"].append((extracted - ingested) * 1000)
            stages["extracted_to_alerted"].append((alerted - extracted) * 1000)
    in_run = {m for m, a in expected.items() if a.article_id in measured}
    return {
        "alerts_recorded": len(in_run),
        "alerts_delivered": len(in_run & set(received)),
        "missing_alerts": len(set(expected) - set(received)),
        "webhook_latency_ms": summary(latency),
        "webhook_stages_ms": {name: summary(v) for name, v in stages.items()},
    }


def max_depths(samples: Sequence[tuple[float, dict[str, int]]]) -> dict[str, int]:
    """The deepest each queue was over (time, depths) samples."""
    deepest: dict[str, int] = {}
    for _, depths in samples:
        for queue, depth in depths.items():
            deepest[queue] = max(deepest.get(queue, 0), depth)
    return deepest


def by_window(
    latencies: Sequence[tuple[float, float]],
    depths: Sequence[tuple[float, dict[str, int]]],
    start: float,
    window_s: float = 60,
) -> list[dict[str, Any]]:
    """Per window of the run: p50 and p99 of the (sent at, latency) points sent in it, and the
    deepest the extract queue was; shows when in the run latency went up, and why."""
    count = int(max([t for t, _ in latencies] + [start]) - start) // int(window_s) + 1
    rows = []
    for index in range(count):
        low, high = start + index * window_s, start + (index + 1) * window_s
        values = [v for t, v in latencies if low <= t < high]
        deepest = max_depths([d for d in depths if low <= d[0] < high])
        rows.append(
            {
                "from_s": int(index * window_s),
                "p50": round(percentile(values, 50), 1),
                "p99": round(percentile(values, 99), 1),
                "extract_queue_max": deepest.get("extract", 0),
            }
        )
    return rows


@dataclass
class RateBench:
    """One latency run against a running deployment (workers up, Celery configured)."""

    store: Store
    settings: Settings
    watchlist: Watchlist
    webhook: bool = True
    receiver: WebhookReceiver | None = None
    subscription_id: str | None = None
    depths: list[tuple[float, dict[str, int]]] = field(default_factory=list)
    outbox: Outbox | None = None

    def prepare(self) -> None:
        """Watch the corpus actors; with `webhook`, start the receiver and subscribe it."""
        from workers.api.subscriptions import create_subscription  # FastAPI: only when used

        actors = watch_corpus_actors(self.store, self.watchlist)
        if not self.webhook:
            return
        self.receiver = WebhookReceiver()
        self.receiver.start()
        created = create_subscription(
            self.store,
            SubscriptionIn(
                actors_any=actors, channel="webhook", webhook_url=f"{self.receiver.url}/hook"
            ),
            OutboundPolicy.from_setting(self.settings.outbound_allowlist),
        )
        self.receiver.secret = created["secret"]
        self.subscription_id = created["id"]

    def publish(self, articles: list[Article]) -> None:
        """Send through the outbox path of `pantau ingest` and the push API."""
        from workers.ingest.tasks import publish

        if self.outbox is None:
            self.outbox = Outbox(self.settings.data_dir / "outbox", self.settings.outbox_max_bytes)
        publish(articles, self.outbox, self.store)

    def send(
        self, raw: Sequence[RawArticle], rate: float, on_sent: Callable[[int], None] | None = None
    ) -> Sent:
        """The measured phase: one article every 1/rate s; queue depths sampled every second."""
        last_sample = [0.0]

        def sent_one(n: int) -> None:
            if time.monotonic() - last_sample[0] >= 1.0:
                last_sample[0] = time.monotonic()
                self.depths.append((time.time(), self.store.queue_depths()))
            if on_sent is not None:
                on_sent(n)

        return send_paced(raw, rate, self.publish, self.settings.max_article_chars, sent_one)

    def results(self, sent: Sent, webhook_timeout_s: float = 120) -> dict[str, Any]:
        """Latency figures once every sent article completed (call after the drain)."""
        done = self.store.completion_times([a.id for a in sent.articles])
        points = [
            (epoch(a.ingested_at), (finished - epoch(a.ingested_at)) * 1000)
            for a, finished in zip(sent.articles, done, strict=True)
            if finished is not None
        ]
        out: dict[str, Any] = {
            "rate_achieved": round(sent.rate, 2),
            "send_lag_ms": summary([lag * 1000 for lag in sent.lags_s]),
            "pipeline_latency_ms": latency_ms(self.store, sent.articles),
            "pipeline_latency_by_minute_ms": by_window(points, self.depths, sent.first_at),
            "max_queue_depth": max_depths(self.depths),
        }
        if self.receiver is None or self.subscription_id is None:
            return out
        expected = wait_delivered(
            self.store, self.subscription_id, self.receiver, webhook_timeout_s
        )
        measured = {a.id: epoch(a.ingested_at) for a in sent.articles}
        alerted_ids = list({alert.article_id for alert in expected.values()})
        extracted = {
            e.article_id: epoch(e.extracted_at) for e in self.store.load_extractions(alerted_ids)
        }
        out |= webhook_figures(expected, self.receiver, measured, extracted)
        out |= {
            "raw_duplicates": self.receiver.raw_duplicates,
            "bad_signatures": self.receiver.bad_signatures,
        }
        return out

    def close(self) -> None:
        """Stop the receiver."""
        if self.receiver is not None:
            self.receiver.stop()
