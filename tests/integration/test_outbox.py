"""Nothing accepted is lost while Redis is down: the CLI and the API spool, then send."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient

from tests.conftest import SEED
from tests.integration.conftest import make_settings, make_token, wait_until
from workers.api.app import create_app
from workers.runtime import EmbeddedRedis, free_port
from workers.store import Store


def _queued(store: Store) -> int:
    return int(store.redis.llen(store.key("ingest")))


def test_api_spools_while_redis_is_down_and_sends_when_back(tmp_path: Path) -> None:
    port = free_port()
    server = EmbeddedRedis(tmp_path / "redis-data")
    server.start(port=port)
    settings = make_settings(server.url, tmp_path / "var")
    try:
        with TestClient(create_app(settings)) as client:
            client.headers.update(make_token(client.app.state.store))
            assert client.post("/v1/articles", json={"text": "Putin tiba."}).status_code == 202
            server.stop()
            down = client.post(
                "/v1/articles", json=[{"text": "Kim Jong Un tiba."}, {"text": "Choe tiba."}]
            )
            assert down.status_code == 202, down.text
            assert down.json()["spooled"] == 2
            assert list((tmp_path / "var" / "outbox").glob("*.jsonl"))
            server.start(port=port)
            store = client.app.state.store
            outbox = tmp_path / "var" / "outbox"
            # Done when the batch is counted and its file gone: the file is renamed (claimed)
            # before it is sent, so an empty `*.jsonl` glob alone would race the send.
            wait_until(
                lambda: store.counters()["accepted"] == 3 and not any(outbox.iterdir()),
                30,
                "the drain",
            )
            assert _queued(store) == 2  # the first batch + the spooled one, no worker consumes here
            assert store.counters()["accepted"] == 3
    finally:
        server.stop()


def test_cli_ingest_spools_then_next_ingest_sends(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PANTAU_")}
    env.update(
        PANTAU_REDIS_URL=f"redis://127.0.0.1:{port}/0",
        PANTAU_DATA_DIR=str(tmp_path / "var"),
        PANTAU_NAMESPACE="outbox-cli",
    )
    command = [sys.executable, "-m", "workers.cli", "ingest", str(SEED)]
    down = subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert down.returncode == 0, down.stderr
    assert "kept in" in down.stderr and json.loads(down.stdout.splitlines()[0])["id"]
    server = EmbeddedRedis(tmp_path / "redis-data")
    server.start(port=port)
    try:
        again = tmp_path / "again.json"
        again.write_text(json.dumps({"text": "Vladimir Putin berbicara di Moskow."}))
        up = subprocess.run(
            [*command[:-1], str(again)],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert up.returncode == 0, up.stderr
        store = Store.connect(
            server.url, make_settings(server.url, tmp_path, namespace="outbox-cli")
        )
        assert _queued(store) == 2 and store.counters()["accepted"] == 2
        assert not list((tmp_path / "var" / "outbox").glob("*.jsonl"))
    finally:
        server.stop()
