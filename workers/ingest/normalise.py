"""Normalisation: one clean Article from a RawArticle (NFC, whitespace, stable id, content hash)."""

from __future__ import annotations

import html
import re
import unicodedata
from datetime import UTC, datetime

from workers.domain import Article, RawArticle, short_hash, utc_now
from workers.errors import InputError
from workers.ingest.dedup import content_hash
from workers.ingest.urls import canonical_url

# Invisible characters that only get in the way of matching; ZWJ/ZWNJ stay (emoji, scripts).
_INVISIBLE = re.compile("[\u200b\u2060\ufeff\u00ad]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]{0,500})?/?>")
# Runs of spaces become one space. Only runs that change match (two or more characters, or
# one that is not a plain space): matching every single space between words as well costs
# half of `clean_text`'s time in replacements that change nothing.
_OTHER_SPACES = "\t\u00a0\u2000-\u200a\u202f\u205f\u3000"  # a character class's body
_SPACES = re.compile(f"[{_OTHER_SPACES}][ {_OTHER_SPACES}]*| [ {_OTHER_SPACES}]+")
_LINE_EDGES = re.compile(r" \n ?|\n ")  # a space either side of a line end (likewise)
_BLANK_LINES = re.compile(r"\n{3,}")
_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
_LANG = re.compile(r"^[a-z]{2,3}$")


def clean_text(text: str) -> str:
    """NFC, LF line ends, no control or invisible characters, no HTML tags, single spaces."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    for _ in range(10):  # entities first ("&lt;b&gt;" is a tag), nested ones too, within reason
        if "&" not in text or (unescaped := html.unescape(text)) == text:
            break
        text = unescaped
    if "<" in text and _TAG.search(text):
        text = _TAG.sub(" ", text)
    text = _SPACES.sub(" ", _CONTROL.sub(" ", _INVISIBLE.sub("", text)))
    text = _LINE_EDGES.sub("\n", text)
    if "\n\n\n" in text:
        text = _BLANK_LINES.sub("\n\n", text)
    return text.strip()


def _one_line(value: str | None, limit: int = 1000) -> str | None:
    if value is None:
        return None
    cleaned = clean_text(value).replace("\n", " ")[:limit]
    return cleaned or None


def _iso_datetime(value: str | None) -> str | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).isoformat().replace("+00:00", "Z")


def normalise(
    raw: RawArticle, *, max_chars: int, source: str = "article", ingested_at: str | None = None
) -> Article:
    """A clean Article; raises InputError when nothing usable is left."""
    text = clean_text(raw.text)
    if not text:
        raise InputError(source, "text is empty after normalisation")
    truncated = len(text) > max_chars
    if truncated:
        cut = text.rfind(" ", 0, max_chars)
        text = text[: cut if cut > max_chars // 2 else max_chars]
    url = canonical_url(raw.url) if raw.url and raw.url.strip() else None
    if raw.id and _ID.match(raw.id):
        article_id = raw.id
    elif raw.id:
        article_id = short_hash("id", raw.id)
    else:
        article_id = short_hash("url", url) if url else short_hash("text", text)
    # "id", "en-US", "id_ID" -> the primary subtag; anything else is no hint at all
    language = re.split(r"[-_]", (raw.language or "").strip().lower())[0] or None
    return Article(
        id=article_id,
        url=url,
        title=_one_line(raw.title),
        text=text,
        published_at=_iso_datetime(raw.published_at),
        source=_one_line(raw.source, 200),
        language=language if language and _LANG.match(language) else None,
        author=_one_line(raw.author, 200),
        content_hash=content_hash(text),
        ingested_at=ingested_at or utc_now(),
        truncated=truncated,
    )
