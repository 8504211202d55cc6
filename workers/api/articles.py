"""The push API: POST /v1/articles takes a JSON object, a JSON array, or NDJSON."""

from __future__ import annotations

from typing import Any

import redis
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from workers.domain import RawArticle
from workers.errors import InputError
from workers.ingest.normalise import normalise
from workers.ingest.sources import ParseResult, decode, parse_json, parse_jsonl
from workers.ingest.tasks import SpoolFull, publish
from workers.outbox import Outbox
from workers.settings import Settings
from workers.store import Store

JSON_TYPES = {"application/json"}
NDJSON_TYPES = {
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/jsonlines",
    "application/json-seq",
}
RETRY_AFTER_S = 5
_ARTICLE = RawArticle.model_json_schema()


def _problem(
    status: int,
    message: str,
    errors: list[str] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"error": message}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers)


async def read_limited(request: Request, limit: int) -> bytes | None:
    """The request body, or None as soon as it exceeds `limit` bytes (never buffered past it)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def router(store: Store, settings: Settings, outbox: Outbox) -> APIRouter:
    """Routes of the push API."""
    api = APIRouter()

    @api.post(
        "/v1/articles",
        status_code=202,
        summary="Push articles (JSON object, array, or NDJSON)",
        responses={
            400: {"description": "invalid items, one message each"},
            413: {"description": "body or item count above the limit"},
            415: {"description": "not JSON or NDJSON"},
            503: {"description": "extract queue above its high-water mark; retry later"},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "oneOf": [
                                _ARTICLE,
                                {
                                    "type": "array",
                                    "items": _ARTICLE,
                                },
                            ]
                        }
                    },
                    "application/x-ndjson": {"schema": {"type": "string"}},
                },
            }
        },
    )
    async def push_articles(request: Request) -> JSONResponse:
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type not in JSON_TYPES | NDJSON_TYPES:
            return _problem(
                415,
                f"content type {media_type or 'missing'!r} not accepted: "
                "send application/json or application/x-ndjson",
            )
        try:
            depth = store.queue_depths()["extract"]
        except redis.RedisError:
            depth = 0  # Redis is down: the outbox takes the articles, no queue to protect
        if depth > settings.extract_high_water:
            return _problem(
                503,
                f"extract queue holds {depth} batches (high-water mark "
                f"{settings.extract_high_water}); retry later",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        body = await read_limited(request, settings.max_request_bytes)
        if body is None:
            return _problem(413, f"body above the {settings.max_request_bytes} byte limit")
        try:
            text = decode(body, "body", [])
            parsed: ParseResult = (
                parse_jsonl(text, "body")
                if media_type in NDJSON_TYPES
                else parse_json(text, "body")
            )
        except InputError as error:
            return _problem(400, str(error))
        if len(parsed.records) + len(parsed.problems) > settings.max_request_items:
            return _problem(
                413,
                f"{len(parsed.records) + len(parsed.problems)} items; at most "
                f"{settings.max_request_items} per request",
            )
        errors = list(parsed.problems)
        articles = []
        for index, record in enumerate(parsed.records):
            try:
                articles.append(
                    normalise(record, max_chars=settings.max_article_chars, source=f"body[{index}]")
                )
            except InputError as error:
                errors.append(str(error))
        if errors:
            return _problem(400, f"{len(errors)} invalid item(s); nothing was accepted", errors)
        if not articles:
            return _problem(400, "no article in the body")
        try:
            _sent, spooled = publish(articles, outbox, store)
        except SpoolFull as error:
            return _problem(503, str(error), headers={"Retry-After": str(RETRY_AFTER_S)})
        return JSONResponse(
            {"accepted": len(articles), "ids": [a.id for a in articles], "spooled": spooled},
            status_code=202,
        )

    return api
