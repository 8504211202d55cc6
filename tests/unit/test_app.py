"""The Celery configuration: JSON only, late acks, routing by task name, one visibility timeout."""

from __future__ import annotations

from workers.app import TASK_ROUTES, celery_config
from workers.settings import Settings


def test_celery_config_reliability_settings() -> None:
    config = celery_config(Settings(namespace="t1"), "redis://127.0.0.1:1/0")
    assert config["accept_content"] == ["json"] and config["task_serializer"] == "json"
    assert config["task_acks_late"] and config["task_reject_on_worker_lost"]
    assert config["task_ignore_result"]
    assert config["task_time_limit"] < config["broker_transport_options"]["visibility_timeout"]
    assert config["broker_transport_options"]["global_keyprefix"] == "t1:"


def test_task_routes_by_stage_name() -> None:
    assert TASK_ROUTES["pantau.extract.*"] == {"queue": "extract"}
    assert set(TASK_ROUTES) == {"pantau.ingest.*", "pantau.extract.*", "pantau.alert.*"}
