"""The dead-letter stream: failed messages with their reason, listed and replayed by `pantau dlq`."""

from __future__ import annotations

import json
from typing import Any

from workers.store import Store


def article_ids_in(args: list[Any]) -> list[str]:
    """The article ids a stage task's arguments name: a list of ids, or of records with an id."""
    ids: list[str] = []
    for arg in args:
        if not isinstance(arg, list):
            continue
        for item in arg:
            if isinstance(item, str):
                ids.append(item)
            elif isinstance(item, dict) and isinstance(item.get("id"), str):
                ids.append(item["id"])
    return ids


def dead_letter(
    store: Store,
    *,
    task: str,
    stage: str,
    args: list[Any],
    kwargs: dict[str, Any],
    error: str,
    traceback: str,
    task_id: str,
    retries: int,
) -> str:
    """Append one failed message to the stream and count its articles as dead-lettered once."""
    ids = article_ids_in(args)
    entry_id = store.dead_letter(
        {
            "task": task,
            "stage": stage,
            "args": json.dumps(args),
            "kwargs": json.dumps(kwargs),
            "error": error[:2000],
            "traceback": traceback[-8000:],
            "task_id": task_id,
            "retries": str(retries),
            "article_ids": json.dumps(ids),
        }
    )
    store.count_once("dead_lettered", ids)
    store.settle(ids)
    if kwargs.get("batch_id"):  # an ingest batch: the dead letter is its copy now
        store.release_batch(str(kwargs["batch_id"]))
    store.count(f"failed:{stage}")
    return entry_id


def replay(store: Store, send_task: Any, entry_ids: list[str] | None = None) -> int:
    """Send dead-lettered messages to their task again and remove them from the stream."""
    replayed = 0
    for entry_id, fields in store.dead_letters(count=100_000):
        if entry_ids and entry_id not in entry_ids:
            continue
        send_task(
            fields["task"],
            args=json.loads(fields["args"]),
            kwargs=json.loads(fields.get("kwargs") or "{}"),
        )
        for article_id in json.loads(fields.get("article_ids") or "[]"):
            store.redis.delete(store.key("once", "dead_lettered", article_id))
        store.redis.xdel(store.key("dlq"), entry_id)
        replayed += 1
    return replayed
