"""Subscriptions: validation of what callers send, and which alerts a subscription selects."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from pydantic import ValidationError

from workers.alert.rules import match_watchlist
from workers.alert.subscriptions import (
    MAX_ACTORS,
    Subscription,
    SubscriptionIn,
    dedup_key,
    new_secret,
    parse_subscription_in,
    select_alerts,
)
from workers.alert.watchlist import parse_watchlist
from workers.domain import Alert, Entity, EntityRef, Event, Extraction, Span
from workers.errors import InputError
from workers.extract.events import PLOVER_TYPES

WATCHLIST = parse_watchlist(
    "actors: [{id: prabowo, name: Prabowo Subianto, type: PER},"
    " {id: xi, name: Xi Jinping, type: PER}, {id: putin, name: Vladimir Putin, type: PER}]",
    "w.yaml",
)
TEXT = "Prabowo bertemu Xi di Beijing. Prabowo dan Xi sepakat. Putin tidak hadir."


def _ent(name: str, actor_id: str) -> list[Entity]:
    out, start = [], TEXT.find(name)
    while start != -1:
        out.append(
            Entity(text=name, start=start, end=start + len(name), label="PER", actor_id=actor_id)
        )
        start = TEXT.find(name, start + 1)
    return out


def _ref(name: str, actor_id: str | None, canonical: str | None = None) -> EntityRef:
    start = TEXT.find(name)
    return EntityRef(
        text=name, start=start, end=start + len(name), actor_id=actor_id, canonical=canonical
    )


def _agree(source: EntityRef | None, target: EntityRef | None, typ: str = "AGREE") -> Event:
    start = TEXT.find("sepakat")
    return Event(
        type=typ,
        trigger=Span(text="sepakat", start=start, end=start + 7),
        sentence={"start": 31, "end": 55},
        source=source,
        target=target,
    )


def _extraction(
    events: list[Event] | None = None, language: str = "id", actors: tuple[str, ...] = ()
) -> Extraction:
    names = {"prabowo": "Prabowo", "xi": "Xi", "putin": "Putin"}
    entities = [e for a in actors or tuple(names) for e in _ent(names[a], a)]
    return Extraction(
        article_id="a1",
        story_id="s1",
        language=language,
        text=TEXT,
        entities=sorted(entities, key=lambda e: e.start),
        events=events or [],
        ingested_at="2026-11-26T00:00:00.000Z",
        extracted_at="2026-11-26T00:00:01.000Z",
    )


def _sub(**fields: Any) -> Subscription:
    fields.setdefault("channel", "sse")
    return Subscription.create(SubscriptionIn(**fields))


def _selected(sub: Subscription, extraction: Extraction) -> list[str]:
    alerts: list[Alert] = match_watchlist(extraction, WATCHLIST)
    return [a.actor_id for a in select_alerts(sub, extraction, alerts)]


# Validation ---------------------------------------------------------------------------------


def test_subscription_create_fills_id_secret_and_time() -> None:
    sub = _sub(actors_any=["xi"], channel="webhook", webhook_url="https://hooks.example/p")
    assert sub.id.startswith("sub_") and sub.created_at.endswith("Z")
    assert sub.secret.startswith("whsec_")
    assert len(base64.b64decode(sub.secret.removeprefix("whsec_"))) == 32
    assert sub.secret not in repr(sub)
    assert "secret" not in sub.public() and sub.public()["id"] == sub.id
    again = Subscription.model_validate_json(sub.model_dump_json())
    assert again == sub


def test_subscription_new_secret_is_fresh_each_time() -> None:
    assert new_secret() != new_secret()


def test_subscription_replace_keeps_identity() -> None:
    sub = _sub(actors_any=["xi"])
    changed = sub.replace(SubscriptionIn(actors_any=["putin"], channel="redis"))
    assert (changed.id, changed.secret, changed.created_at) == (sub.id, sub.secret, sub.created_at)
    assert changed.actors_any == ["putin"] and changed.channel == "redis"
    assert sub.rotate_secret().secret != sub.secret


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"channel": "sse"}, "at least one actor"),
        ({"actors_any": ["xi"], "channel": "webhook"}, "webhook_url is required"),
        (
            {"actors_any": ["xi"], "channel": "sse", "webhook_url": "https://a.example/"},
            "only allowed when channel is 'webhook'",
        ),
        (
            {"actors_any": ["xi"], "channel": "webhook", "webhook_url": "ftp://a.example/"},
            "only http and https",
        ),
        (
            {"actors_any": ["xi"], "channel": "webhook", "webhook_url": "javascript:alert(1)"},
            "only http and https",
        ),
        (
            {"actors_any": ["xi"], "channel": "webhook", "webhook_url": "https:///path"},
            "no host",
        ),
        (
            {"actors_any": ["xi"], "channel": "webhook", "webhook_url": "https://u:p@a.example/"},
            "credentials",
        ),
        ({"actors_any": ["xi"], "channel": "sse", "event_types": ["BOMB"]}, "unknown event type"),
        ({"actors_any": ["Xi Jinping"], "channel": "sse"}, "not an actor id"),
        ({"actors_any": ["xi"], "channel": "sse", "mode": "digest"}, "digest_every"),
        ({"actors_any": ["xi"], "channel": "sse", "digest_every": "daily"}, "only allowed"),
        ({"actors_any": ["xi"], "channel": "sse", "min_mentions": 0}, "greater than or equal"),
        ({"actors_any": ["xi"], "channel": "sse", "languages": ["indonesian"]}, "ISO 639"),
        ({"actors_any": ["xi"], "channel": "sse", "colour": "red"}, "Extra inputs"),
        ({"actors_any": ["xi"], "channel": "email"}, "channel"),
    ],
)
def test_subscription_in_refuses_with_clear_message(fields: dict[str, Any], problem: str) -> None:
    with pytest.raises(InputError) as info:
        parse_subscription_in(fields)
    assert problem in str(info.value)


def test_subscription_in_caps_actors() -> None:
    many = [f"a{i}" for i in range(MAX_ACTORS)]
    assert len(SubscriptionIn(actors_any=many, channel="sse").actors_any) == MAX_ACTORS
    with pytest.raises(ValidationError, match="at most 1000"):
        SubscriptionIn(actors_any=[*many, "extra"], channel="sse")
    with pytest.raises(ValidationError, match="at most 1000"):
        SubscriptionIn(actors_any=many[:600], actors_all=[*many[400:], "b1", "b2"], channel="sse")


def test_subscription_in_normalises_event_types_and_languages() -> None:
    sub = SubscriptionIn(
        actors_any=["xi", "xi"], event_types=["agree", "AGREE "], languages=["ID"], channel="sse"
    )
    assert sub.actors_any == ["xi"] and sub.event_types == ["AGREE"] and sub.languages == ["id"]
    assert set(PLOVER_TYPES) == {
        "AGREE", "CONSULT", "SUPPORT", "CONCEDE", "COOPERATE", "AID", "RETREAT", "REQUEST",
        "ACCUSE", "REJECT", "THREATEN", "PROTEST", "SANCTION", "MOBILIZE", "COERCE", "ASSAULT",
    }  # fmt: skip


def test_subscription_refuses_malformed_secret() -> None:
    sub = _sub(actors_any=["xi"])
    data = sub.model_dump()
    for bad in ("hunter2", "whsec_!!!", "whsec_" + base64.b64encode(b"short").decode()):
        with pytest.raises(ValidationError, match="secret"):
            Subscription(**{**data, "secret": bad})


# Selection ----------------------------------------------------------------------------------


def test_select_actors_any_picks_only_named_actors() -> None:
    assert _selected(_sub(actors_any=["xi", "nobody"]), _extraction()) == ["xi"]
    assert _selected(_sub(actors_any=["nobody"]), _extraction()) == []


def test_select_actors_all_needs_every_actor_and_gives_one_alert_each() -> None:
    sub = _sub(actors_all=["prabowo", "xi"])
    assert _selected(sub, _extraction()) == ["prabowo", "xi"]
    assert _selected(sub, _extraction(actors=("prabowo", "putin"))) == []


def test_select_actors_all_with_min_mentions_gates_every_actor() -> None:
    # Prabowo and Xi are each mentioned twice, Putin once.
    assert _selected(_sub(actors_all=["prabowo", "xi"], min_mentions=2), _extraction()) == [
        "prabowo",
        "xi",
    ]
    assert _selected(_sub(actors_all=["prabowo", "putin"], min_mentions=2), _extraction()) == []
    assert _selected(_sub(actors_any=["prabowo", "putin"], min_mentions=2), _extraction()) == [
        "prabowo"
    ]


def test_select_both_lists_must_hold() -> None:
    sub = _sub(actors_all=["prabowo", "xi"], actors_any=["putin"])
    assert _selected(sub, _extraction()) == ["prabowo", "xi", "putin"]
    assert _selected(sub, _extraction(actors=("prabowo", "xi"))) == []
    assert _selected(sub, _extraction(actors=("xi", "putin"))) == []


@pytest.mark.parametrize(
    ("role", "expected"),
    [("source", ["prabowo"]), ("target", ["xi"]), ("any", ["prabowo", "xi"])],
)
def test_select_role_uses_event_participants(role: str, expected: list[str]) -> None:
    events = [_agree(_ref("Prabowo", "prabowo"), _ref("Xi", "xi"))]
    sub = _sub(actors_any=["prabowo", "xi", "putin"], event_types=["AGREE"], role=role)
    assert _selected(sub, _extraction(events)) == expected


def test_select_event_types_filter_out_other_types() -> None:
    events = [_agree(_ref("Prabowo", "prabowo"), _ref("Xi", "xi"), typ="CONSULT")]
    sub = _sub(actors_any=["prabowo"], event_types=["AGREE", "ASSAULT"])
    assert _selected(sub, _extraction(events)) == []
    assert _selected(_sub(actors_any=["prabowo"], event_types=["consult"]), _extraction(events))


def test_select_role_without_event_types_means_any_event() -> None:
    events = [_agree(_ref("Prabowo", "prabowo"), None, typ="REQUEST")]
    assert _selected(_sub(actors_any=["prabowo"], role="source"), _extraction(events)) == [
        "prabowo"
    ]
    assert _selected(_sub(actors_any=["prabowo"], role="target"), _extraction(events)) == []
    assert _selected(_sub(actors_any=["prabowo"], role="source"), _extraction()) == []


def test_select_matches_canonical_when_actor_id_missing() -> None:
    events = [_agree(_ref("Xi", None, canonical="XI"), None)]
    sub = _sub(actors_any=["xi"], event_types=["AGREE"], role="source")
    assert _selected(sub, _extraction(events)) == ["xi"]


def test_select_actors_all_applies_role_per_actor() -> None:
    events = [_agree(_ref("Prabowo", "prabowo"), _ref("Xi", "xi"))]
    sub = _sub(actors_all=["prabowo", "xi"], event_types=["AGREE"], role="source")
    assert _selected(sub, _extraction(events)) == ["prabowo"]
    assert _selected(sub, _extraction()) == []


def test_select_languages() -> None:
    assert _selected(_sub(actors_any=["xi"], languages=["en"]), _extraction()) == []
    assert _selected(_sub(actors_any=["xi"], languages=["en", "id"]), _extraction()) == ["xi"]
    assert _selected(_sub(actors_any=["xi"], languages=["id"]), _extraction(language="ID-id"))


def test_select_is_pure() -> None:
    extraction = _extraction()
    alerts = match_watchlist(extraction, WATCHLIST)
    before = [a.model_copy(deep=True) for a in alerts]
    sub = _sub(actors_any=["xi"])
    assert select_alerts(sub, extraction, alerts) == select_alerts(sub, extraction, alerts)
    assert alerts == before


def test_dedup_key_per_subscription_actor_story() -> None:
    key = dedup_key("sub_1", "xi", "s1")
    assert key.startswith("sub_1:") and key == dedup_key("sub_1", "xi", "s1")
    others = {dedup_key("sub_2", "xi", "s1"), dedup_key("sub_1", "putin", "s1"),
              dedup_key("sub_1", "xi", "s2")}  # fmt: skip
    assert key not in others and len(others) == 3
