"""The push API against a real Redis and real workers: accepted articles go all the way through."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SEED
from tests.integration.conftest import Pipeline, make_settings, make_token, wait_until
from workers.api.app import create_app


@pytest.fixture(scope="module")
def client(pipeline: Pipeline) -> Iterator[TestClient]:
    with TestClient(create_app(pipeline.settings)) as test_client:
        test_client.headers.update(make_token(pipeline.store))
        yield test_client


def test_push_json_array_is_accepted_and_processed(client: TestClient, pipeline: Pipeline) -> None:
    body = [
        {"text": "Vladimir Putin menerima delegasi di Kremlin pada Rabu.", "url": "https://a.id/1"},
        {"text": "Xi Jinping berbicara di Beijing.", "title": "Xi"},
    ]
    response = client.post("/v1/articles", json=body)
    assert response.status_code == 202, response.text
    ids = response.json()["ids"]
    assert len(ids) == 2
    wait_until(lambda: all(pipeline.store.is_completed(i) for i in ids), 60, "pushed articles")


def test_push_ndjson_object_and_seed(client: TestClient, pipeline: Pipeline) -> None:
    lines = [
        json.dumps({"text": "Choe Son Hui tiba di Moskow.", "language": "id"}),
        json.dumps({"text": SEED.read_text(encoding="utf-8")[:500]}),
    ]
    response = client.post(
        "/v1/articles", content="\n".join(lines), headers={"content-type": "application/x-ndjson"}
    )
    assert response.status_code == 202 and response.json()["accepted"] == 2


@pytest.mark.parametrize(
    ("content", "content_type", "status", "fragment"),
    [
        (b'[{"text": "ok"}, {"title": "no text"}, 7]', "application/json", 400, "body[1]"),
        (b'{"text": ', "application/json", 400, "invalid JSON"),
        (b"plain words", "text/plain", 415, "text/plain"),
        (b"{}", "", 415, "missing"),
        (b'{"text": "' + b"x" * 20_000 + b'"}', "application/json", 413, "limit"),
        (b"\n".join([b'{"text": "a"}'] * 60), "application/x-ndjson", 413, "at most 50"),
        (b"[" * 4_000 + b"]" * 4_000, "application/json", 400, "nested"),
    ],
)
def test_push_bad_requests_get_clear_errors(
    pipeline: Pipeline,
    tmp_path: Path,
    content: bytes,
    content_type: str,
    status: int,
    fragment: str,
) -> None:
    settings = pipeline.settings.model_copy(
        update={"max_request_bytes": 10_000, "max_request_items": 50}
    )
    with TestClient(create_app(settings)) as small:
        small.headers.update(make_token(pipeline.store))
        response = small.post(
            "/v1/articles", content=content, headers={"content-type": content_type}
        )
    assert response.status_code == status, response.text
    assert fragment in json.dumps(response.json())


def test_push_backpressure_answers_503_with_retry_after(pipeline: Pipeline, tmp_path: Path) -> None:
    settings = make_settings(
        pipeline.store.settings.redis_url or "", tmp_path, extract_high_water=1
    )
    with TestClient(create_app(settings)) as busy:
        busy.headers.update(make_token(busy.app.state.store))
        queue = f"{settings.namespace}:extract"
        busy.app.state.store.redis.lpush(queue, "a", "b")
        try:
            response = busy.post("/v1/articles", json={"text": "Putin"})
        finally:
            busy.app.state.store.redis.delete(queue)
    assert response.status_code == 503 and response.headers["retry-after"] == "5"


def test_push_openapi_schema_is_served(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert "/v1/articles" in schema["paths"]


def test_push_without_token_is_refused(pipeline: Pipeline) -> None:
    with TestClient(create_app(pipeline.settings)) as anonymous:
        missing = anonymous.post("/v1/articles", json={"text": "Putin"})
        wrong = anonymous.post(
            "/v1/articles",
            json={"text": "Putin"},
            headers={"Authorization": "Bearer pt_0123456789abcdef_" + "a" * 43},
        )
        reader = anonymous.post(
            "/v1/articles", json={"text": "Putin"}, headers=make_token(pipeline.store, "read:all")
        )
    assert missing.status_code == 401 and "pantau token create" in missing.json()["detail"]
    assert wrong.status_code == 401
    assert reader.status_code == 403
