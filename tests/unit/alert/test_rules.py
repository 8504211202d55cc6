"""Alert rules: one alert per watched actor, ids stable across redeliveries."""

from __future__ import annotations

from workers.alert.rules import match_watchlist, snippet
from workers.alert.watchlist import parse_watchlist
from workers.domain import Entity, Extraction

WATCHLIST = parse_watchlist(
    "actors: [{id: putin, name: Vladimir Putin, type: PER}, {id: xi, name: Xi Jinping, type: PER}]",
    "w.yaml",
)


def _extraction(entities: list[Entity]) -> Extraction:
    return Extraction(
        article_id="a1",
        story_id="s1",
        language="id",
        text="Putin bertemu Kim. Putin pulang.",
        entities=entities,
        ingested_at="2024-10-29T00:00:00.000Z",
        extracted_at="2024-10-29T00:00:01.000Z",
    )


def test_match_one_alert_per_actor_with_every_span() -> None:
    entities = [
        Entity(text="Putin", start=0, end=5, label="PER", actor_id="putin"),
        Entity(text="Kim", start=14, end=17, label="PER"),
        Entity(text="Putin", start=19, end=24, label="PER", actor_id="putin"),
    ]
    alerts = match_watchlist(_extraction(entities), WATCHLIST)
    assert [(a.actor_id, len(a.spans)) for a in alerts] == [("putin", 2)]
    assert alerts[0].actor_name == "Vladimir Putin" and "Putin bertemu" in alerts[0].snippet
    assert alerts[0].alert_id == match_watchlist(_extraction(entities), WATCHLIST)[0].alert_id


def test_match_ignores_actor_ids_no_longer_watched() -> None:
    entities = [Entity(text="Kim", start=14, end=17, label="PER", actor_id="kim-jong-un")]
    assert match_watchlist(_extraction(entities), WATCHLIST) == []


def test_snippet_cuts_at_words() -> None:
    text = "satu dua tiga empat lima enam tujuh delapan sembilan sepuluh"
    piece = snippet(text, 20, 24, width=20)
    assert "empat" not in piece or piece.startswith("…")
    assert "lima" in piece
