"""Digest windows (UTC, half-open) and the digest and realtime messages."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from workers.alert import digest as digest_module
from workers.alert.digest import (
    alerts_in_window,
    digest_id,
    digest_window,
    render_alert,
    render_digest,
)
from workers.alert.subscriptions import Subscription, SubscriptionIn
from workers.domain import Alert, Span

SUB = Subscription.create(
    SubscriptionIn(actors_any=["xi"], mode="digest", digest_every="hourly", channel="sse"),
    id="sub_1",
)


def _alert(n: int, alerted_at: str, actor_id: str = "xi") -> Alert:
    return Alert(
        alert_id=f"al{n}",
        article_id=f"a{n}",
        story_id=f"s{n}",
        actor_id=actor_id,
        actor_name="Xi Jinping",
        spans=[Span(text="Xi", start=0, end=2)],
        snippet=f"Xi in story {n}",
        language="en",
        title=f"Title {n}",
        url=f"https://news.example/{n}",
        event_types=["AGREE"],
        ingested_at=alerted_at,
        alerted_at=alerted_at,
    )


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_digest_window_hourly_is_last_complete_hour() -> None:
    assert digest_window(_utc("2026-11-26 10:07:30"), "hourly") == (
        _utc("2026-11-26 09:00"),
        _utc("2026-11-26 10:00"),
    )
    # Exactly on the boundary: the hour that just ended.
    assert digest_window(_utc("2026-11-26 10:00"), "hourly")[0] == _utc("2026-11-26 09:00")


def test_digest_window_daily_in_utc_whatever_the_offset() -> None:
    jakarta = timezone(timedelta(hours=7))
    now = datetime(2026, 11, 26, 3, 0, tzinfo=jakarta)  # 2026-11-25 20:00 UTC
    assert digest_window(now, "daily") == (_utc("2026-11-24 00:00"), _utc("2026-11-25 00:00"))
    start, end = digest_window(_utc("2027-01-01 00:00:01"), "daily")
    assert (start, end) == (_utc("2026-12-31 00:00"), _utc("2027-01-01 00:00"))


def test_digest_window_refuses_naive_and_unknown() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        digest_window(datetime(2026, 11, 26, 10), "hourly")
    with pytest.raises(ValueError, match="hourly"):
        digest_window(_utc("2026-11-26 10:00"), "weekly")  # type: ignore[arg-type]


def test_alerts_in_window_half_open_unique_sorted() -> None:
    start, end = _utc("2026-11-26 09:00"), _utc("2026-11-26 10:00")
    alerts = [
        _alert(2, "2026-11-26T09:59:59.999Z"),
        _alert(1, "2026-11-26T09:00:00.000Z"),
        _alert(1, "2026-11-26T09:00:00.000Z"),  # redelivered
        _alert(3, "2026-11-26T10:00:00.000Z"),  # next window
        _alert(4, "2026-11-26T08:59:59.999Z"),  # previous window
        _alert(5, "2026-11-26T16:30:00.000+07:00"),  # 09:30 UTC
    ]
    assert [a.alert_id for a in alerts_in_window(alerts, start, end)] == ["al1", "al5", "al2"]


def test_render_digest_lists_alerts_as_json() -> None:
    window = (_utc("2026-11-26 09:00"), _utc("2026-11-26 10:00"))
    alerts = [_alert(1, "2026-11-26T09:10:00.000Z"), _alert(2, "2026-11-26T11:00:00.000Z")]
    message = render_digest(SUB, alerts, window)
    assert json.loads(json.dumps(message)) == message
    assert message["type"] == "alert.digest" and message["subscription_id"] == "sub_1"
    assert message["window"] == {
        "every": "hourly",
        "start": "2026-11-26T09:00:00.000Z",
        "end": "2026-11-26T10:00:00.000Z",
    }
    assert message["count"] == 1 and message["truncated"] is False
    item = message["alerts"][0]
    assert {k: item[k] for k in ("actor_name", "title", "url", "snippet", "alerted_at")} == {
        "actor_name": "Xi Jinping",
        "title": "Title 1",
        "url": "https://news.example/1",
        "snippet": "Xi in story 1",
        "alerted_at": "2026-11-26T09:10:00.000Z",
    }
    assert message["digest_id"] == digest_id("sub_1", window[0], "hourly")
    assert render_digest(SUB, [], window)["count"] == 0


def test_render_digest_without_window_uses_last_complete_one() -> None:
    message = render_digest(SUB, [])
    start = datetime.fromisoformat(message["window"]["start"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(message["window"]["end"].replace("Z", "+00:00"))
    assert (start.minute, start.second, end - start) == (0, 0, timedelta(hours=1))
    assert end <= datetime.now(UTC) < end + timedelta(hours=1, seconds=5)


def test_render_digest_truncates_to_newest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(digest_module, "MAX_DIGEST_ALERTS", 2)
    window = (_utc("2026-11-26 09:00"), _utc("2026-11-26 10:00"))
    alerts = [_alert(n, f"2026-11-26T09:0{n}:00.000Z") for n in range(1, 5)]
    message = render_digest(SUB, alerts, window)
    assert message["count"] == 4 and message["truncated"] is True
    assert [a["alert_id"] for a in message["alerts"]] == ["al3", "al4"]


def test_digest_id_differs_per_window_and_subscription() -> None:
    start = _utc("2026-11-26 09:00")
    assert digest_id("sub_1", start, "hourly") == digest_id("sub_1", start, "hourly")
    assert digest_id("sub_1", start, "hourly") != digest_id("sub_2", start, "hourly")
    assert digest_id("sub_1", start, "hourly") != digest_id("sub_1", start, "daily")


def test_render_alert_realtime_message() -> None:
    message = render_alert("sub_1", _alert(1, "2026-11-26T09:10:00.000Z"))
    assert message["type"] == "alert.created" and message["alert"]["actor_id"] == "xi"
    assert message["alert"]["mentions"] == 1 and message["timestamp"] == "2026-11-26T09:10:00.000Z"
