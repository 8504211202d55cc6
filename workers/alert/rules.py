"""Alert rules: which watched actors an extraction mentions, as Alert records. Pure."""

from __future__ import annotations

from collections import defaultdict

from workers.alert.watchlist import Watchlist
from workers.domain import Alert, Entity, Extraction, Span, short_hash, utc_now

SNIPPET_CHARS = 240


def snippet(text: str, start: int, end: int, width: int = SNIPPET_CHARS) -> str:
    """A one-line piece of text around [start, end), cut at word boundaries."""
    pad = max(0, (width - (end - start)) // 2)
    left, right = max(0, start - pad), min(len(text), end + pad)
    if left > 0:
        space = text.find(" ", left, start)
        left = space + 1 if space != -1 else left
    if right < len(text):
        space = text.rfind(" ", end, right)
        right = space if space != -1 else right
    piece = " ".join(text[left:right].split())
    return ("…" if left > 0 else "") + piece + ("…" if right < len(text) else "")


def alert_id(story_id: str, actor_id: str) -> str:
    """The same story and actor always give the same alert id (redelivery changes nothing)."""
    return short_hash("alert", story_id, actor_id)


def match_watchlist(extraction: Extraction, watchlist: Watchlist) -> list[Alert]:
    """One alert per watched actor that the article mentions, with the spans as evidence."""
    hits: dict[str, list[Entity]] = defaultdict(list)
    for ent in extraction.entities:
        if ent.actor_id and ent.actor_id in watchlist:
            hits[ent.actor_id].append(ent)
    alerts = []
    for actor_id, mentions in hits.items():
        actor = watchlist.get(actor_id)
        assert actor is not None
        first = mentions[0]
        event_types = sorted(
            {
                event.type
                for event in extraction.events
                if any(
                    role is not None and role.actor_id == actor_id
                    for role in (event.source, event.target)
                )
            }
        )
        alerts.append(
            Alert(
                alert_id=alert_id(extraction.story_id, actor_id),
                article_id=extraction.article_id,
                story_id=extraction.story_id,
                actor_id=actor_id,
                actor_name=actor.name,
                spans=[Span(text=m.text, start=m.start, end=m.end) for m in mentions],
                snippet=snippet(extraction.text, first.start, first.end),
                language=extraction.language,
                title=extraction.title,
                url=extraction.url,
                event_types=event_types,
                ingested_at=extraction.ingested_at,
                alerted_at=utc_now(),
            )
        )
    return alerts
