"""Alerts and their evidence: live stream (SSE, resumable), history, processed articles."""

# No `from __future__ import annotations` here: FastAPI resolves the Annotated dependencies
# (closures over the store) at run time.

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

import redis.asyncio as aioredis
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from sse_starlette.sse import EventSourceResponse, ServerSentEvent

from workers.alert.digest import render_alert
from workers.api.security import authenticate, require_reader
from workers.auth import TokenRecord
from workers.domain import Alert
from workers.store import Store

STREAM_BATCH = 100
PING_S = 15
BLOCK_MS = 5000


def _since_ms(since: str | None) -> int:
    if not since:
        return 0
    try:
        moment = datetime.fromisoformat(since.replace("Z", "+00:00"))
    except ValueError as err:
        raise HTTPException(400, f"since={since!r} is not an ISO 8601 time") from err
    return (
        int(moment.timestamp() * 1000)
        if moment.tzinfo
        else int(moment.replace(tzinfo=datetime.now().astimezone().tzinfo).timestamp() * 1000)
    )


def router(store: Store, redis_url: str) -> APIRouter:
    """Routes for alert streams, alert history and processed articles."""
    api = APIRouter()
    # Blocking reads wait up to BLOCK_MS; the socket timeout must be longer than that.
    reader = aioredis.Redis.from_url(
        redis_url, decode_responses=True, socket_timeout=BLOCK_MS / 1000 + 10
    )

    def authenticated(request: Request) -> TokenRecord:
        return authenticate(store, request)

    token = Depends(authenticated)

    @api.get(
        "/v1/alerts/stream", summary="Live alerts as Server-Sent Events (Last-Event-ID resumes)"
    )
    async def alert_stream(
        request: Request,
        record: Annotated[TokenRecord, token],
        actor: str | None = None,
        subscription: str | None = None,
    ) -> EventSourceResponse:
        require_reader(record, subscription)
        if subscription is not None and store.subscription(subscription) is None:
            raise HTTPException(404, f"no subscription {subscription!r}")
        stream = store.key("sub", subscription, "alerts") if subscription else store.key("alerts")
        last_id = request.headers.get("last-event-id") or "$"

        async def events() -> AsyncIterator[ServerSentEvent]:
            nonlocal last_id
            if last_id == "$":
                newest = await reader.xrevrange(stream, count=1)
                last_id = newest[0][0] if newest else "0-0"
            while not await request.is_disconnected():
                found = await reader.xread({stream: last_id}, count=STREAM_BATCH, block=BLOCK_MS)
                for _name, entries in found:
                    for entry_id, fields in entries:
                        last_id = entry_id
                        alert = Alert.model_validate_json(fields["alert"])
                        if actor and alert.actor_id != actor:
                            continue
                        payload: Any = (
                            render_alert(subscription, alert)
                            if subscription
                            else alert.model_dump()
                        )
                        yield ServerSentEvent(data=json.dumps(payload), event="alert", id=entry_id)
                await asyncio.sleep(0)

        return EventSourceResponse(events(), ping=PING_S)

    @api.get("/v1/alerts", summary="Alert history, newest first (bounded retention)")
    def alert_history(
        record: Annotated[TokenRecord, token],
        actor: str | None = None,
        subscription: str | None = None,
        since: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        require_reader(record, subscription)
        since_ms = _since_ms(since)
        if subscription:
            entries = store.read_subscription_alerts(subscription, f"{since_ms}-0")
            alerts = [a for _, a in reversed(entries) if not actor or a.actor_id == actor][:limit]
        else:
            alerts = [a for _, a in store.recent_alerts(actor, since_ms, limit)]
        return {"alerts": [a.model_dump() for a in alerts], "count": len(alerts)}

    @api.get("/v1/articles/{article_id}", summary="One processed article: entities, events, story")
    def article(article_id: str, record: Annotated[TokenRecord, token]) -> dict[str, Any]:
        require_reader(record, None)
        found = store.load_extractions([article_id])
        if not found:
            raise HTTPException(404, f"no processed article {article_id!r} (or past retention)")
        return found[0].model_dump()

    @api.get("/v1/articles", summary="Processed articles by actor and/or event type, newest first")
    def articles(
        record: Annotated[TokenRecord, token],
        actor: str | None = None,
        event: str | None = None,
        since: str | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> dict[str, Any]:
        require_reader(record, None)
        ids = store.find_articles(
            actor, event.upper() if event else None, _since_ms(since) / 1000, limit
        )
        found = store.load_extractions(ids)
        return {
            "articles": [
                e.model_dump(exclude={"text"}) | {"text_chars": len(e.text)} for e in found
            ],
            "count": len(found),
        }

    return api
