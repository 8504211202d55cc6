"""The only Celery object: queues, routing and the reliability settings of the pipeline."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from celery import Celery, Task, signals
from celery.exceptions import Reject
from kombu import Queue

from workers.settings import WORKER_KINDS, Settings

QUEUES = WORKER_KINDS
# How many messages each worker process reserves ahead. Extraction batches are heavy (one
# batch is seconds of CPU), so a process holds one; ingest and alert tasks are short.
PREFETCH = {"ingest": 4, "extract": 1, "alert": 4}
# Stage tasks are named pantau.<stage>.<verb>; routing by name prefix sends each to its queue.
TASK_ROUTES = {f"pantau.{queue}.*": {"queue": queue} for queue in QUEUES}


def celery_config(settings: Settings, broker_url: str) -> dict[str, Any]:
    """Celery settings for the pipeline; the visibility timeout is the one used everywhere."""
    transport = {
        # An unacked message is redelivered after this long; it must exceed the longest task.
        "visibility_timeout": settings.visibility_timeout_s,
        "socket_timeout": 30,
        "socket_connect_timeout": 10,
        "health_check_interval": 25,
        # Celery's queue, unacked and pidbox keys share the namespace of Pantau's own keys.
        "global_keyprefix": f"{settings.namespace}:",
    }
    return {
        "broker_url": broker_url,
        "broker_transport_options": transport,
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        "result_backend": None,
        "task_ignore_result": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,
        # A hard limit below the visibility timeout: a stuck task dies before Redis redelivers it.
        "task_time_limit": settings.visibility_timeout_s // 2,
        "task_soft_time_limit": settings.visibility_timeout_s // 2 - 10,
        "task_routes": TASK_ROUTES,
        "task_queues": [Queue(name) for name in QUEUES],
        "task_default_queue": "ingest",
        "task_publish_retry": True,
        "task_publish_retry_policy": {
            "max_retries": 30,
            "interval_start": 0.2,
            "interval_step": 0.5,
            "interval_max": 2.0,
        },
        "task_send_sent_event": True,
        "worker_send_task_events": True,
        "worker_hijack_root_logger": False,
        "worker_redirect_stdouts": False,
        # A pool child loads the spaCy pipelines in worker_process_init (seconds); with the
        # default 4 s the main process kills every replacement child of a dead one, forever.
        "worker_proc_alive_timeout": 120.0,
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "broker_channel_error_retry": True,
        "timezone": "UTC",
        "beat_schedule": {
            "poll-feeds": {"task": "pantau.ingest.poll_feeds", "schedule": settings.feed_tick_s},
            "send-digests": {"task": "pantau.alert.send_digests", "schedule": 60.0},
            "reconcile": {"task": "pantau.ingest.reconcile", "schedule": 60.0},
        },
        "beat_schedule_filename": str(settings.data_dir / "celerybeat-schedule"),
    }


_explicit: dict[str, Any] = {}


def _lazy_config() -> dict[str, Any]:
    """Built when Celery first needs its configuration (worker start, first send)."""
    from workers.runtime import resolve_redis_url

    if _explicit:
        return celery_config(_explicit["settings"], _explicit["broker_url"])
    settings = Settings()
    return celery_config(settings, resolve_redis_url(settings))


def _worker_process_defaults(argv: list[str]) -> None:
    """For a bare `celery -A workers.app worker -Q KIND`: the kind and its metrics directory.

    prometheus-client picks its multiprocess mode when first imported, so this must run before
    workers.metrics is imported; `pantau worker` sets both variables itself.
    """
    if "worker" not in argv or "-Q" not in argv[:-1]:
        return
    kind = argv[argv.index("-Q") + 1].split(",")[0]
    os.environ.setdefault("PANTAU_WORKER_KIND", kind)
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        data_dir = Path(os.environ.get("PANTAU_DATA_DIR", "var"))
        metrics_dir = (data_dir / "metrics" / kind).resolve()
        metrics_dir.mkdir(parents=True, exist_ok=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)


class PantauTask(Task):
    """Base of every stage task: a final failure goes to the dead-letter stream with its reason."""

    abstract = True
    stage = "ingest"

    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        """Dead-letter the message: task, arguments, error, traceback; count its articles."""
        from workers import metrics, services
        from workers.dlq import dead_letter

        dead_letter(
            services.store(),
            task=self.name,
            stage=self.stage,
            args=list(args),
            kwargs=dict(kwargs),
            error=f"{type(exc).__name__}: {exc}",
            traceback=str(einfo),
            task_id=task_id,
            retries=self.request.retries,
        )
        metrics.ARTICLES.labels(stage=self.stage, outcome="dead_lettered").inc()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Count this message's deliveries (Redis keeps no count); past the limit, dead-letter it.

        A message whose worker dies every time (segfault, OOM kill) is redelivered forever
        under acks_late; this is where that loop ends.
        """
        from workers import metrics, services
        from workers.dlq import dead_letter

        request = self.request
        if request.id and not request.called_directly:
            store = services.store()
            deliveries, counted = store.count_delivery(request.id, request.retries)
            request.pantau_deliveries = deliveries  # the extract stage isolates hard crashes by it
            if deliveries > 1:
                metrics.REDELIVERIES.labels(stage=self.stage).inc()
            limit = services.settings().max_deliveries
            if counted > limit:
                dead_letter(
                    store,
                    task=self.name,
                    stage=self.stage,
                    args=list(args),
                    kwargs=dict(kwargs),
                    task_id=request.id,
                    retries=request.retries,
                    error=f"delivered {counted} times without finishing (limit {limit}): "
                    "the worker died on it each time",
                    traceback="",
                )
                metrics.ARTICLES.labels(stage=self.stage, outcome="dead_lettered").inc()
                return None
        items = args[0] if args and isinstance(args[0], list) else [None]
        metrics.ITEMS_IN.labels(stage=self.stage).inc(len(items))
        with metrics.IN_PROGRESS.labels(stage=self.stage).track_inprogress():
            return super().__call__(*args, **kwargs)

    def retry(self, *args: Any, **kwargs: Any) -> Any:
        """Celery's retry, except that a retry message that cannot be published requeues.

        Celery rejects the message without requeue when publishing the retry fails (e.g. the
        broker went away mid-task), which under acks_late drops it with no dead letter.
        """
        try:
            return super().retry(*args, **kwargs)
        except Reject as reject:
            if reject.requeue:
                raise
            raise Reject(reject.reason, requeue=True) from reject

    def on_retry(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        """Count the retry."""
        from workers import metrics

        metrics.TASK_RETRIES.labels(stage=self.stage).inc()


_worker_process_defaults(sys.argv)

app = Celery(
    "pantau",
    task_cls=PantauTask,
    include=["workers.ingest.tasks", "workers.extract.tasks", "workers.alert.tasks"],
)
app.add_defaults(_lazy_config)

# Worker process lifecycle (metrics server, registration, heartbeats) hooks in on import.
import workers.lifecycle  # noqa: E402,F401


@signals.before_task_publish.connect
def _stamp_sent_at(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """Stamp every message with its publish time, so `pantau status` can age the oldest one."""
    if headers is not None:
        headers.setdefault("pantau_sent_at", time.time())


def configure(settings: Settings, broker_url: str) -> None:
    """Point this process's Celery app at a broker now (CLI processes that start their own)."""
    _explicit.update(settings=settings, broker_url=broker_url)
    app.conf.update(celery_config(settings, broker_url))
    # The broker connection pool is built on first publish and would keep the old broker and
    # key prefix: drop it (and the producer pool on top of it) so the next publish uses these.
    app._pool = None
    amqp = app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None
