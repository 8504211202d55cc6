"""`pantau up`'s supervision as pure pieces: the --workers spec, the restart backoff, the
supervisor's schedule (with stand-in processes and a fake clock), the container health check, and
when a pool child counts as up (`pantau_worker_up`)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from workers.runtime import (
    Backoff,
    Deployment,
    Supervisor,
    healthcheck,
    parse_worker_counts,
    worker_command,
)
from workers.settings import Settings

# --workers -----------------------------------------------------------------------------------------


def test_parse_worker_counts_reads_kind_equals_count() -> None:
    assert parse_worker_counts("ingest=1,extract=2,alert=1") == {
        "ingest": 1,
        "extract": 2,
        "alert": 1,
    }
    assert parse_worker_counts(" extract = 3 ") == {"ingest": 1, "extract": 3, "alert": 1}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty"),
        ("extract", "not KIND=N"),
        ("=2", "not KIND=N"),
        ("beat=1", "unknown worker kind 'beat'"),
        ("extract=two", "must be an integer"),
        ("extract=1.5", "must be an integer"),
        ("extract=0", "between 1 and 64"),
        ("alert=-1", "between 1 and 64"),
        ("extract=65", "between 1 and 64"),
        ("extract=1,extract=2", "given twice"),
        ("ingest=1,,alert=1", "not KIND=N"),
    ],
)
def test_parse_worker_counts_names_the_bad_item(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_worker_counts(spec)


# Backoff -------------------------------------------------------------------------------------------------


def test_backoff_doubles_from_one_second_up_to_a_minute() -> None:
    backoff = Backoff()
    delays = [backoff.delay(uptime_s=0.5) for _ in range(9)]
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_backoff_starts_over_after_the_process_stayed_up() -> None:
    backoff = Backoff(first_s=1, max_s=60, reset_after_s=60)
    assert [backoff.delay(1), backoff.delay(1), backoff.delay(1)] == [1, 2, 4]
    assert backoff.delay(uptime_s=59.9) == 8  # not up long enough: still crash-looping
    assert backoff.delay(uptime_s=60) == 1
    assert backoff.delay(uptime_s=0) == 2


# Supervisor ---------------------------------------------------------------------------------------------


@dataclass
class StandIn:
    """A child process as the supervisor sees it: poll() and returncode."""

    pid: int
    returncode: int | None = None

    def poll(self) -> int | None:
        return self.returncode


@dataclass
class FakeDeployment:
    """Records restarts; each restart puts a fresh live stand-in in place."""

    settings: Settings
    processes: dict[str, StandIn] = field(default_factory=dict)
    restarted: list[tuple[str, float]] = field(default_factory=list)
    now: list[float] = field(default_factory=lambda: [0.0])

    def dead_processes(self) -> list[str]:
        return [name for name, p in self.processes.items() if p.poll() is not None]

    def restart(self, name: str) -> None:
        self.restarted.append((name, self.now[0]))
        self.processes[name] = StandIn(pid=self.processes[name].pid + 1)

    def log_path(self, name: str) -> Path:
        return Deployment.log_path(self, name)  # type: ignore[arg-type]


def test_supervisor_restarts_an_exited_process_with_backoff(tmp_path: Path) -> None:
    running = FakeDeployment(Settings(data_dir=tmp_path), {"extract": StandIn(100)})
    reports: list[str] = []
    supervisor = Supervisor(
        running,  # type: ignore[arg-type]
        report=reports.append,
        clock=lambda: running.now[0],
    )

    def advance_to(t: float) -> None:
        running.now[0] = t
        supervisor.tick()

    running.processes["extract"].returncode = -9
    advance_to(10)  # up 10 s, exited: first restart after 1 s
    assert running.restarted == [] and "extract exited (code -9)" in reports[-1]
    assert "restarting it in 1 s" in reports[-1]
    assert str(tmp_path / "logs" / "extract.log") in reports[-1]
    advance_to(10.5)
    assert running.restarted == []
    advance_to(11)
    assert running.restarted == [("extract", 11)]

    running.processes["extract"].returncode = 1  # crashes again at once: 2 s
    advance_to(11.5)
    advance_to(13.4)
    assert len(running.restarted) == 1
    advance_to(13.5)
    assert running.restarted[-1] == ("extract", 13.5)

    running.processes["extract"].returncode = 1  # and again: 4 s
    advance_to(14)
    assert "restarting it in 4 s" in reports[-1]
    advance_to(18)
    assert running.restarted[-1] == ("extract", 18)

    running.processes["extract"].returncode = 1  # after 100 s up: back to 1 s
    advance_to(118)
    assert "restarting it in 1 s" in reports[-1]
    advance_to(119)
    assert running.restarted[-1] == ("extract", 119)
    assert len(reports) == 4  # one report per exit, not per tick


def test_supervisor_leaves_running_processes_alone(tmp_path: Path) -> None:
    running = FakeDeployment(Settings(data_dir=tmp_path), {"api": StandIn(1), "beat": StandIn(2)})
    supervisor = Supervisor(running, report=lambda _: None, clock=lambda: running.now[0])  # type: ignore[arg-type]
    for t in range(100):
        running.now[0] = float(t)
        supervisor.tick()
    assert running.restarted == []


# Node names --------------------------------------------------------------------------------------------


def test_worker_command_names_the_node_after_its_host() -> None:
    default = worker_command("extract", 2)
    assert default[default.index("-n") + 1].endswith("@%h")
    assert default[default.index("--concurrency") + 1] == "2"
    named = worker_command("alert", 1, host="host-b")
    assert named[named.index("-n") + 1].startswith("alert.")
    assert named[named.index("-n") + 1].endswith("@host-b")
    assert named[named.index("-Q") + 1] == "alert"


# Health check -------------------------------------------------------------------------------------------


@pytest.fixture
def http_server() -> Iterator[tuple[int, list[str]]]:
    """A local HTTP server that answers 200 to every GET; yields its port and the paths asked."""
    paths: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            paths.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1], paths
    finally:
        server.shutdown()
        server.server_close()


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_healthcheck_passes_when_a_worker_serves_metrics(
    http_server: tuple[int, list[str]],
) -> None:
    port, paths = http_server
    settings = Settings(
        api_port=_closed_port(),
        metrics_host="0.0.0.0",
        metrics_port_ingest=0,
        metrics_port_extract=port,
        metrics_port_alert=_closed_port(),
    )
    assert healthcheck(settings, timeout_s=2) == 0
    assert paths == ["/metrics"]


def test_healthcheck_probes_the_api_health_endpoint(http_server: tuple[int, list[str]]) -> None:
    port, paths = http_server
    settings = Settings(
        api_port=port, metrics_port_ingest=0, metrics_port_extract=0, metrics_port_alert=0
    )
    assert healthcheck(settings, timeout_s=2) == 0
    assert paths == ["/healthz"]


def test_healthcheck_fails_when_nothing_answers() -> None:
    settings = Settings(
        api_port=_closed_port(),
        metrics_port_ingest=_closed_port(),
        metrics_port_extract=0,
        metrics_port_alert=_closed_port(),
    )
    assert healthcheck(settings, timeout_s=2) == 1


def test_sigterm_during_a_spawn_exits_only_after_the_child_is_recorded() -> None:
    """`deployment` turns SIGTERM into SystemExit; one arriving while a child process is being
    started must wait until the child is stored, or nothing would stop that child."""
    import os
    import signal
    import time

    from workers import runtime

    recorded: list[str] = []
    previous = signal.signal(signal.SIGTERM, runtime._exit_on_sigterm)
    try:
        with pytest.raises(SystemExit) as exited, runtime.sigterm_deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)  # Python runs the handler here, inside the block
            recorded.append("child")
        assert exited.value.code == 128 + signal.SIGTERM
        # A block that fails still exits: the SIGTERM is not lost with the error.
        with pytest.raises(SystemExit) as failed, runtime.sigterm_deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
            raise OSError("no such executable")
        assert isinstance(failed.value.__context__, OSError)
        # Outside such a block the exit is immediate, and nothing stays pending.
        with pytest.raises(SystemExit):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
            recorded.append("not reached")
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert recorded == ["child"]
    assert runtime._sigterm.deferring == 0 and runtime._sigterm.pending is None


# Pool children up ----------------------------------------------------------------------------------

_CHILD = """
import os, sys
from prometheus_client import multiprocess
from workers import metrics
metrics.WORKER_UP.labels(kind=sys.argv[1]).set(1)
if sys.argv[2] == "exits":
    multiprocess.mark_process_dead(os.getpid())  # what worker_process_shutdown does
"""


def test_children_up_counts_the_ready_children_of_one_kind(tmp_path: Path) -> None:
    import subprocess
    import sys

    from workers.metrics import children_up

    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    assert children_up(str(tmp_path / "not-yet")) == 0
    assert children_up(str(tmp_path)) == 0
    for kind, fate in [("extract", "stays"), ("extract", "stays"), ("extract", "exits")]:
        subprocess.run([sys.executable, "-c", _CHILD, kind, fate], env=env, check=True)
    assert children_up(str(tmp_path)) == 2


def test_children_up_reads_past_files_being_created_or_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A child creates its metrics file empty and then sizes it; one killed in between leaves
    the empty file behind, and a worker starting again empties the directory while it is read."""
    import subprocess
    import sys

    from workers.metrics import LiveFilesCollector, children_up

    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    subprocess.run([sys.executable, "-c", _CHILD, "ingest", "stays"], env=env, check=True)
    (tmp_path / "histogram_4242.db").touch()
    (tmp_path / "gauge_liveall_4242.db").touch()
    assert children_up(str(tmp_path)) == 1

    listed = LiveFilesCollector._complete_files
    listings = []

    def one_file_gone_the_first_time(self: LiveFilesCollector) -> list[str]:
        files = listed(self)
        listings.append(files)
        return [str(tmp_path / "counter_4243.db"), *files] if len(listings) == 1 else files

    monkeypatch.setattr(LiveFilesCollector, "_complete_files", one_file_gone_the_first_time)
    assert children_up(str(tmp_path)) == 1
    assert len(listings) == 2


_INIT = """
import sys
from workers import lifecycle
from workers.extract import tasks

def fail():
    raise RuntimeError("models missing")

tasks.extractor = fail if sys.argv[1] == "fails" else (lambda: None)
try:
    lifecycle.on_process_init()
except RuntimeError:
    pass
"""


@pytest.mark.parametrize(("loading", "up"), [("loads", 1), ("fails", 0)])
def test_an_extract_child_is_up_only_once_its_models_loaded(
    tmp_path: Path, loading: str, up: int
) -> None:
    import subprocess
    import sys

    from workers.metrics import children_up

    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PANTAU_WORKER_KIND": "extract"}
    subprocess.run([sys.executable, "-c", _INIT, loading], env=env, check=True)
    assert children_up(str(tmp_path)) == up
