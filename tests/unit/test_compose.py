"""The docker-compose deployment, checked without Docker: services, Redis exposure, scrape
targets, and a Grafana dashboard whose queries name metrics that workers/metrics.py declares."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import Counter, Gauge, Histogram, Summary

from tests.conftest import ROOT
from workers import metrics
from workers.settings import Settings

COMPOSE = ROOT / "docker-compose.yml"
PROMETHEUS = ROOT / "config" / "prometheus.yml"
GRAFANA = ROOT / "config" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "pantau.json"
WORKERS = {"ingest": 9101, "extract": 9102, "alert": 9103}
PROMTOOL = shutil.which("promtool")


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    return dict(_yaml(COMPOSE)["services"])


def _command(service: dict[str, Any]) -> str:
    command = service.get("command", "")
    return " ".join(command) if isinstance(command, list) else str(command)


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def test_every_service_is_there(services: dict[str, Any]) -> None:
    assert set(services) >= {"redis", *WORKERS, "beat", "api", "prometheus", "grafana"}
    for kind in WORKERS:
        assert _command(services[kind]) == f"pantau worker {kind}"
    assert "celery -A workers.app beat" in _command(services["beat"])
    assert "uvicorn workers.api.app:create_app --factory --host 0.0.0.0 --port 8000" in _command(
        services["api"]
    )
    assert services["redis"]["image"].startswith("redis:7")
    assert services["prometheus"]["image"].startswith("prom/prometheus")
    assert services["grafana"]["image"].startswith("grafana/grafana")


def test_pantau_processes_share_redis_and_serve_metrics_on_all_interfaces(
    services: dict[str, Any],
) -> None:
    for name in (*WORKERS, "beat", "api"):
        env = _env(services[name])
        assert env["PANTAU_REDIS_URL"].startswith("redis://:${PANTAU_REDIS_PASSWORD"), name
        assert env["PANTAU_REDIS_URL"].endswith("@redis:6379/0"), name
        assert env["PANTAU_METRICS_HOST"] == "0.0.0.0", name
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy", name


def test_redis_requires_a_password_and_is_not_published(services: dict[str, Any]) -> None:
    redis = services["redis"]
    command = _command(redis)
    assert re.search(r"--requirepass \$\{PANTAU_REDIS_PASSWORD:\?[^}]*\}", command), command
    assert "--appendonly yes" in command
    for port in redis.get("ports", []):
        spec = port if isinstance(port, str) else f"{port.get('host_ip', '')}:{port['published']}"
        assert spec.startswith("127.0.0.1:"), f"redis published beyond loopback: {port}"
    assert not redis.get("network_mode"), "redis must stay on the compose network"


def test_published_ports_are_loopback_only(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def test_prometheus_scrapes_every_pantau_process(services: dict[str, Any]) -> None:
    config = _yaml(PROMETHEUS)
    targets: set[str] = set()
    for job in config["scrape_configs"]:
        for static in job.get("static_configs", []):
            targets.update(static["targets"])
        for dns in job.get("dns_sd_configs", []):
            targets.update(f"{name}:{dns['port']}" for name in dns["names"])
    assert "api:8000" in targets
    for kind, port in WORKERS.items():
        assert f"{kind}:{port}" in targets
        # the port a worker of this kind serves by default
        assert Settings.model_fields[f"metrics_port_{kind}"].default == port
    assert all(host.split(":")[0] in {*services, "localhost"} for host in targets)
    mounted = " ".join(services["prometheus"]["volumes"])
    assert "./config/prometheus.yml:/etc/prometheus/prometheus.yml" in mounted


@pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian's prometheus package) not installed")
def test_promtool_accepts_the_config() -> None:
    result = subprocess.run(
        [str(PROMTOOL), "check", "config", str(PROMETHEUS)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _declared_metric_names() -> set[str]:
    """Every series name workers/metrics.py can export."""
    names: set[str] = set()
    for value in vars(metrics).values():
        if isinstance(value, Counter):
            names |= {f"{value._name}_total", f"{value._name}_created"}
        elif isinstance(value, Histogram):
            names |= {f"{value._name}_{s}" for s in ("bucket", "sum", "count", "created")}
        elif isinstance(value, Summary):
            names |= {value._name, f"{value._name}_sum", f"{value._name}_count"}
        elif isinstance(value, Gauge):
            names.add(value._name)
    # Families built at scrape time (QueueDepthCollector) are declared as string literals.
    source = Path(metrics.__file__).read_text(encoding="utf-8")
    names |= set(re.findall(r'GaugeMetricFamily\(\s*"(pantau_\w+)"', source))
    return names


def _panels() -> list[dict[str, Any]]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    panels: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))  # collapsed rows
    return panels


def test_grafana_dashboard_queries_declared_metrics() -> None:
    declared = _declared_metric_names()
    assert {"pantau_articles_total", "pantau_queue_depth", "pantau_worker_up"} <= declared
    exprs = [t["expr"] for p in _panels() for t in p.get("targets", [])]
    assert exprs and all(exprs)
    for expr in exprs:
        used = set(re.findall(r"\bpantau_\w+", expr))
        assert used, f"no Pantau metric in {expr!r}"
        assert used <= declared, f"{expr!r} names undeclared {used - declared}"
    wanted = [
        'sum by (stage) (rate(pantau_articles_total{outcome="ok"}[1m]))',
        "pantau_ingest_to_alert_seconds_bucket",
        "pantau_queue_depth",
        "pantau_alerts_total",
        'pantau_articles_total{outcome=~"failed|dead_lettered"}',
        "pantau_dead_letter_depth",
        "pantau_task_retries_total",
        "pantau_stage_last_success_timestamp_seconds",
        "pantau_worker_up",
    ]
    for fragment in wanted:
        assert any(fragment in expr for expr in exprs), f"no panel uses {fragment}"


def test_grafana_dashboard_is_well_formed() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["uid"] and dashboard["title"] == "Pantau"
    ids = [p["id"] for p in _panels()]
    assert len(ids) == len(set(ids))
    datasource = _yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")
    (source,) = datasource["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    for panel in _panels():
        assert panel["datasource"]["uid"] == source["uid"], panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
    provider = _yaml(GRAFANA / "provisioning" / "dashboards" / "pantau.yml")
    path = provider["providers"][0]["options"]["path"]
    services = _yaml(COMPOSE)["services"]
    assert f"./config/grafana/dashboards:{path}:ro" in services["grafana"]["volumes"]
    assert (
        "./config/grafana/provisioning:/etc/grafana/provisioning:ro"
        in services["grafana"]["volumes"]
    )


@pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian's prometheus package) not installed")
def test_promtool_parses_every_dashboard_query(tmp_path: Path) -> None:
    exprs = [t["expr"] for p in _panels() for t in p.get("targets", [])]
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [{"record": f"pantau:panel_{i}", "expr": e} for i, e in enumerate(exprs)],
            }
        ]
    }
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(rules))
    result = subprocess.run(
        [str(PROMTOOL), "check", "rules", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_installs_the_package() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim", dockerfile, re.M)
    assert "pip wheel" in dockerfile and "pip install" in dockerfile
    assert re.search(r"^USER (?!root)", dockerfile, re.M), "the image runs as root"
