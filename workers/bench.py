"""`pantau bench`: replay a corpus through the full queue pipeline and measure where time goes."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import platform
import queue
import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from workers.domain import Article
from workers.runtime import Deployment
from workers.store import Store


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _families(
    deployment: Deployment, workers_only: bool = False
) -> dict[str, list[psutil.Process]]:
    """Each worker kind's processes (main and pool children); unless `workers_only`, also the
    embedded Redis ("redis") and this process ("bench")."""
    families: dict[str, list[psutil.Process]] = {}
    for kind, process in list(deployment.processes.items()):
        try:
            main = psutil.Process(process.pid)
            families[kind] = [main, *main.children(recursive=True)]
        except psutil.Error:
            continue
    if workers_only:
        return families
    if deployment.embedded is not None and deployment.embedded.process is not None:
        with contextlib.suppress(psutil.Error):
            families["redis"] = [psutil.Process(deployment.embedded.process.pid)]
    families["bench"] = [psutil.Process()]
    return families


def cpu_seconds(deployment: Deployment) -> dict[str, float]:
    """CPU seconds (user + system) used so far by each process family of `_families`."""
    used: dict[str, float] = {}
    for kind, family in _families(deployment).items():
        total = 0.0
        for proc in family:
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
        used[kind] = total
    return used


def high_water_mb(proc: psutil.Process) -> float:
    """The process's peak RSS so far (Linux's VmHWM), else its RSS now; in MB.

    Sampling alone misses peaks: an extract worker's RSS rises and falls by ~100 MB within
    each batch (tok2vec's arrays), faster than a sampler sees.
    """
    try:
        with open(f"/proc/{proc.pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / 1e6
    except (OSError, ValueError):
        pass
    return float(proc.memory_info().rss) / 1e6


@dataclass
class ProcessSampler:
    """Samples the RSS of every process of each worker kind; keeps the peak per process.

    The peak is the kernel's high-water mark (`high_water_mb`); the samples (RSS now) show
    growth over the run.

    Also notes the CPU seconds each family used between entering and leaving (`cpu_s`): where
    the pipeline's time goes (a pool child replaced meanwhile takes its CPU time with it).
    """

    deployment: Deployment
    interval_s: float = 0.5
    # Finding a family's processes reads every process's /proc entry (psutil's children()):
    # done every this many samples only, the same Process objects sampled in between.
    rescan_every: int = 10
    peaks: dict[str, float] = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=dict)
    cpu_s: dict[str, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _known: dict[str, list[psutil.Process]] = field(default_factory=dict)
    _count: int = 0

    def _sample(self) -> None:
        if self._count % self.rescan_every == 0:
            self._known = _families(self.deployment, workers_only=True)
        self._count += 1
        for kind, family in self._known.items():
            rss, peaks = [], []
            for proc in family:
                try:
                    rss.append(proc.memory_info().rss / 1e6)
                    peaks.append(high_water_mb(proc))
                except psutil.Error:
                    continue
            if rss:
                self.peaks[kind] = max(self.peaks.get(kind, 0.0), *peaks)
                self.samples.setdefault(kind, []).append(max(rss))

    def run(self) -> None:
        """Sample now and every interval until stopped (a short run still gets a sample)."""
        self._sample()
        while not self._stop.wait(self.interval_s):
            self._sample()

    def __enter__(self) -> ProcessSampler:
        self._cpu_start = cpu_seconds(self.deployment)
        self._thread = threading.Thread(target=self.run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        end = cpu_seconds(self.deployment)
        self.cpu_s = {
            kind: round(end[kind] - self._cpu_start.get(kind, 0.0), 2) for kind in sorted(end)
        }


def cpu_model() -> str:
    """The CPU's model name (Linux), else what `platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "memory_gb": round(psutil.virtual_memory().total / 1e9, 1),
    }


def latency_ms(store: Store, articles: list[Article]) -> dict[str, float]:
    """Ingest-to-alert-stage latency per article: p50, p95, p99 and max in milliseconds."""
    from datetime import datetime

    done = store.completion_times([a.id for a in articles])
    values = [
        (finished - datetime.fromisoformat(a.ingested_at).timestamp()) * 1000
        for a, finished in zip(articles, done, strict=True)
        if finished is not None
    ]
    return summary(values)


def summary(values: Sequence[float]) -> dict[str, float]:
    """Count, p50, p95, p99, max and mean of latencies (any unit), rounded to 0.1."""
    values = list(values)
    return {
        "count": len(values),
        "p50": round(percentile(values, 50), 1),
        "p95": round(percentile(values, 95), 1),
        "p99": round(percentile(values, 99), 1),
        "max": round(max(values, default=0.0), 1),
        "mean": round(statistics.fmean(values), 1) if values else 0.0,
    }


def wait_completed(
    store: Store,
    articles: list[Article],
    timeout_s: float,
    progress: Any = None,
    check_every_s: float = 10.0,
) -> int:
    """Wait until every article completed (or was dead-lettered); returns how many completed.

    Polls the deployment's counters (two keys) ten times a second. The articles are checked by
    id only when the counters say they may all be done, or every `check_every_s` as a safety
    net, and then only those not yet seen complete: reading all 10,000 ids of a long replay
    once a second took ~2 % of the two cores (bench and Redis) from the pipeline being measured.
    """
    pending = [a.id for a in articles]
    total = len(pending)
    deadline = time.monotonic() + timeout_s

    def settled_counters() -> int:
        counters = store.counters()
        return counters["completed"] + counters["dead_lettered"]

    baseline = settled_counters()
    checked = time.monotonic()
    done = dead = 0
    while True:
        moved = settled_counters() - baseline
        if progress is not None:
            progress(min(moved, total))
        if moved >= total or time.monotonic() - checked >= check_every_s:
            checked = time.monotonic()
            times = store.completion_times(pending)
            done += sum(1 for t in times if t is not None)
            pending = [i for i, t in zip(pending, times, strict=True) if t is None]
            dead = store.dead_lettered_count(pending)
            if done + dead >= total:
                if progress is not None:
                    progress(done + dead)
                return done
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{total - done - dead} of {total} articles not done after {timeout_s:.0f} s"
            )
        time.sleep(0.1)


def ingest_rate(
    raw: list[Any], store: Store, max_chars: int, batch_size: int = 64
) -> dict[str, Any]:
    """Normalise + exact and story dedup + store + enqueue, in this process, on one core.

    The same code the ingest task runs (`ingest_batch`), without Celery's consumer around it;
    extract messages go to Redis and nobody consumes them.
    """
    from workers.ingest.normalise import normalise
    from workers.ingest.tasks import ingest_batch

    started = time.perf_counter()
    cpu_started = time.process_time()
    for start in range(0, len(raw), batch_size):
        articles = [normalise(r, max_chars=max_chars) for r in raw[start : start + batch_size]]
        ingest_batch(store, articles, 16)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    return {
        "entries": len(raw),
        "seconds": round(elapsed, 3),
        "entries_per_s": round(len(raw) / elapsed, 1),
        "entries_per_cpu_s": round(len(raw) / cpu, 1),
    }


def cycled(raw: list[Any], count: int) -> list[Any]:
    """`count` articles from a corpus, going round it again when it is shorter.

    A second round appends a line to each text, so it is no exact duplicate (the ingest stage
    would drop it) but a revision: it is extracted and evaluated again like any article.
    """
    out = list(raw[:count])
    round_ = 1
    while len(out) < count and raw:
        for record in raw[: count - len(out)]:
            out.append(
                record.model_copy(
                    update={
                        "id": f"{record.id or 'a'}-r{round_}",
                        "url": None,
                        "text": f"{record.text}\n(replay {round_})",
                    }
                )
            )
        round_ += 1
    return out


def rss_growth(samples: dict[str, list[float]]) -> dict[str, float]:
    """Per kind: how much the RSS of the last tenth of the run exceeds the first tenth (%)."""
    growth = {}
    for kind, values in samples.items():
        tenth = max(1, len(values) // 10)
        first = statistics.fmean(values[:tenth])
        last = statistics.fmean(values[-tenth:])
        growth[kind] = round((last / first - 1) * 100, 1) if first else 0.0
    return growth


def rss_by_tenth(samples: dict[str, list[float]]) -> dict[str, list[float]]:
    """Per kind: the mean RSS (MB) of each tenth of the run, to tell warm-up from a leak."""
    shape = {}
    for kind, values in samples.items():
        if len(values) < 10:
            continue
        bounds = [len(values) * i // 10 for i in range(11)]
        shape[kind] = [
            round(statistics.fmean(values[bounds[i] : bounds[i + 1]]), 1) for i in range(10)
        ]
    return shape


def messages(articles: list[Article], size: int) -> list[list[Article]]:
    """The articles in slices of one extract message each, as the workers get them."""
    return [articles[start : start + size] for start in range(0, len(articles), size)]


def _extract_shared(
    watchlist: Any,
    warm: list[Article],
    batches: list[list[Article]],
    size: int,
    claimed: Any,
    go: Any,
    reports: Any,
) -> None:
    """One process of `parallel_seconds`: load, warm up, say so, wait for the signal, then
    take the next unclaimed batch until none is left."""
    extractor = ready_extractor(watchlist, warm, size)
    reports.put(("ready", 0.0, 0))
    go.wait()
    done = 0
    while True:
        with claimed.get_lock():
            index = claimed.value
            claimed.value += 1
        if index >= len(batches):
            break
        done += len(extractor.extract_many(batches[index]))
    reports.put(("done", time.monotonic(), done))


def parallel_seconds(
    watchlist: Any, warm: list[Article], batches: list[list[Article]], k: int, size: int
) -> float:
    """Wall seconds for K fresh processes to extract `batches` at once.

    Each takes the next batch when it is free, as the extract workers take messages, so the
    last batches are shared the same way.

    Each process loads its own models (spawned, not forked: a forked copy would pay a
    copy-on-write fault for every page it writes, and so would this process afterwards),
    warms up, and waits until all are ready; the clock runs from the common start to the last
    one's end. This is what K cores give extraction with nothing else running: on a shared
    cache and memory bus, K extractions at once do not run K times as fast as one.
    """
    context = multiprocessing.get_context("spawn")
    go = context.Event()
    reports = context.Queue()
    claimed = context.Value("i", 0)
    processes = [
        context.Process(
            target=_extract_shared,
            args=(watchlist, warm, batches, size, claimed, go, reports),
        )
        for _ in range(k)
    ]
    for process in processes:
        process.start()

    def collect(kind: str) -> list[tuple[float, int]]:
        """One report of `kind` from every process; a process that dies first is an error."""
        got: list[tuple[float, int]] = []
        while len(got) < k:
            try:
                report_kind, moment, count = reports.get(timeout=1.0)
            except queue.Empty:
                failed = [p.exitcode for p in processes if p.exitcode not in (None, 0)]
                if failed:
                    for process in processes:
                        process.kill()
                    raise RuntimeError(
                        f"an in-process extraction process exited with code {failed[0]}"
                    ) from None
                continue
            if report_kind == kind:
                got.append((moment, count))
        return got

    collect("ready")
    started = time.monotonic()
    go.set()
    ends = collect("done")
    for process in processes:
        process.join()
    extracted = sum(count for _, count in ends)
    expected = sum(len(batch) for batch in batches)
    if extracted != expected:
        raise RuntimeError(f"in-process extraction at once: {extracted} of {expected} articles")
    return max(moment for moment, _ in ends) - started


def ready_extractor(watchlist: Any, warm: list[Article], size: int, events: bool = True) -> Any:
    """A freshly loaded Extractor that has extracted the warm-up articles, like a worker's.

    Fresh for each timed run: an extractor's first articles teach it new words
    (`LEARN_ARTICLES`), so one that has seen the replay would run it again faster than any
    worker does.
    """
    from workers.extract.pipeline import Extractor

    extractor = Extractor(watchlist, events=events)
    extractor.warm_up()
    for batch in messages(warm, size):
        extractor.extract_many(batch)
    return extractor


def inprocess_seconds(extractor: Any, articles: list[Article], size: int) -> tuple[float, float]:
    """Wall and CPU seconds for `extractor` to extract the articles one message-sized slice at
    a time."""
    started, cpu_started = time.perf_counter(), time.process_time()
    for batch in messages(articles, size):
        extractor.extract_many(batch)
    return time.perf_counter() - started, time.process_time() - cpu_started


def extract_cpu_seconds(metrics_dir: Path) -> float:
    """`pantau_extract_cpu_seconds_total` of a deployment's extract processes so far, read from
    their multiprocess metric files (pool children that exited included)."""
    from workers.metrics import sample_sum

    return sample_sum(str(metrics_dir), "pantau_extract_cpu_seconds_total")
