"""The docker-compose deployment, checked without Docker: every command resolves to a real command
of this version, every PANTAU_* variable is a setting, ports, volumes and scrape targets agree,
the image, and a Grafana dashboard whose queries name metrics that workers/metrics.py declares."""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
from collections.abc import Mapping
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from celery import Celery
from celery.bin.base import CLIContext
from celery.bin.celery import celery as celery_cli
from prometheus_client import Counter, Gauge, Histogram, Summary
from uvicorn.main import main as uvicorn_cli

from tests.conftest import ROOT
from workers import metrics, runtime
from workers.app import celery_config
from workers.cli import app as pantau_app
from workers.settings import WORKER_KINDS, Settings

COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PROMETHEUS = ROOT / "config" / "prometheus.yml"
GRAFANA = ROOT / "config" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "pantau.json"
WORKERS = {"ingest": 9101, "extract": 9102, "alert": 9103}
PANTAU_IMAGE = "pantau:local"
# Secrets a user puts in .env (the example leaves them empty on purpose).
SECRETS = {"REDIS_PASSWORD": "0123abcd", "GRAFANA_ADMIN_PASSWORD": "s3cret"}
PROMTOOL = shutil.which("promtool")


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


# Compose's variable interpolation (the subset this file may use) ---------------------------------

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


class MissingVariable(KeyError):
    """A `${VAR:?message}` whose variable is unset or empty: compose refuses to start."""


def _interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Substitute ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}, ${VAR?err} as compose does."""
    if isinstance(value, dict):
        return {k: _interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3) or ""
        current = env.get(name)
        if op == ":-":
            return current or arg
        if op == "-":
            return arg if current is None else current
        if op in (":?", "?") and (current is None or (op == ":?" and not current)):
            raise MissingVariable(f"{name}: {arg}")
        return current or ""

    return _VARIABLE.sub(substitute, value)


def _env_example() -> dict[str, tuple[str, bool]]:
    """Every variable .env.example mentions: name -> (value, set). Commented lines are defaults."""
    found: dict[str, tuple[str, bool]] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$", line.strip())
        if match:
            assert match.group(2) not in found, f"{match.group(2)} twice in .env.example"
            found[match.group(2)] = (match.group(3), match.group(1) is None)
    return found


def _example_env() -> dict[str, str]:
    """What compose sees after `cp .env.example .env` and setting the two passwords."""
    return {
        **{name: value for name, (value, is_set) in _env_example().items() if is_set},
        **SECRETS,
    }


@pytest.fixture(scope="module")
def raw_services() -> dict[str, Any]:
    return dict(_yaml(COMPOSE)["services"])


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    """The services as compose runs them with the example .env (passwords set)."""
    return dict(_interpolate(_yaml(COMPOSE), _example_env())["services"])


def _pantau_services(services: dict[str, Any]) -> dict[str, Any]:
    return {name: s for name, s in services.items() if s.get("image") == PANTAU_IMAGE}


def _command(service: dict[str, Any]) -> str:
    command = service.get("command", "")
    return " ".join(command) if isinstance(command, list) else str(command)


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def _settings_env_names() -> set[str]:
    """The environment variable of every Settings field, as pydantic-settings derives it."""
    prefix = Settings.model_config.get("env_prefix", "")
    assert Settings.model_config.get("case_sensitive") is False
    names = set()
    for name, field in Settings.model_fields.items():
        assert field.alias is None and field.validation_alias is None, name
        names.add(f"{prefix}{name}".upper())
    return names


# The image ----------------------------------------------------------------------------------------


def _dockerfile_json(instruction: str) -> list[str]:
    """The exec-form (JSON) argument of the last ENTRYPOINT / CMD / HEALTHCHECK ... CMD line."""
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [line for line in text.splitlines() if line.startswith(instruction)]
    assert lines, f"no {instruction} in the Dockerfile"
    return list(json.loads(lines[-1][lines[-1].index("[") :]))


def _argv(service: dict[str, Any]) -> list[str]:
    """The process a service's container runs: entrypoint + command, as Docker combines them."""
    entrypoint = service.get("entrypoint")
    command = service.get("command")
    if entrypoint is None:
        entrypoint = _dockerfile_json("ENTRYPOINT")
        if command is None:
            command = _dockerfile_json("CMD")
    for part in (entrypoint, command):
        assert part is None or isinstance(part, list), "use the exec (list) form"
    return [*(entrypoint or []), *(command or [])]


def test_dockerfile_installs_the_package_as_a_non_root_user() -> None:
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim AS build", dockerfile, re.M), "multi-stage"
    assert len(re.findall(r"^FROM ", dockerfile, re.M)) >= 2
    assert "pip wheel" in dockerfile and "pip install" in dockerfile
    assert re.search(r"^USER (?!root)", dockerfile, re.M), "the image runs as root"
    assert _dockerfile_json("ENTRYPOINT") == ["pantau"]


def test_dockerfile_healthcheck_runs_the_runtime_probe() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    assert re.search(r"^HEALTHCHECK .*--start-period=\d+s", text, re.M)
    python, flag, code = _dockerfile_json("HEALTHCHECK")[-3:]
    assert (python, flag) == ("python", "-c")
    compile(code, "<healthcheck>", "exec")
    assert "workers.runtime.healthcheck()" in code and callable(runtime.healthcheck)


def _excluded(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore patterns (Go filepath.Match plus `**`) exclude a path or a parent."""
    parts = path.split("/")
    excluded = False
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw.lstrip("!").strip("/")
        for depth in range(1, len(parts) + 1):
            prefix = "/".join(parts[:depth])
            hit = fnmatch.fnmatch(prefix, pattern) or (
                pattern.startswith("**/") and fnmatch.fnmatch(parts[depth - 1], pattern[3:])
            )
            if hit:
                excluded = not negate
                break
    return excluded


def test_dockerignore_keeps_the_package_models_and_data_and_drops_secrets() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    models = sorted((ROOT / "workers" / "extract" / "models").rglob("*"))
    assert any(p.name == "meta.json" for p in models), "no trained pipeline in the package"
    kept = [p.relative_to(ROOT).as_posix() for p in models if p.is_file()]
    kept += ["pyproject.toml", "README.md", "config/watchlist.yaml", "seeds", "workers/cli.py"]
    for path in kept:
        assert not _excluded(path, patterns), f".dockerignore excludes {path}"
    for path in (".env", ".git/config", ".venv/bin/python", "workers/__pycache__/x.pyc", "var"):
        assert _excluded(path, patterns), f".dockerignore lets {path} into the build context"
    copied = re.findall(r"^COPY (?!--from)(\S+)", DOCKERFILE.read_text(encoding="utf-8"), re.M)
    assert {"workers", "config", "seeds", "pyproject.toml"} <= set(copied)


# Services and their commands ------------------------------------------------------------------------


def test_every_service_is_there(services: dict[str, Any]) -> None:
    assert set(services) >= {"redis", *WORKERS, "beat", "api", "prometheus", "grafana"}
    assert set(_pantau_services(services)) == {*WORKERS, "beat", "api"}
    for kind in WORKERS:
        assert _argv(services[kind]) == ["pantau", "worker", kind]
    assert _argv(services["beat"])[:4] == ["celery", "-A", "workers.app", "beat"]
    assert _argv(services["api"])[:3] == ["uvicorn", "workers.api.app:create_app", "--factory"]
    assert services["redis"]["image"].startswith("redis:7")
    assert services["prometheus"]["image"].startswith("prom/prometheus")
    assert services["grafana"]["image"].startswith("grafana/grafana")


def _resolve(command: Any, argv: list[str], obj: Any = None) -> tuple[list[str], dict[str, Any]]:
    """Parse argv with a program's real click command tree, as it would at start-up (no run).

    Unknown subcommands, unknown options and bad option values raise, as they would in the
    container. Returns the subcommand path and the parsed parameters of the last one.
    """
    ctx = command.make_context(argv[0], list(argv[1:]), obj=obj)
    path = [argv[0]]
    while hasattr(command, "resolve_command"):  # a group: descend into the named subcommand
        name, command, rest = command.resolve_command(ctx, [*ctx._protected_args, *ctx.args])
        path.append(name)
        ctx = command.make_context(name, rest, parent=ctx)
    return path, dict(ctx.params)


def _service_settings(service: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings as a container of this service builds them from its environment."""
    import os

    for name in [n for n in os.environ if n.startswith("PANTAU_")]:
        monkeypatch.delenv(name)
    for name, value in _env(service).items():
        monkeypatch.setenv(name, value)
    return Settings()


def test_every_pantau_service_runs_a_real_command_of_this_version(
    services: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, service in _pantau_services(services).items():
        argv = _argv(service)
        settings = _service_settings(service, monkeypatch)
        if argv[0] == "pantau":
            path, params = _resolve(typer.main.get_command(pantau_app), argv)
            assert path == ["pantau", "worker"], (name, path)
            assert params["kind"] == name and name in WORKER_KINDS
        elif argv[0] == "celery":
            assert argv[1:3] == ["-A", "workers.app"], name
            target = import_module("workers.app").app
            assert isinstance(target, Celery)
            # Celery's option callbacks read the app's configuration: a private app with the
            # configuration this service's environment gives, so no global state is touched.
            private = Celery("compose-check", set_as_current=False)
            private.conf.update(celery_config(settings, str(settings.redis_url)))
            obj = CLIContext(app=private, no_color=True, workdir=None, quiet=True)
            path, params = _resolve(celery_cli, argv, obj=obj)
            assert path == ["celery", "beat"] and name == "beat", (name, path)
        elif argv[0] == "uvicorn":
            path, params = _resolve(uvicorn_cli, argv)
            module, _, attr = params["app"].partition(":")
            assert callable(getattr(import_module(module), attr)), params["app"]
            assert params["factory"] is True
            assert params["port"] == settings.api_port, "the health check probes api_port"
            assert name == "api"
        else:
            pytest.fail(f"{name} runs {argv[0]!r}: not a pantau, celery or uvicorn command")


def test_command_resolution_rejects_what_the_container_would_reject() -> None:
    pantau = typer.main.get_command(pantau_app)
    for argv in (["pantau", "wrker", "extract"], ["pantau", "worker", "extract", "--bogus"]):
        with pytest.raises(Exception, match=r"No such|no such"):
            _resolve(pantau, argv)
    private = Celery("compose-check", set_as_current=False)
    obj = CLIContext(app=private, no_color=True, workdir=None, quiet=True)
    with pytest.raises(Exception, match=r"No such command"):
        _resolve(celery_cli, ["celery", "-A", "workers.app", "beet"], obj=obj)
    with pytest.raises(Exception, match=r"No such option"):
        _resolve(uvicorn_cli, ["uvicorn", "workers.api.app:create_app", "--factori"])


def test_every_container_but_beat_has_a_health_check(raw_services: dict[str, Any]) -> None:
    for name, service in _pantau_services(raw_services).items():
        check = service.get("healthcheck", {})
        if name == "beat":
            assert check == {"disable": True}, "beat serves no endpoint to probe"
        else:
            assert not check.get("disable"), f"{name} must keep the image's HEALTHCHECK"


# Variables --------------------------------------------------------------------------------------------


def test_every_compose_variable_is_documented_in_env_example() -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    assert not re.search(r"\$(?![{$])", text), "use ${VAR}, not $VAR"
    used = set(_VARIABLE.findall(text))
    used_names = {name for name, _, _ in used}
    documented = set(_env_example())
    assert used_names == documented, (
        f"in compose only: {used_names - documented}; in .env.example only: "
        f"{documented - used_names}"
    )


def test_every_pantau_variable_is_a_setting() -> None:
    names = _settings_env_names()
    mentioned = set(re.findall(r"\bPANTAU_[A-Z0-9_]+", COMPOSE.read_text(encoding="utf-8")))
    mentioned |= {name for name in _env_example() if name.startswith("PANTAU_")}
    assert mentioned, "no PANTAU_* variable at all"
    assert mentioned <= names, f"not settings: {sorted(mentioned - names)}"


def test_compose_defaults_match_settings_and_env_example(raw_services: dict[str, Any]) -> None:
    example = _env_example()
    for name, value in _env(raw_services["extract"]).items():
        match = _VARIABLE.fullmatch(value)
        if not name.startswith("PANTAU_") or not match:
            continue
        variable, op, default = match.group(1), match.group(2), match.group(3) or ""
        assert variable == name and op == ":-", f"{name}: use ${{{name}:-default}}"
        assert example[name] == (default, False), f".env.example shows another default of {name}"
        field = name.removeprefix("PANTAU_").lower()
        parsed = Settings(**{field: default}).model_dump()[field]  # type: ignore[arg-type]
        assert parsed == Settings.model_fields[field].default, f"{name}: {default!r}"


def test_compose_refuses_to_start_without_the_passwords() -> None:
    config = _yaml(COMPOSE)
    example = {name: value for name, (value, is_set) in _env_example().items() if is_set}
    for secret in SECRETS:
        assert example.get(secret) == "", f".env.example must leave {secret} empty"
        with pytest.raises(MissingVariable, match=secret):
            _interpolate(config, {**example, **SECRETS, secret: ""})


def test_pantau_processes_share_redis_and_valid_settings(
    services: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, service in _pantau_services(services).items():
        settings = _service_settings(service, monkeypatch)
        assert settings.redis_url == f"redis://:{SECRETS['REDIS_PASSWORD']}@redis:6379/0", name
        assert settings.metrics_host == "0.0.0.0" and settings.data_dir == Path("/data"), name
        for kind, port in WORKERS.items():
            assert settings.metrics_port(kind) == port, "config/prometheus.yml scrapes this port"
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy", name
        assert services[name]["init"] is True, name


# Redis, ports, volumes ----------------------------------------------------------------------------------


def test_redis_requires_a_password_keeps_an_aof_and_never_evicts(
    raw_services: dict[str, Any], services: dict[str, Any]
) -> None:
    command = _command(raw_services["redis"])
    assert re.search(r"--requirepass \$\{REDIS_PASSWORD:\?[^}]*\}", command), command
    resolved = _command(services["redis"])
    for option in ("--appendonly yes", "--appendfsync everysec", "--maxmemory-policy noeviction"):
        assert option in resolved, option
    assert "ports" not in services["redis"], "Redis stays on the compose network"
    assert not services["redis"].get("network_mode"), "redis must stay on the compose network"


def test_published_ports_are_loopback_only(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def test_workers_scale(services: dict[str, Any]) -> None:
    """`docker compose up --scale KIND=N`: nothing in a worker service may be unique per host."""
    for kind in WORKERS:
        for key in ("container_name", "ports", "hostname"):
            assert key not in services[kind], f"{kind}: `{key}` prevents --scale"


def test_exposed_ports_match_the_settings() -> None:
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    exposed = {int(p) for p in re.findall(r"^EXPOSE (.+)$", dockerfile, re.M)[0].split()}
    defaults = Settings.model_fields
    assert exposed == {defaults["api_port"].default, *WORKERS.values()}
    for kind, port in WORKERS.items():
        assert defaults[f"metrics_port_{kind}"].default == port


def test_volumes_are_declared_and_used(services: dict[str, Any]) -> None:
    declared = set(_yaml(COMPOSE).get("volumes") or {})
    used: set[str] = set()
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume["source"]
            if source.startswith((".", "/")):
                assert (ROOT / source).resolve().exists(), f"{name} mounts missing {source}"
            else:
                used.add(source)
    assert used == declared, f"unused: {declared - used}; undeclared: {used - declared}"
    assert {"redis-data", "grafana-data"} <= declared
    assert any(v.startswith("redis-data:/data") for v in services["redis"]["volumes"])
    assert any(
        v.startswith("grafana-data:/var/lib/grafana") for v in services["grafana"]["volumes"]
    )
    api = services["api"]
    assert f"{_env(api)['PROMETHEUS_MULTIPROC_DIR']}:mode=1777" in api["tmpfs"]


# Prometheus -------------------------------------------------------------------------------------------------


def _scrape_targets() -> set[str]:
    targets: set[str] = set()
    for job in _yaml(PROMETHEUS)["scrape_configs"]:
        for static in job.get("static_configs", []):
            targets.update(static["targets"])
        for dns in job.get("dns_sd_configs", []):
            targets.update(f"{name}:{dns['port']}" for name in dns["names"])
    return targets


def test_prometheus_scrapes_every_pantau_service(services: dict[str, Any]) -> None:
    targets = _scrape_targets()
    api_port = int(_argv(services["api"])[_argv(services["api"]).index("--port") + 1])
    expected = {f"api:{api_port}", *(f"{kind}:{port}" for kind, port in WORKERS.items())}
    assert expected <= targets
    scraped = {target.split(":")[0] for target in targets}
    # Beat runs no task and serves no /metrics (workers/lifecycle.py starts the metrics server
    # on worker_ready, a worker signal); every other Pantau service is scraped.
    assert set(_pantau_services(services)) - scraped == {"beat"}
    assert scraped <= {*services, "localhost"}
    mounted = " ".join(services["prometheus"]["volumes"])
    assert "./config/prometheus.yml:/etc/prometheus/prometheus.yml" in mounted


@pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian's prometheus package) not installed")
def test_promtool_accepts_the_config() -> None:
    result = subprocess.run(
        [str(PROMTOOL), "check", "config", str(PROMETHEUS)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


# Grafana ------------------------------------------------------------------------------------------------


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
