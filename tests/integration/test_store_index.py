"""The article index behind `GET /v1/articles`, against a real Redis: a batch is indexed by
actor and event type in one go, old entries age out, each index stays bounded."""

from __future__ import annotations

from pathlib import Path

import pytest

import workers.store
from tests.integration.conftest import make_settings
from workers.domain import Entity, Event, Extraction, Span
from workers.store import Store

NOW = 1_800_000_000.0


def _extraction(article_id: str, actors: list[str], events: list[str]) -> Extraction:
    text = "Vladimir Putin bertemu Choe Son Hui di Moskow."
    return Extraction(
        article_id=article_id,
        story_id=article_id,
        language="id",
        text=text,
        entities=[
            Entity(text="x", start=0, end=1, label="PER", canonical=actor) for actor in actors
        ],
        events=[
            Event(type=kind, trigger=Span(text="bertemu", start=15, end=22), sentence={})
            for kind in events
        ],
        ingested_at="2027-01-15T08:00:00Z",
        extracted_at="2027-01-15T08:00:01Z",
    )


def test_index_extractions_by_actor_and_event_bounded_and_aged(
    redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store.connect(redis_url, make_settings(redis_url, tmp_path, article_ttl_s=3600))
    try:
        store.index_extractions([_extraction("old", ["ru"], ["CONSULT"])], NOW - 7200)
        store.index_extractions(
            [
                _extraction("a1", ["vladimir-putin", "ru"], ["CONSULT"]),
                _extraction("a2", ["ru"], []),
                _extraction("a3", [], ["ACCUSE"]),
            ],
            NOW,
        )
        since = NOW - 60
        assert sorted(store.find_articles("ru", None, since, 10)) == ["a1", "a2"]
        assert store.find_articles("vladimir-putin", None, since, 10) == ["a1"]
        assert store.find_articles(None, "ACCUSE", since, 10) == ["a3"]
        assert store.find_articles("ru", "CONSULT", since, 10) == ["a1"]
        assert sorted(store.find_articles(None, None, since, 10)) == ["a1", "a2", "a3"]
        # "old" was indexed two hours ago with a one-hour TTL: the next batch trimmed it.
        assert "old" not in store.redis.zrange(store.key("idx", "actor", "ru"), 0, -1)
        assert store.redis.ttl(store.key("idx", "articles")) > 0

        monkeypatch.setattr(workers.store, "INDEX_MAXLEN", 2)
        store.index_extractions([_extraction("a4", ["ru"], [])], NOW + 1)
        assert store.redis.zcard(store.key("idx", "actor", "ru")) == 2
        assert store.find_articles("ru", None, since, 10)[0] == "a4"
        store.index_extractions([], NOW + 2)  # nothing to index: no error
    finally:
        store.drop_namespace()


def test_index_a_large_batch_in_one_call(redis_url: str, tmp_path: Path) -> None:
    """A large batch is indexed whole in one call, and every index of the batch gets its own
    members only."""
    store = Store.connect(redis_url, make_settings(redis_url, tmp_path, article_ttl_s=3600))
    try:
        batch = [
            _extraction(f"b{i}", ["ru"] if i % 2 else ["kp"], ["CONSULT"] if i < 3 else [])
            for i in range(1201)
        ]
        store.index_extractions(batch, NOW)
        assert store.redis.zcard(store.key("idx", "articles")) == 1201
        assert store.redis.zcard(store.key("idx", "actor", "ru")) == 600
        assert store.redis.zcard(store.key("idx", "actor", "kp")) == 601
        assert sorted(store.find_articles(None, "CONSULT", NOW - 60, 10)) == ["b0", "b1", "b2"]
        assert store.redis.zscore(store.key("idx", "actor", "kp"), "b1200") == NOW
    finally:
        store.drop_namespace()
