"""Every Prometheus metric of Pantau, declared once.

Worker processes run under Celery's prefork pool, so metrics use prometheus-client's multiprocess
mode: each process writes to files in PROMETHEUS_MULTIPROC_DIR (set before this module is
imported: `pantau worker` and `pantau up` do it, see workers.runtime.worker_env) and one
collector per process kind reads them all on scrape. Labels come from small fixed sets.
"""

from __future__ import annotations

import glob
import os
import threading
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

STAGES = ("ingest", "extract", "alert")
OUTCOMES = ("ok", "duplicate", "invalid", "retried", "failed", "dead_lettered")
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2.5, 5, 10, 30, 60, 300)

ARTICLES = Counter(
    "pantau_articles_total", "Articles leaving a stage, by outcome.", ["stage", "outcome"]
)
ITEMS_IN = Counter(
    "pantau_stage_items_in_total", "Articles (or messages) entering a stage.", ["stage"]
)
IN_PROGRESS = Gauge(
    "pantau_stage_in_progress",
    "Tasks running now in a stage.",
    ["stage"],
    multiprocess_mode="livesum",
)
STAGE_SECONDS = Histogram(
    "pantau_stage_seconds",
    "Time one task (a batch) spends in a stage.",
    ["stage"],
    buckets=LATENCY_BUCKETS,
)
CHANNELS = ("stream", "webhook", "sse", "redis")
INGEST_TO_ALERT_SECONDS = Histogram(
    "pantau_ingest_to_alert_seconds",
    "From an article's acceptance at ingest to its alert being delivered, by channel.",
    ["channel"],
    buckets=LATENCY_BUCKETS,
)
PIPELINE_SECONDS = Histogram(
    "pantau_pipeline_seconds",
    "From an article's acceptance at ingest to the end of its alert stage (every article).",
    buckets=LATENCY_BUCKETS,
)
LAST_SUCCESS = Gauge(
    "pantau_stage_last_success_timestamp_seconds",
    "Unix time of the last successful task of a stage.",
    ["stage"],
    multiprocess_mode="max",
)
TASK_RETRIES = Counter("pantau_task_retries_total", "Task retries scheduled.", ["stage"])
REDELIVERIES = Counter(
    "pantau_task_redeliveries_total",
    "Messages delivered again (a worker died or lost them).",
    ["stage"],
)
RECONCILED = Counter(
    "pantau_reconciled_total", "Articles re-sent by the reconciler after their message was lost."
)
DEDUP_DROPS = Counter("pantau_dedup_drops_total", "Articles dropped as duplicates.", ["kind"])
STORY_MERGES = Counter(
    "pantau_story_merges_total", "Near-duplicates and revisions joined to an existing story."
)
FEED_POLLS = Counter("pantau_feed_polls_total", "Feed polls by outcome.", ["outcome"])
EXTRACT_CPU_SECONDS = Counter(
    "pantau_extract_cpu_seconds",
    "CPU seconds extract processes spent inside the extraction pipeline (spaCy, event coding).",
)
EXTRACT_SPLITS = Counter(
    "pantau_extract_splits_total",
    "Parts of extract messages sent on as messages of their own while another extract "
    "child may be idle: cut when taken, or handed on between pipe batches.",
)
ENTITIES = Counter("pantau_entities_total", "Entities found, by label.", ["label"])
EVENTS = Counter("pantau_events_total", "Events coded, by PLOVER type.", ["type"])
ALERTS = Counter(
    "pantau_alerts_total", "Alerts by delivery channel and outcome.", ["channel", "outcome"]
)
WORKER_UP = Gauge(
    "pantau_worker_up",
    "1 while a pool child of this kind is ready for tasks (its models loaded).",
    ["kind"],
    multiprocess_mode="liveall",
)


class QueueDepthCollector(Collector):
    """Reads queue depths from Redis at scrape time (a gauge no worker could keep current)."""

    def __init__(
        self, read_depths: Callable[[], dict[str, int]], read_extra: Callable[[], dict[str, int]]
    ) -> None:
        self.read_depths = read_depths
        self.read_extra = read_extra

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Yield pantau_queue_depth{queue} and the unacked / dead-letter depths."""
        depth = GaugeMetricFamily(
            "pantau_queue_depth", "Messages waiting in a queue.", labels=["queue"]
        )
        try:
            depths = self.read_depths()
            extra = self.read_extra()
        except Exception:  # a scrape during a Redis restart reports nothing rather than failing
            return
        for queue, n in depths.items():
            depth.add_metric([queue], n)
        yield depth
        yield GaugeMetricFamily(
            "pantau_queue_unacked",
            "Messages reserved by workers, not acked.",
            value=extra.get("unacked", 0),
        )
        yield GaugeMetricFamily(
            "pantau_dead_letter_depth",
            "Messages in the dead-letter stream.",
            value=extra.get("dead_letter", 0),
        )


# A metrics file starts with the 4-byte count of its used bytes and 4 bytes of padding.
_HEADER_BYTES = 8
_READ_ATTEMPTS = 3


class LiveFilesCollector(MultiProcessCollector):
    """prometheus-client's multiprocess collector, for a directory whose processes come and go.

    A process creates its file empty and then sizes it: a scrape in between, or a process killed
    in between (which leaves the empty file behind), made the stock collector raise
    `struct.error` on the whole scrape. A worker starting again empties its kind's directory, so
    a file can also vanish between the listing and the read. This collector skips files without
    their header (they hold no value yet) and lists the directory again when a file vanished.
    """

    def collect(self) -> Iterable[Metric]:
        """The merged metrics of every complete file in the directory."""
        attempts_left = _READ_ATTEMPTS
        while True:
            try:
                return self.merge(self._complete_files(), accumulate=True)
            except FileNotFoundError:
                attempts_left -= 1
                if not attempts_left:
                    raise

    def _complete_files(self) -> list[str]:
        files = []
        for name in glob.glob(os.path.join(self._path, "*.db")):
            try:
                if os.path.getsize(name) >= _HEADER_BYTES:
                    files.append(name)
            except FileNotFoundError:
                continue
        return files


def multiprocess_registry(path: str | None = None) -> CollectorRegistry:
    """A registry that sums the multiprocess files of every process of one kind: this
    process's (PROMETHEUS_MULTIPROC_DIR) or, with `path`, another deployment's."""
    registry = CollectorRegistry()
    if path or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        LiveFilesCollector(registry, path=path)
    return registry


def sample_sum(path: str, sample: str) -> float:
    """The sum of one sample (`pantau_worker_up`, `pantau_extract_cpu_seconds_total`, ...) over
    the multiprocess files in `path`, one kind's directory; 0 while it does not exist yet."""
    if not os.path.isdir(path):
        return 0.0
    return sum(
        s.value
        for family in multiprocess_registry(path).collect()
        for s in family.samples
        if s.name == sample
    )


def children_up(path: str) -> int:
    """How many pool children of one kind are ready for tasks: the sum of `pantau_worker_up`
    in that kind's multiprocess directory. A child that exits cleanly takes its gauge with it;
    one killed outright leaves it until its worker is started again (the directory is emptied
    then). 0 while the directory does not exist yet."""
    return round(sample_sum(path, "pantau_worker_up"))


_server_lock = threading.Lock()


def serve(port: int, registry: CollectorRegistry, host: str = "0.0.0.0") -> bool:
    """Serve /metrics on `port` in a daemon thread; False (and no server) when the port is taken."""
    if port <= 0:
        return False
    with _server_lock:
        try:
            start_http_server(port, addr=host, registry=registry)
        except OSError:
            return False
    return True
