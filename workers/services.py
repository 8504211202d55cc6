"""Per-process singletons of the worker shell: settings and the Redis store, built once on first use."""

from __future__ import annotations

from functools import cache

from workers.runtime import resolve_redis_url
from workers.settings import Settings
from workers.store import Store


@cache
def settings() -> Settings:
    """This process's Settings (read from PANTAU_* once)."""
    return Settings()


@cache
def store() -> Store:
    """This process's connection to the deployment's Redis."""
    current = settings()
    return Store.connect(resolve_redis_url(current), current)
