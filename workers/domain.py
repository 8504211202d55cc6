"""The records that travel between stages, as small JSON-friendly pydantic models."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Label = Literal["PER", "ORG", "LOC", "MISC"]
EventContext = Literal["asserted", "future", "hypothetical", "historical", "reported"]


def utc_now() -> str:
    """The current time as ISO 8601 in UTC, with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def short_hash(*parts: str) -> str:
    """A stable 16-hex-digit id from text parts."""
    digest = hashlib.sha1("\x1f".join(parts).encode("utf-8"), usedforsecurity=False)
    return digest.hexdigest()[:16]


class Record(BaseModel):
    """Base of every record: unknown fields refused, JSON in and out."""

    model_config = ConfigDict(extra="forbid")


class RawArticle(BaseModel):
    """An article as a source gives it, before normalisation (unknown fields ignored)."""

    model_config = ConfigDict(extra="ignore")

    id: str | None = None
    url: str | None = None
    title: str | None = None
    text: str
    published_at: str | None = None
    source: str | None = None
    language: str | None = None
    author: str | None = None


class Article(Record):
    """A normalised article: NFC text, collapsed whitespace, a stable id."""

    id: str
    url: str | None = None
    title: str | None = None
    text: str
    published_at: str | None = None
    source: str | None = None
    language: str | None = None
    author: str | None = None
    content_hash: str
    story_id: str | None = None
    ingested_at: str
    truncated: bool = False


class Span(Record):
    """A stretch of the article text: `text == article.text[start:end]`."""

    text: str
    start: int
    end: int


class Entity(Span):
    """A named entity, linked to a canonical actor where known."""

    label: str
    actor_id: str | None = None
    canonical: str | None = None
    title: str | None = None
    source: Literal["model", "ruler"] = "model"


class EntityRef(Span):
    """An event participant: the entity's text and offsets with its canonical id."""

    label: str | None = None
    canonical: str | None = None
    actor_id: str | None = None


class Event(Record):
    """Who did what to whom, coded with PLOVER event types."""

    type: str
    cameo_root: str | None = None
    trigger: Span
    sentence: dict[str, int]
    source: EntityRef | None = None
    target: EntityRef | None = None
    location: EntityRef | None = None
    date: str | None = None
    negated: bool = False
    context: EventContext = "asserted"
    confidence: float = 0.5


class Extraction(Record):
    """What the extract stage found in one article; the alert stage's input."""

    article_id: str
    story_id: str
    language: str
    text: str
    title: str | None = None
    url: str | None = None
    source: str | None = None
    published_at: str | None = None
    entities: list[Entity] = Field(default_factory=list)
    events: list[Event] = Field(default_factory=list)
    truncated: bool = False
    ingested_at: str
    extracted_at: str


class Alert(Record):
    """A watched actor mentioned in an article, with the spans as evidence."""

    alert_id: str
    article_id: str
    story_id: str
    actor_id: str
    actor_name: str
    spans: list[Span]
    snippet: str
    language: str
    title: str | None = None
    url: str | None = None
    event_types: list[str] = Field(default_factory=list)
    ingested_at: str
    alerted_at: str
