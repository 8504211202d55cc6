"""Bearer-token checks for the API: hashed tokens in Redis, constant-time comparison, 401 vs 403."""

from __future__ import annotations

import time
from collections.abc import Callable

import redis
from fastapi import HTTPException, Request

from workers.auth import TokenRecord, parse_bearer, token_id, verify_token
from workers.store import Store

READ_ALL = "read:all"


# Tokens verified recently still work while Redis is unreachable, so the push API can spool.
_verified: dict[str, tuple[TokenRecord, float]] = {}
OFFLINE_GRACE_S = 600


def _lookup(store: Store, identifier: str) -> TokenRecord | None:
    try:
        record = store.token(identifier)
    except redis.RedisError as error:
        cached = _verified.get(identifier)
        if cached and time.monotonic() - cached[1] < OFFLINE_GRACE_S:
            return cached[0]
        raise HTTPException(
            503,
            "cannot check the token: Redis is unreachable; retry later",
            headers={"Retry-After": "5"},
        ) from error
    if record is not None:
        _verified[identifier] = (record, time.monotonic())
    else:
        _verified.pop(identifier, None)
    return record


def authenticate(store: Store, request: Request) -> TokenRecord:
    """The token record behind the request's bearer token (or `?token=` for EventSource); 401."""
    token = parse_bearer(request.headers.get("authorization"))
    if token is None and "token" in request.query_params:
        token = parse_bearer(f"Bearer {request.query_params['token']}")
    if token is None:
        raise HTTPException(
            401,
            "missing or malformed token: send 'Authorization: Bearer pt_...' "
            "(create one with `pantau token create`)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    identifier = token_id(token)
    record = _lookup(store, identifier) if identifier else None
    if record is None or not verify_token(token, record.hash):
        raise HTTPException(401, "unknown or revoked token", headers={"WWW-Authenticate": "Bearer"})
    return record


def requires(store: Store, scope: str) -> Callable[[Request], TokenRecord]:
    """A FastAPI dependency: a valid token that grants `scope` (admin grants all); else 401/403."""

    def check(request: Request) -> TokenRecord:
        record = authenticate(store, request)
        if not record.allows(scope):
            raise HTTPException(403, f"this token does not grant {scope!r}")
        return record

    return check


def require_reader(record: TokenRecord, subscription: str | None) -> None:
    """Readers of one subscription need its scope; readers of everything need read:all."""
    if subscription is not None and record.allows_subscription(subscription):
        return
    if record.allows(READ_ALL):
        return
    wanted = f"subscription:{subscription}" if subscription else READ_ALL
    raise HTTPException(403, f"this token does not grant {wanted!r}")
