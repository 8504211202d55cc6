"""Subscriptions and the watchlist over HTTP; every write needs an admin token."""

# No `from __future__ import annotations` here: FastAPI resolves the Annotated dependencies
# (closures over the store) at run time.

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Response
from pydantic import ValidationError

from workers.alert.subscriptions import Subscription, SubscriptionIn
from workers.alert.watchlist import Actor
from workers.api.security import READ_ALL, requires
from workers.auth import TokenRecord, new_token
from workers.ingest.urls import OutboundPolicy
from workers.settings import Settings
from workers.store import Store
from workers.watchlist_source import WatchlistSource


def create_subscription(
    store: Store, data: SubscriptionIn, policy: OutboundPolicy
) -> dict[str, Any]:
    """Store a new subscription and a token scoped to it; the secret and token are shown once."""
    if data.webhook_url:
        policy.check(data.webhook_url)
    subscription = Subscription.create(data)
    _, token = new_token()
    store.save_token(
        TokenRecord.for_token(
            token, [f"subscription:{subscription.id}"], note=f"reader of {subscription.id}"
        )
    )
    store.save_subscription(subscription)
    return {
        **subscription.public(),
        "id": subscription.id,
        "secret": subscription.secret,
        "token": token,
    }


def router(store: Store, settings: Settings) -> APIRouter:
    """Routes for subscriptions and the watchlist."""
    api = APIRouter()
    admin = Depends(requires(store, "admin"))
    reader = Depends(requires(store, READ_ALL))
    policy = OutboundPolicy.from_setting(settings.outbound_allowlist)
    source = WatchlistSource.from_settings(settings, store, check_every_s=0)

    @api.post(
        "/v1/subscriptions",
        status_code=201,
        summary="Create a subscription",
        responses={400: {"description": "webhook target refused"}},
    )
    def post_subscription(data: SubscriptionIn, _: Annotated[TokenRecord, admin]) -> dict[str, Any]:
        try:
            return create_subscription(store, data, policy)
        except Exception as error:  # the SSRF guard's InputError names the URL and reason
            raise HTTPException(400, str(error)) from error

    @api.get("/v1/subscriptions", summary="List subscriptions (secrets not shown)")
    def list_subscriptions(_: Annotated[TokenRecord, admin]) -> dict[str, Any]:
        return {"subscriptions": [s.public() for s in store.subscriptions()]}

    @api.get("/v1/subscriptions/{subscription_id}", summary="One subscription")
    def get_subscription(subscription_id: str, _: Annotated[TokenRecord, admin]) -> dict[str, Any]:
        found = store.subscription(subscription_id)
        if found is None:
            raise HTTPException(404, f"no subscription {subscription_id!r}")
        return found.public()

    @api.delete("/v1/subscriptions/{subscription_id}", status_code=204, summary="Delete one")
    def delete_subscription(subscription_id: str, _: Annotated[TokenRecord, admin]) -> Response:
        if not store.delete_subscription(subscription_id):
            raise HTTPException(404, f"no subscription {subscription_id!r}")
        return Response(status_code=204)

    @api.get("/v1/watchlist", summary="The watched actors (file + API changes)")
    def get_watchlist(_: Annotated[TokenRecord, reader]) -> dict[str, Any]:
        return source.current().model_dump()

    @api.put("/v1/watchlist/{actor_id}", summary="Add or replace a watched actor")
    def put_actor(
        actor_id: str, _: Annotated[TokenRecord, admin], actor: Annotated[dict[str, Any], Body()]
    ) -> dict[str, Any]:
        try:
            parsed = Actor.model_validate({**actor, "id": actor_id})
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "actor"
            raise HTTPException(400, f"{where}: {first['msg']}") from error
        store.put_actor(parsed)
        return parsed.model_dump()

    @api.delete("/v1/watchlist/{actor_id}", status_code=204, summary="Stop watching an actor")
    def delete_actor(actor_id: str, _: Annotated[TokenRecord, admin]) -> Response:
        if source.current().get(actor_id) is None:
            raise HTTPException(404, f"actor {actor_id!r} is not watched")
        store.delete_actor(actor_id)
        return Response(status_code=204)

    return api
