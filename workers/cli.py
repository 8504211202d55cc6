"""The `pantau` command: run the pipeline, feed it, watch it, and debug extraction in-process."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from workers.domain import Article, utc_now
from workers.errors import InputError, PantauError
from workers.settings import WORKER_KINDS, Settings

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Pantau: a message-queue stream processor for live news.",
)
dlq_app = typer.Typer(no_args_is_help=True, help="The dead-letter stream.")
app.add_typer(dlq_app, name="dlq")
token_app = typer.Typer(no_args_is_help=True, help="API tokens.")
app.add_typer(token_app, name="token")
alerts_app = typer.Typer(no_args_is_help=True, help="Alerts as they happen.")
app.add_typer(alerts_app, name="alerts")
err = Console(stderr=True, soft_wrap=True, highlight=False)
log = logging.getLogger("pantau")


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[red]pantau:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _settings(**overrides: Any) -> Settings:
    try:
        settings = Settings()
    except Exception as error:  # pydantic's ValidationError, named by field
        raise _fail(f"bad PANTAU_* setting: {error}") from error
    return settings.model_copy(update={k: v for k, v in overrides.items() if v is not None})


# Reading inputs ---------------------------------------------------------------------------------


def read_articles(inputs: list[str], settings: Settings) -> tuple[list[Article], list[str]]:
    """Every article the inputs yield, normalised, and one line per problem met on the way."""
    from workers.ingest.normalise import normalise
    from workers.ingest.sources import iter_files, read_file, read_stream

    articles: list[Article] = []
    problems: list[str] = []

    def results() -> Iterator[Any]:
        for name in inputs:
            if name == "-":
                yield lambda: read_stream(sys.stdin.buffer, "<stdin>", settings.max_input_bytes)
                continue
            if name.startswith(("http://", "https://")):
                yield lambda name=name: _read_url(name, settings)
                continue
            path = Path(name)
            if not path.exists():
                problems.append(f"{name}: no such file or directory")
                continue
            for file in iter_files(path):
                yield lambda file=file: read_file(file, settings.max_input_bytes)

    for read in results():
        try:
            result = read()
        except InputError as error:
            problems.append(str(error))
            continue
        problems.extend(result.warnings)
        problems.extend(result.problems)
        for index, record in enumerate(result.records):
            try:
                articles.append(
                    normalise(
                        record,
                        max_chars=settings.max_article_chars,
                        source=f"{result.source}#{index}",
                    )
                )
            except InputError as error:
                problems.append(str(error))
    return articles, problems


def _read_url(url: str, settings: Settings) -> Any:
    from workers.ingest.fetch import fetch
    from workers.ingest.sources import parse_bytes
    from workers.ingest.urls import OutboundPolicy

    try:
        result = fetch(
            url,
            policy=OutboundPolicy.from_setting(settings.outbound_allowlist),
            max_bytes=settings.max_input_bytes,
        )
    except PantauError as error:
        raise InputError(url, str(error)) from error
    if not result.body:
        raise InputError(url, f"no content (HTTP {result.status})")
    return parse_bytes(result.body, url)


def _report(problems: list[str]) -> None:
    for problem in problems:
        err.print(f"[yellow]skipped[/yellow] {problem}", highlight=False, soft_wrap=True)


# Commands -------------------------------------------------------------------------------------


@app.command()
def extract(
    inputs: Annotated[
        list[str] | None, typer.Argument(help="Files, directories, or - for stdin.")
    ] = None,
    watchlist: Annotated[Path | None, typer.Option(help="Watchlist YAML.")] = None,
    no_events: Annotated[bool, typer.Option("--no-events", help="Skip event coding.")] = False,
) -> None:
    """Run extraction and alert matching in-process (no broker): one JSON line per article."""
    from workers.alert.rules import match_watchlist
    from workers.extract.pipeline import Extractor
    from workers.watchlist_source import WatchlistSource

    settings = _settings(watchlist=watchlist)
    articles, problems = read_articles(inputs or ["-"], settings)
    _report(problems)
    if not articles:
        raise _fail("no article in the input")
    try:
        current = WatchlistSource.from_settings(settings).current()
    except InputError as error:
        raise _fail(str(error)) from error
    extractor = Extractor(current, events=not no_events)
    for extraction in extractor.extract_many(articles):
        alerts = match_watchlist(extraction, current)
        record = {
            "id": extraction.article_id,
            "language": extraction.language,
            "text": extraction.text,
            "truncated": extraction.truncated,
            "entities": [e.model_dump(exclude_none=True) for e in extraction.entities],
            "events": [e.model_dump(exclude_none=True) for e in extraction.events],
            "alerts": [a.model_dump() for a in alerts],
        }
        sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")


@app.command()
def ingest(
    inputs: Annotated[list[str], typer.Argument(help="Files, directories, feed URLs, or -.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print records, enqueue nothing.")
    ] = False,
) -> None:
    """Enqueue articles into a running deployment (`pantau up` or compose)."""
    settings = _settings()
    articles, problems = read_articles(inputs, settings)
    _report(problems)
    if not articles:
        raise _fail(
            "nothing to ingest: " + (problems[0] if problems else "the input holds no article")
        )
    if dry_run:
        for article in articles:
            sys.stdout.write(article.model_dump_json(exclude_none=True) + "\n")
        return
    from workers.ingest.tasks import SpoolFull, publish

    store = _connect(settings, ping=False)
    outbox = _outbox(settings)
    try:
        sent, spooled = publish(articles, outbox, store)
    except SpoolFull as error:
        raise _fail(str(error), code=1) from error
    for article in articles:
        sys.stdout.write(json.dumps({"id": article.id, "source": article.source}) + "\n")
    if spooled:
        err.print(
            f"Redis is unreachable: {spooled} article(s) kept in {outbox.directory}; they are "
            "sent when Redis is back (by the API of `pantau up` or the next `pantau ingest`)"
        )
    else:
        err.print(
            f"enqueued {sent} article(s)" + (f", {len(problems)} problem(s)" if problems else "")
        )


def _outbox(settings: Settings) -> Any:
    from workers.outbox import Outbox

    return Outbox(settings.data_dir / "outbox", settings.outbox_max_bytes)


def _connect(settings: Settings, ping: bool = True) -> Any:
    from workers import app as celery_app
    from workers.runtime import resolve_redis_url
    from workers.store import Store

    try:
        url = resolve_redis_url(settings)
    except PantauError as error:
        raise _fail(str(error), code=1) from error
    celery_app.configure(settings, url)
    store = Store.connect(url, settings)
    if ping:
        try:
            store.ping()
        except PantauError as error:
            raise _fail(str(error), code=1) from error
    return store


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable.")] = False,
) -> None:
    """What a running deployment is doing: queues, articles, workers."""
    settings = _settings()
    store = _connect(settings)
    current = store.status()
    if as_json:
        sys.stdout.write(json.dumps(current) + "\n")
        return
    console = Console()
    console.print(f"queues   {current['queues']}  (unacked {current['unacked']})")
    console.print(f"articles {current['articles']}")
    console.print(f"alerts   {current['alerts']}   dead letters {current['dead_letter_depth']}")
    for worker in current["workers"]:
        state = "[green]alive[/green]" if worker["alive"] else "[red]gone[/red]"
        console.print(
            f"worker   {worker['kind']:<8} pid {worker['pid']:<8} {state}  {worker['name']}"
        )


@app.command()
def worker(
    kind: Annotated[str, typer.Argument(help="ingest | extract | alert")],
    concurrency: Annotated[int, typer.Option(min=1, max=64)] = 1,
) -> None:
    """Start one worker of a kind: `celery -A workers.app worker -Q KIND` with Pantau's settings."""
    from workers.runtime import resolve_redis_url, worker_command, worker_env

    if kind not in WORKER_KINDS:
        raise _fail(f"unknown worker kind {kind!r}: choose one of {', '.join(WORKER_KINDS)}")
    settings = _settings()
    try:
        url = resolve_redis_url(settings)
    except PantauError as error:
        raise _fail(str(error), code=1) from error
    command = worker_command(kind, concurrency)
    os.execvpe(command[0], command, worker_env(settings, kind, url))


def _drained(store: Any, expected: int) -> bool:
    counters = store.counters()
    settled = counters["completed"] + counters["duplicates"] + counters["dead_lettered"]
    return settled >= expected and not any(store.queue_depths().values()) and store.unacked() == 0


@app.command()
def demo(
    seeds: Annotated[Path, typer.Option(help="Folder (or file) of articles to ingest.")] = Path(
        "seeds"
    ),
    watchlist: Annotated[Path | None, typer.Option(help="Watchlist YAML.")] = None,
    timeout: Annotated[float, typer.Option(help="Give up after this many seconds.")] = 600,
) -> None:
    """The main job: start Redis and the three workers, ingest the seeds, print every alert."""
    from workers.ingest.tasks import send_accepted
    from workers.runtime import deployment

    started = time.monotonic()
    seeds_path = seeds if seeds.exists() else _shipped_seeds(seeds)
    if watchlist is not None and not watchlist.exists():
        raise _fail(f"{watchlist}: no such file")
    base = _settings(watchlist=watchlist.resolve() if watchlist else None)
    articles, problems = read_articles([str(seeds_path)], base)
    _report(problems)
    if not articles:
        raise _fail(f"{seeds_path}: no article to ingest")
    data_dir = Path(tempfile.mkdtemp(prefix="pantau-demo-"))
    settings = base.model_copy(
        update={
            "data_dir": data_dir,
            "namespace": f"pantau-demo-{uuid.uuid4().hex[:8]}",
            "metrics_port_ingest": 0,
            "metrics_port_extract": 0,
            "metrics_port_alert": 0,
        }
    )
    ok = False
    try:
        with deployment(settings) as running:
            store = _start_pipeline(running, settings)
            err.print(
                f"workers ready in {time.monotonic() - started:.1f} s; "
                f"ingesting {len(articles)} article(s) from {seeds_path}"
            )
            # Read (and stamped) before the pipeline existed: stamped again as the running
            # pipeline accepts them, so an alert's ingested_at -> alerted_at is the pipeline's
            # latency, not the workers' start-up.
            accepted_at = utc_now()
            articles = [a.model_copy(update={"ingested_at": accepted_at}) for a in articles]
            send_accepted(articles, store, quick=False)
            _wait_drained(store, len(articles), timeout)
            alerts = store.read_alerts()
            for _entry_id, alert in alerts:
                sys.stdout.write(alert.model_dump_json() + "\n")
            counters = store.counters()
            err.print(
                f"done in {time.monotonic() - started:.1f} s: {counters['completed']} article(s) "
                f"processed, {counters['duplicates']} duplicate(s), {counters['dead_lettered']} "
                f"dead-lettered, {len(alerts)} alert(s): "
                + ", ".join(sorted({a.actor_name for _, a in alerts}) or ["none"])
            )
            for _entry_id, fields in store.dead_letters():
                err.print(
                    f"[red]dead-lettered[/red] {fields['task']}: {fields['error']}",
                    highlight=False,
                    soft_wrap=True,
                )
            if settings.redis_url:
                store.drop_namespace()
            ok = True
    except PantauError as error:
        raise _fail(f"{error} (logs kept in {data_dir / 'logs'})", code=1) from error
    finally:
        if ok:
            shutil.rmtree(data_dir, ignore_errors=True)


def _shipped_seeds(requested: Path) -> Path:
    from workers.resources import PACKAGE_DIR

    for candidate in (PACKAGE_DIR / "seeds", PACKAGE_DIR.parent / "seeds"):
        if candidate.exists() and requested == Path("seeds"):
            return candidate
    raise _fail(f"{requested}: no such file or directory")


def _start_pipeline(running: Any, settings: Settings) -> Any:
    from workers import app as celery_app
    from workers.store import Store

    celery_app.configure(settings, running.redis_url)
    store = Store.connect(running.redis_url, settings)
    with err.status("starting workers (loading pipelines)..."):
        running.start_workers()
        running.wait_ready(store)
    return store


def _progress() -> Progress:
    """A transient progress bar on stderr: description, bar, done/total, elapsed time."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        refresh_per_second=4,  # rich's 10 redraws a second took CPU from the bench's pipeline
    )


def _wait_drained(store: Any, expected: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with _progress() as progress:
        task = progress.add_task("processing", total=expected)
        while not _drained(store, expected):
            counters = store.counters()
            progress.update(
                task,
                completed=counters["completed"]
                + counters["duplicates"]
                + counters["dead_lettered"],
            )
            if time.monotonic() > deadline:
                raise PantauError(f"queues not drained after {timeout:.0f} s: {store.status()}")
            time.sleep(0.1)


@app.command()
def up(
    watchlist: Annotated[Path | None, typer.Option(help="Watchlist YAML.")] = None,
    workers: Annotated[
        str,
        typer.Option(
            "--workers",
            metavar="KIND=N,...",
            help="Pool processes per worker kind (one celery worker per kind, prefork "
            "concurrency N); kinds left out get 1.",
        ),
    ] = "ingest=1,extract=1,alert=1",
) -> None:
    """Run the deployment until Ctrl-C / SIGTERM: Redis (embedded unless configured), workers, API.

    A process that exits is restarted with backoff (1 s doubling to 60 s); logs in <data dir>/logs.
    """
    from workers.runtime import Supervisor, deployment, parse_worker_counts

    try:
        concurrency = parse_worker_counts(workers)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="'--workers'") from error
    if watchlist is not None and not watchlist.exists():
        raise _fail(f"{watchlist}: no such file")
    settings = _settings(watchlist=watchlist.resolve() if watchlist else None)
    stop = {"now": False}

    def _stop(signum: int, _frame: Any) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        with deployment(settings, concurrency) as running:
            store = _start_pipeline(running, settings)
            running.start_api()
            running.start_beat()
            from workers.auth import TokenRecord, new_token

            _, read_token = new_token()
            store.save_token(
                TokenRecord.for_token(read_token, ["read:all"], note="pantau up dashboard")
            )
            err.print(
                f"Dashboard: http://{settings.api_host}:{settings.api_port}/#token={read_token}"
            )
            err.print(
                f"Pantau is up: Redis {running.redis_url}, API http://{settings.api_host}:"
                f"{settings.api_port}, workers {workers}, data in {settings.data_dir.resolve()}, "
                f"logs in {running.log_path('api').parent.resolve()}. Ctrl-C stops."
            )
            supervisor = Supervisor(
                running, report=lambda message: err.print(message, style="yellow", markup=False)
            )
            while not stop["now"]:
                supervisor.tick()
                time.sleep(0.5)
            err.print("stopping: warm shutdown of every process, then Redis...")
            del store
    except PantauError as error:
        raise _fail(str(error), code=1) from error


@app.command()
def bench(
    corpus: Annotated[
        Path, typer.Option(help="JSONL corpus: IndoSum, Wikinews or article records.")
    ],
    articles: Annotated[int, typer.Option(min=1, help="How many articles to replay.")] = 1000,
    extract_workers: Annotated[int, typer.Option(min=1, max=16, help="Extract processes (K).")] = 1,
    watchlist: Annotated[Path | None, typer.Option(help="Watchlist YAML.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    warmup: Annotated[int, typer.Option(help="Articles sent first and not measured.")] = 20,
    ingest_only: Annotated[
        bool, typer.Option("--ingest-only", help="Measure normalise + dedup + enqueue only.")
    ] = False,
    rate: Annotated[
        float | None,
        typer.Option(
            min=0.1,
            help="Latency mode: send this many articles per second, one at a time, for "
            "--duration seconds (instead of --articles at once).",
        ),
    ] = None,
    duration: Annotated[
        float, typer.Option(min=1, help="Latency mode: how long to send, in seconds.")
    ] = 300,
    webhook: Annotated[
        bool,
        typer.Option(
            "--webhook",
            help="Latency mode: deliver alerts to a local webhook receiver and time them there.",
        ),
    ] = False,
) -> None:
    """Replay N articles through the full queue pipeline; compare with in-process extraction.

    With --rate: send articles at a steady rate and measure ingest-to-alert latency instead.
    """
    from workers import bench as measure
    from workers.ingest.corpora import read_corpus
    from workers.ingest.normalise import normalise
    from workers.ingest.tasks import SEND_BATCH, send_accepted
    from workers.runtime import deployment
    from workers.watchlist_source import WatchlistSource

    base = _settings(watchlist=watchlist.resolve() if watchlist else None)
    if rate is not None:
        articles = max(1, round(rate * duration))
    try:
        raw = measure.cycled(list(read_corpus(corpus, articles + warmup)), articles + warmup)
    except (InputError, OSError) as error:
        raise _fail(str(error)) from error
    if len(raw) <= warmup:
        raise _fail(f"{corpus}: needs more than {warmup} articles")
    data_dir = Path(tempfile.mkdtemp(prefix="pantau-bench-"))
    run_id = uuid.uuid4().hex[:8]
    settings = base.model_copy(
        update={
            "data_dir": data_dir,
            "namespace": f"pantau-bench-{run_id}",
            "metrics_port_ingest": 0,
            "metrics_port_extract": 0,
            "metrics_port_alert": 0,
        }
    )
    if ingest_only:
        from workers import app as celery_app
        from workers.store import Store

        with deployment(settings) as running:
            celery_app.configure(settings, running.redis_url)
            store = Store.connect(running.redis_url, settings)
            figures = measure.ingest_rate(raw, store, settings.max_article_chars)
            if settings.redis_url:
                store.drop_namespace()
        shutil.rmtree(data_dir, ignore_errors=True)
        sys.stdout.write(json.dumps(figures | {"machine": measure.machine()}) + "\n")
        return
    current = WatchlistSource.from_settings(settings).current()
    if rate is not None:
        _bench_at_rate(settings, raw, warmup, rate, webhook, extract_workers, as_json)
        return
    # Slices of one extract message each, as the workers get them: the learning phase and
    # memory zones (decided per call) switch at the same points as in a worker.
    size = settings.extract_batch_size
    warm = [normalise(r, max_chars=settings.max_article_chars) for r in raw[:warmup]]
    # The in-process baseline is measured before the replay and again after it, each time by a
    # fresh extractor, and the ratio uses their mean: this machine's speed drifts by several
    # per cent within a minute, and one measurement on one side would put that into the ratio.
    err.print("measuring in-process extraction before the replay...")
    same_articles = [normalise(r, max_chars=settings.max_article_chars) for r in raw[warmup:]]
    before = measure.ready_extractor(current, warm, size)
    before_s, before_cpu = measure.inprocess_seconds(before, same_articles, size)
    del before, same_articles
    try:
        with deployment(settings, {"ingest": 1, "extract": extract_workers, "alert": 1}) as running:
            store = _start_pipeline(running, settings)
            send_accepted(warm, store, quick=False)
            measure.wait_completed(store, warm, 300)
            extract_metrics = settings.metrics_dir / "extract"
            extract_cpu = measure.extract_cpu_seconds(extract_metrics)
            with (
                measure.ProcessSampler(running) as rss,
                _progress() as progress,
            ):
                task = progress.add_task("replaying", total=len(raw) - warmup)
                started = time.time()
                replay: list[Article] = []
                # Normalised (stamped at acceptance, like the API and `pantau ingest` do) and
                # sent a chunk at a time, as a producer accepts a stream: the workers start on
                # the first chunk instead of idling while the whole replay is normalised
                # (~0.2 s per 1,000 IndoSum articles, one core).
                for start in range(warmup, len(raw), SEND_BATCH):
                    chunk = [
                        normalise(r, max_chars=settings.max_article_chars)
                        for r in raw[start : start + SEND_BATCH]
                    ]
                    send_accepted(chunk, store, quick=False)
                    replay.extend(chunk)
                completed = measure.wait_completed(
                    store, replay, 3600, lambda n: progress.update(task, completed=n)
                )
                finished = max(t for t in store.completion_times([a.id for a in replay]) if t)
            extract_cpu = measure.extract_cpu_seconds(extract_metrics) - extract_cpu
            elapsed = finished - started
            latency = measure.latency_ms(store, replay)
            if settings.redis_url:
                store.drop_namespace()
    except PantauError as error:
        raise _fail(f"{error} (logs in {data_dir / 'logs'})", code=1) from error
    shutil.rmtree(data_dir, ignore_errors=True)

    err.print("measuring in-process extraction on the same articles, after the replay...")
    extractor = measure.ready_extractor(current, warm, size)
    nlp = extractor.nlp("id")
    # In a memory zone: tokenising outside one would leave every word of the replay in the
    # vocabulary, and the timed runs below would start warmer than the workers ever are.
    with nlp.memory_zone():
        tokens = sum(len(nlp.make_doc(a.text)) for a in replay)
    after_s, after_cpu = measure.inprocess_seconds(extractor, replay, size)
    del extractor
    parallel_s = None
    if extract_workers > 1:
        # K extractions at once, each in a fresh process of its own: what K cores give
        # extraction on this machine with nothing else running.
        parallel_s = measure.parallel_seconds(
            current, warm, measure.messages(replay, size), extract_workers, size
        )
    without_events = measure.ready_extractor(current, warm, size, events=False)
    bare_elapsed, _ = measure.inprocess_seconds(without_events, replay, size)
    in_elapsed = (before_s + after_s) / 2
    pipeline_aps = completed / elapsed
    inprocess_aps = len(replay) / in_elapsed
    result = {
        "articles": len(replay),
        "completed": completed,
        "seconds": round(elapsed, 3),
        "articles_per_s": round(pipeline_aps, 2),
        "tokens": tokens,
        "tokens_per_s": round(tokens / elapsed, 1),
        "latency_ms": latency,
        "inprocess_articles_per_s": round(inprocess_aps, 2),
        "inprocess_before_after_articles_per_s": [
            round(len(replay) / before_s, 2),
            round(len(replay) / after_s, 2),
        ],
        "inprocess_tokens_per_s": round(tokens / in_elapsed, 1),
        "inprocess_no_events_articles_per_s": round(len(replay) / bare_elapsed, 2),
        "event_coding_overhead": round(after_s / bare_elapsed - 1, 3),
        "extract_workers": extract_workers,
        "ratio": round(pipeline_aps / (inprocess_aps * extract_workers), 3),
        # Where the ratio goes: the share of the K extract cores' time the workers spent inside
        # the extraction pipeline (the rest went to the queue's own work and to idling), and
        # the CPU that extraction took per article in the workers and in-process.
        "extract_cpu_s": round(extract_cpu, 3),
        "extract_cpu_share": round(extract_cpu / (extract_workers * elapsed), 3),
        "extract_cpu_ms_per_article": round(1000 * extract_cpu / len(replay), 2),
        "inprocess_cpu_ms_per_article": round(1000 * (before_cpu + after_cpu) / 2 / len(replay), 2),
        "rss_mb": {kind: round(v, 1) for kind, v in rss.peaks.items()},
        "rss_growth_pct": measure.rss_growth(rss.samples),
        "rss_by_tenth_mb": measure.rss_by_tenth(rss.samples),
        "cpu_s": rss.cpu_s,
        "machine": measure.machine(),
    }
    if parallel_s is not None:
        parallel_aps = len(replay) / parallel_s
        result |= {
            "inprocess_parallel_articles_per_s": round(parallel_aps, 2),
            # How far K extractions at once fall short of K times one: the machine's part.
            "inprocess_scaling": round(parallel_aps / (inprocess_aps * extract_workers), 3),
            # The pipeline against K in-process extractions at once: the queue's part.
            "ratio_vs_parallel": round(pipeline_aps / parallel_aps, 3),
        }
    if as_json:
        sys.stdout.write(json.dumps(result) + "\n")
        return
    console = Console()
    console.print(
        f"pipeline    {result['articles_per_s']} articles/s, {result['tokens_per_s']} tokens/s "
        f"({completed}/{len(replay)} articles in {elapsed:.1f} s, K={extract_workers})"
    )
    console.print(
        f"latency     p50 {latency['p50']:.0f} ms  p95 {latency['p95']:.0f} ms  "
        f"p99 {latency['p99']:.0f} ms  (ingest -> alert stage)"
    )
    console.print(
        f"in-process  {result['inprocess_articles_per_s']} articles/s, "
        f"{result['inprocess_tokens_per_s']} tokens/s (mean of before and after the replay: "
        f"{result['inprocess_before_after_articles_per_s']}); ratio {result['ratio']}"
    )
    if parallel_s is not None:
        console.print(
            f"in-process  {result['inprocess_parallel_articles_per_s']} articles/s with "
            f"{extract_workers} at once (scaling {result['inprocess_scaling']}); pipeline / that "
            f"{result['ratio_vs_parallel']}"
        )
    console.print(f"events      add {result['event_coding_overhead']:.1%} to in-process extraction")
    console.print(f"peak RSS    {result['rss_mb']} MB")
    console.print(f"CPU seconds {result['cpu_s']} during the replay")


def _bench_at_rate(
    base: Settings,
    raw: list[Any],
    warmup: int,
    rate: float,
    webhook: bool,
    extract_workers: int,
    as_json: bool,
) -> None:
    """`pantau bench --rate`: the deployment, a progress bar and the report around RateBench."""
    from workers import bench as measure
    from workers.bench_latency import BENCH_STORY_WINDOW_S, RateBench
    from workers.ingest.normalise import normalise
    from workers.runtime import deployment
    from workers.watchlist_source import WatchlistSource

    allow = ",".join(h for h in (base.outbound_allowlist, "127.0.0.1") if h)
    settings = base.model_copy(
        update={"outbound_allowlist": allow, "story_window_s": BENCH_STORY_WINDOW_S}
    )
    measured = raw[warmup:]
    try:
        with deployment(settings, {"ingest": 1, "extract": extract_workers, "alert": 1}) as running:
            store = _start_pipeline(running, settings)
            run = RateBench(
                store, settings, WatchlistSource.from_settings(settings).current(), webhook
            )
            try:
                run.prepare()
                warm = [normalise(r, max_chars=settings.max_article_chars) for r in raw[:warmup]]
                run.publish(warm)
                measure.wait_completed(store, warm, 300)
                with (
                    measure.ProcessSampler(running) as rss,
                    _progress() as progress,
                ):
                    task = progress.add_task(f"sending at {rate:g}/s", total=len(measured))
                    sent = run.send(measured, rate, lambda n: progress.update(task, completed=n))
                    progress.update(task, description="draining", completed=0)
                    completed = measure.wait_completed(
                        store, sent.articles, 3600, lambda n: progress.update(task, completed=n)
                    )
                    drained = time.time()
                result = run.results(sent)
            finally:
                run.close()
            if settings.redis_url:
                store.drop_namespace()
    except PantauError as error:
        raise _fail(f"{error} (logs in {settings.data_dir / 'logs'})", code=1) from error
    shutil.rmtree(settings.data_dir, ignore_errors=True)
    result = {
        "mode": "rate",
        "rate_target": rate,
        "articles_sent": len(sent.articles),
        "articles_completed": completed,
        "drain_s": round(drained - sent.last_at, 2),
        **result,
        "extract_workers": extract_workers,
        "rss_mb": {kind: round(v, 1) for kind, v in rss.peaks.items()},
        "rss_growth_pct": measure.rss_growth(rss.samples),
        "rss_by_tenth_mb": measure.rss_by_tenth(rss.samples),
        "cpu_s": rss.cpu_s,
        "machine": measure.machine(),
    }
    if as_json:
        sys.stdout.write(json.dumps(result) + "\n")
        return
    console = Console()
    console.print(
        f"sent        {result['articles_sent']} articles at {result['rate_achieved']}/s "
        f"(target {rate:g}/s); completed {completed}; drained {result['drain_s']} s after"
    )
    pipe = result["pipeline_latency_ms"]
    console.print(
        f"pipeline    p50 {pipe['p50']:.0f} ms  p95 {pipe['p95']:.0f} ms  p99 {pipe['p99']:.0f} ms"
        "  (ingest -> alert stage done)"
    )
    if "webhook_latency_ms" in result:
        hook = result["webhook_latency_ms"]
        console.print(
            f"webhook     p50 {hook['p50']:.0f} ms  p95 {hook['p95']:.0f} ms  "
            f"p99 {hook['p99']:.0f} ms  max {hook['max']:.0f} ms  (ingest -> receiver, "
            f"{result['alerts_delivered']} of {result['alerts_recorded']} alerts)"
        )
        console.print(
            f"delivery    raw duplicates {result['raw_duplicates']}, missing "
            f"{result['missing_alerts']}, bad signatures {result['bad_signatures']}"
        )
    console.print(f"peak RSS    {result['rss_mb']} MB")


train_app = typer.Typer(no_args_is_help=True, help="Train the shipped models.")
app.add_typer(train_app, name="train")
eval_app = typer.Typer(no_args_is_help=True, help="Evaluate extraction on gold data.")
app.add_typer(eval_app, name="eval")


@train_app.command("ner")
def train_ner(
    lang: Annotated[str, typer.Option(help="id or en.")],
    data: Annotated[Path, typer.Option(help="Folder holding the corpora (../shared/data).")],
    out: Annotated[
        Path | None, typer.Option(help="Scratch folder (default training/<lang>).")
    ] = None,
    ship: Annotated[
        bool, typer.Option("--ship", help="Copy the best model into the package.")
    ] = False,
) -> None:
    """Convert the corpora and train the NER pipeline with spaCy (config/spacy/ner_<lang>.cfg)."""
    from workers.extract.training import train_ner as train
    from workers.resources import models_dir

    if lang not in ("id", "en"):
        raise _fail(f"--lang {lang!r}: choose id or en")
    if not data.is_dir():
        raise _fail(f"{data}: not a folder")
    best = train(
        lang, data, out or Path("training") / lang, ship_to=models_dir() / lang if ship else None
    )
    err.print(f"best model: {best}" + (f"; shipped to {models_dir() / lang}" if ship else ""))


def _print_result(result: dict[str, Any], render: Any, as_json: bool) -> None:
    """An evaluation result as one JSON line, or as its text table."""
    if as_json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        Console().print(render(result), highlight=False)


@eval_app.command("ner")
def eval_ner(
    lang: Annotated[str, typer.Option(help="id or en.")],
    data: Annotated[Path, typer.Option(help="CoNLL/IOB file (IOB1 or IOB2, space or tab).")],
    lowercase: Annotated[
        bool, typer.Option("--lowercase", help="Lower-case the text first.")
    ] = False,
    labels: Annotated[str, typer.Option(help="Labels to score.")] = "PER,ORG,LOC",
    model_only: Annotated[
        bool, typer.Option("--model-only", help="Without the gazetteer.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Per-label and micro precision/recall/F1 on exact spans, of what the extract stage ships."""
    from workers.alert.watchlist import Watchlist
    from workers.extract.evaluate import evaluate_ner, format_report, read_conll
    from workers.extract.pipeline import EntityPipe, Extractor

    if not data.is_file():
        raise _fail(f"{data}: no such file")
    try:
        sentences = read_conll(data)
    except (OSError, ValueError) as error:
        raise _fail(f"{data}: {error}") from error
    # An empty watchlist: score the model and the general gazetteer, not the watched actors.
    extractor = Extractor(Watchlist(), events=False)
    nlp: Any = extractor.nlp(lang) if model_only else EntityPipe(extractor, lang)
    result = evaluate_ner(nlp, sentences, labels=tuple(labels.split(",")), lowercase=lowercase)
    _print_result(result, format_report, as_json)


@eval_app.command("events")
def eval_events(
    lang: Annotated[str, typer.Option(help="id or en.")],
    data: Annotated[
        Path | None, typer.Option(help="Gold JSONL (default tests/data/events/<lang>.jsonl).")
    ] = None,
    split: Annotated[str | None, typer.Option(help="dev, test, or all when omitted.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Per-type precision/recall/F1 of event coding and source/target accuracy on the gold set."""
    from workers.extract.events import evaluate_gold_file, format_event_report

    path = data or Path("tests") / "data" / "events" / f"{lang}.jsonl"
    if not path.is_file():
        raise _fail(f"{path}: no such file (pass --data)")
    _print_result(evaluate_gold_file(path, lang, split), format_event_report, as_json)


@token_app.command("create")
def token_create(
    scope: Annotated[
        list[str] | None, typer.Option(help="admin, read:all or subscription:<id>.")
    ] = None,
    note: Annotated[str | None, typer.Option(help="What the token is for.")] = None,
) -> None:
    """Create an API token; it is printed once and only its hash is stored."""
    from workers.auth import TokenRecord, new_token

    store = _connect(_settings())
    _, token = new_token()
    try:
        record = TokenRecord.for_token(token, scope or ["admin"], note=note)
    except ValueError as error:
        raise _fail(str(error).splitlines()[-1]) from error
    store.save_token(record)
    sys.stdout.write(json.dumps({"token": token, "id": record.id, "scopes": record.scopes}) + "\n")


@app.command()
def subscribe(
    actor: Annotated[list[str], typer.Option(help="Watched actor id (repeat for any-of).")],
    event: Annotated[list[str] | None, typer.Option(help="PLOVER event type (repeat).")] = None,
    all_actors: Annotated[
        bool, typer.Option("--all", help="Every actor in one article (co-mention).")
    ] = False,
    role: Annotated[str, typer.Option(help="source, target or any.")] = "any",
    webhook: Annotated[
        str | None, typer.Option(help="Deliver to this URL (Standard Webhooks).")
    ] = None,
    sse: Annotated[bool, typer.Option("--sse", help="Read it from /v1/alerts/stream.")] = False,
    digest: Annotated[str | None, typer.Option(help="hourly or daily instead of realtime.")] = None,
    cooldown: Annotated[
        int, typer.Option(help="Seconds before the same story alerts again.")
    ] = 3600,
) -> None:
    """Create a subscription in the running deployment; prints {"id", "secret", "token"} as JSON."""
    from pydantic import ValidationError

    from workers.alert.subscriptions import SubscriptionIn
    from workers.api.subscriptions import create_subscription
    from workers.ingest.urls import OutboundPolicy

    if webhook and sse:
        raise _fail("choose --webhook URL or --sse, not both")
    settings = _settings()
    store = _connect(settings)
    try:
        data = SubscriptionIn(
            actors_any=[] if all_actors else actor,
            actors_all=actor if all_actors else [],
            event_types=event or [],
            role=role,  # type: ignore[arg-type]
            channel="webhook" if webhook else "sse",
            webhook_url=webhook,
            mode="digest" if digest else "realtime",
            digest_every=digest,  # type: ignore[arg-type]
            cooldown_s=cooldown,
        )
        created = create_subscription(
            store, data, OutboundPolicy.from_setting(settings.outbound_allowlist)
        )
    except ValidationError as error:
        first = error.errors()[0]
        raise _fail(
            f"{'.'.join(str(p) for p in first['loc']) or 'subscription'}: {first['msg']}"
        ) from error
    except InputError as error:
        raise _fail(str(error)) from error
    sys.stdout.write(
        json.dumps({"id": created["id"], "secret": created["secret"], "token": created["token"]})
        + "\n"
    )


@alerts_app.command("tail")
def alerts_tail(
    actor: Annotated[str | None, typer.Option(help="Only this actor.")] = None,
    subscription: Annotated[str | None, typer.Option(help="One subscription's channel.")] = None,
) -> None:
    """Print alerts as they are recorded (Redis pub/sub), one JSON line each, until Ctrl-C."""
    store = _connect(_settings())
    pubsub = store.redis.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(
        store.key("sub", subscription) if subscription else store.key("alerts", "live")
    )
    err.print("waiting for alerts (Ctrl-C stops)...")
    for message in pubsub.listen():
        data = message["data"]
        if actor and f'"actor_id":"{actor}"' not in data.replace(" ", ""):
            continue
        sys.stdout.write(data + "\n")
        sys.stdout.flush()


@dlq_app.command("list")
def dlq_list(limit: Annotated[int, typer.Option(min=1)] = 100) -> None:
    """Dead-lettered messages, one JSON line each: task, error, article ids."""
    store = _connect(_settings())
    for entry_id, fields in store.dead_letters(count=limit):
        record = {"entry_id": entry_id, **{k: v for k, v in fields.items() if k != "traceback"}}
        sys.stdout.write(json.dumps(record) + "\n")


@dlq_app.command("replay")
def dlq_replay(entry_ids: Annotated[list[str] | None, typer.Argument()] = None) -> None:
    """Send dead-lettered messages (all, or the given entry ids) back to their task."""
    from workers import app as celery_app
    from workers.dlq import replay

    store = _connect(_settings())
    count = replay(store, celery_app.app.send_task, entry_ids or None)
    err.print(f"replayed {count} message(s)")


def main() -> None:
    """Console-script entry point."""
    from workers.auth import install_redaction

    logging.basicConfig(
        level=os.environ.get("PANTAU_LOG_LEVEL", "WARNING"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    install_redaction()
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
