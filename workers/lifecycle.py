"""Worker process lifecycle: registration and heartbeat, /metrics per worker kind, model preload."""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import Any

from celery import signals
from prometheus_client import multiprocess

from workers import metrics, services
from workers.auth import install_redaction
from workers.settings import WORKER_KINDS

log = logging.getLogger(__name__)

_state: dict[str, Any] = {"kind": None, "nodename": None, "stop": threading.Event()}


def _kind_of(consumer_queues: list[str]) -> str:
    for name in consumer_queues:
        if name in WORKER_KINDS:
            return name
    return "ingest"


@signals.after_setup_logger.connect
@signals.after_setup_task_logger.connect
def on_setup_logging(**_: Any) -> None:
    """Tokens and secrets never reach a worker's log."""
    install_redaction()


@signals.worker_ready.connect
def on_worker_ready(sender: Any = None, **_: Any) -> None:
    """Register the worker's main process, start its heartbeat and its /metrics server."""
    queues = [q.name for q in sender.app.amqp.queues.consume_from.values()]
    kind = _kind_of(queues)
    nodename = sender.hostname
    _state.update(kind=kind, nodename=nodename)
    store = services.store()
    concurrency = int(getattr(sender.controller, "concurrency", None) or 1)
    store.register_worker(nodename, kind, os.getpid(), socket.gethostname(), concurrency)
    threading.Thread(target=_heartbeat, args=(nodename,), daemon=True, name="heartbeat").start()
    settings = services.settings()
    port = settings.metrics_port(kind)
    registry = metrics.multiprocess_registry()
    registry.register(
        metrics.QueueDepthCollector(
            store.queue_depths,
            lambda: {"unacked": store.unacked(), "dead_letter": store.dlq_depth()},
        )
    )
    if metrics.serve(port, registry, settings.metrics_host):
        log.info("%s worker metrics on :%d/metrics", kind, port)
    elif port:
        log.warning("%s worker metrics port %d is taken; not serving /metrics", kind, port)


def _heartbeat(nodename: str) -> None:
    from workers.store import WORKER_HEARTBEAT_S

    while not _state["stop"].wait(WORKER_HEARTBEAT_S):
        try:
            services.store().heartbeat(nodename)
        except Exception as err:  # Redis restarting: keep beating once it is back
            log.warning("heartbeat failed: %s", err)


@signals.worker_shutdown.connect
def on_worker_shutdown(**_: Any) -> None:
    """Stop the heartbeat and unregister (a killed worker simply stops heartbeating)."""
    _state["stop"].set()
    if _state["nodename"]:
        try:
            services.store().unregister_worker(_state["nodename"])
        except Exception as err:
            log.warning("could not unregister worker: %s", err)


@signals.worker_process_init.connect
def on_process_init(**_: Any) -> None:
    """In each pool child: load heavy resources before the first task, then mark the kind up.

    Up means ready: an extract child that is still loading its models (seconds) is not counted
    by `pantau_worker_up`, and `Deployment.wait_ready` waits for it.
    """
    kind = os.environ.get("PANTAU_WORKER_KIND", "")
    if kind == "extract":
        from workers.extract import tasks as extract_tasks

        extract_tasks.extractor()
    if kind in WORKER_KINDS:
        metrics.WORKER_UP.labels(kind=kind).set(1)


@signals.worker_process_shutdown.connect
def on_process_shutdown(pid: int | None = None, **_: Any) -> None:
    """Let prometheus-client drop the live gauges of a pool child that exits."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid or os.getpid())
