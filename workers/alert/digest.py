"""Digest windows and the JSON messages subscriptions receive. Pure.

A digest covers the last complete UTC window: at 10:07 an hourly digest covers [09:00, 10:00)
and a daily one [yesterday 00:00, today 00:00). Windows are half-open, so an alert at exactly
10:00:00.000 belongs to the next one and none is counted twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from workers.alert.subscriptions import DigestEvery, Subscription
from workers.domain import Alert, short_hash

WINDOW_LENGTH: dict[str, timedelta] = {"hourly": timedelta(hours=1), "daily": timedelta(days=1)}
MAX_DIGEST_ALERTS = 500  # a bigger digest lists the newest 500 and says `truncated`


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    """An aware UTC datetime from the ISO 8601 text of a record (`...Z` or with an offset)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def digest_window(now: datetime, every: DigestEvery) -> tuple[datetime, datetime]:
    """The last complete hourly or daily UTC window ending at or before `now`, as (start, end).

    `now` must be timezone-aware (a naive datetime is ambiguous: ValueError).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    if every not in WINDOW_LENGTH:
        raise ValueError(f"digest_every must be 'hourly' or 'daily', not {every!r}")
    now = now.astimezone(UTC)
    if every == "hourly":
        end = now.replace(minute=0, second=0, microsecond=0)
    else:
        end = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return end - WINDOW_LENGTH[every], end


def digest_id(subscription_id: str, start: datetime, every: DigestEvery) -> str:
    """A stable id for one subscription's digest of one window (claim it to send exactly once)."""
    return "dig_" + short_hash("digest", subscription_id, every, _iso(start))


def alerts_in_window(alerts: Iterable[Alert], start: datetime, end: datetime) -> list[Alert]:
    """The alerts whose `alerted_at` lies in [start, end), each alert id once, oldest first."""
    unique: dict[str, tuple[datetime, Alert]] = {}
    for alert in alerts:
        moment = parse_time(alert.alerted_at)
        if start <= moment < end and alert.alert_id not in unique:
            unique[alert.alert_id] = (moment, alert)
    return [alert for _, alert in sorted(unique.values(), key=lambda pair: pair[0])]


def alert_item(alert: Alert) -> dict[str, Any]:
    """The part of an alert a subscriber sees (no spans: the snippet carries the evidence)."""
    return {
        "alert_id": alert.alert_id,
        "actor_id": alert.actor_id,
        "actor_name": alert.actor_name,
        "title": alert.title,
        "url": alert.url,
        "snippet": alert.snippet,
        "language": alert.language,
        "event_types": list(alert.event_types),
        "mentions": len(alert.spans),
        "story_id": alert.story_id,
        "article_id": alert.article_id,
        "alerted_at": alert.alerted_at,
    }


def render_alert(subscription_id: str, alert: Alert) -> dict[str, Any]:
    """The realtime message for one alert (type `alert.created`)."""
    return {
        "type": "alert.created",
        "subscription_id": subscription_id,
        "timestamp": alert.alerted_at,
        "alert": alert_item(alert),
    }


def render_digest(
    subscription: Subscription,
    alerts: Iterable[Alert],
    window: tuple[datetime, datetime] | None = None,
) -> dict[str, Any]:
    """One JSON message (type `alert.digest`) listing a window's alerts, oldest first.

    `window` is (start, end); without it, the last complete window before now. Alerts outside the
    window are left out and repeated alert ids listed once. `count` is every alert in the window;
    when it exceeds MAX_DIGEST_ALERTS only the newest are listed and `truncated` is true.
    """
    every: DigestEvery = subscription.digest_every or "hourly"
    start, end = window if window is not None else digest_window(datetime.now(UTC), every)
    selected = alerts_in_window(alerts, start, end)
    listed = selected[-MAX_DIGEST_ALERTS:]
    return {
        "type": "alert.digest",
        "subscription_id": subscription.id,
        "digest_id": digest_id(subscription.id, start, every),
        "timestamp": _iso(end),
        "window": {"every": every, "start": _iso(start), "end": _iso(end)},
        "count": len(selected),
        "truncated": len(listed) < len(selected),
        "alerts": [alert_item(alert) for alert in listed],
    }
