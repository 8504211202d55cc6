"""Feed parsing (RSS 0.9x/1.0/2.0, Atom, JSON Feed), feed configuration and poll scheduling.

`parse_feed` never raises on any input bytes: a refused or unusable document comes back with
`error` set.
"""

from __future__ import annotations

import calendar
import html
import io
import json
import pyexpat
import random
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from workers.domain import RawArticle
from workers.errors import InputError
from workers.ingest.urls import canonical_url

# Expat 2.6.0 added the large-token (CVE-2023-52425) protection; 2.4.0 the billion-laughs
# amplification limit. We refuse DOCTYPEs with ENTITY declarations ourselves regardless, so an
# older expat is not a hole here, but the lead may want to log this at start-up.
EXPAT_VERSION: tuple[int, int, int] = tuple(pyexpat.version_info)  # type: ignore[assignment]
EXPAT_HARDENED: bool = EXPAT_VERSION >= (2, 6)

JSON_FEED_VERSIONS = ("https://jsonfeed.org/version/1", "https://jsonfeed.org/version/1.1")
MAX_ERROR_CHARS = 200

_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
_ENTITY = re.compile(rb"<!ENTITY", re.IGNORECASE)
_XML_ENCODING = re.compile(rb"""<\?xml[^>]{0,200}?encoding\s*=\s*["']([A-Za-z0-9._:-]{1,40})["']""")
_BOMS: tuple[tuple[bytes, str], ...] = (
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\xfe\xff", "utf-16-be"),
    (b"\xff\xfe", "utf-16-le"),
)
_BLOCK_TAGS = frozenset(
    {
        "p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre",
        "tr", "table", "section", "article", "header", "footer", "figure", "figcaption", "dd", "dt",
        "dl", "hr", "address", "aside", "main", "nav",
    }
)  # fmt: skip
_DROP_TAGS = frozenset({"script", "style", "noscript", "template", "iframe", "object", "head"})
_TAG_RE = re.compile(r"<[^>]*>")
_WS_RE = re.compile(r"\s+")


@dataclass
class FeedParseResult:
    """The articles of one feed document, and what went wrong if nothing usable came out."""

    entries: list[RawArticle] = field(default_factory=list)
    error: str | None = None
    bozo: bool = False
    feed_title: str | None = None
    skipped: int = 0  # entries with neither text nor title (or unconvertible)


# ---------------------------------------------------------------------------------------------
# Refusal of entity declarations (billion laughs, XXE)
# ---------------------------------------------------------------------------------------------


def _decoded_views(body: bytes) -> list[bytes]:
    """The body as ASCII-compatible bytes in every encoding it may plausibly be in."""
    views = [body]
    head = body[:4]
    encodings: list[str] = [enc for bom, enc in _BOMS if head.startswith(bom)]
    if b"\x00" in body[:64]:
        encodings += ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"]
    for view in list(views):
        match = _XML_ENCODING.search(view[:512])
        if match:
            encodings.append(match.group(1).decode("ascii", "replace"))
    for enc in dict.fromkeys(encodings):
        try:
            views.append(body.decode(enc, errors="ignore").encode("utf-8", errors="ignore"))
        except (LookupError, ValueError, TypeError):
            continue
    return views


def entity_refusal(body: bytes) -> str | None:
    """Why `body` is refused before parsing (a DOCTYPE that declares entities), or None."""
    for view in _decoded_views(body):
        doctype = _DOCTYPE.search(view)
        if doctype and _ENTITY.search(view, doctype.start()):
            return "refused: DOCTYPE declares entities (possible billion-laughs or XXE)"
    return None


# ---------------------------------------------------------------------------------------------
# Text helpers
# ---------------------------------------------------------------------------------------------


def _one_line(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


def _collapse_lines(text: str) -> str:
    lines = [" ".join(line.split()) for line in text.splitlines()]
    out: list[str] = []
    for line in lines:
        if line:
            out.append(line)
    return "\n".join(out)


def html_to_text(markup: str) -> str:
    """Visible text of an HTML fragment, one line per paragraph/block, scripts and styles dropped."""
    if not markup or not markup.strip():
        return ""
    if "<" not in markup and "&" not in markup:
        return _collapse_lines(markup)
    try:
        import lxml.html

        root = lxml.html.fragment_fromstring(markup, create_parent="div")
    except Exception:
        return _collapse_lines(html.unescape(_TAG_RE.sub("\n", markup)))
    parts: list[str] = []

    def text_of(value: str | None, pre: bool) -> str:
        # Newlines in HTML source are plain whitespace, except inside <pre>.
        return (value if pre else _WS_RE.sub(" ", value)) if value else ""

    def walk(el: Any, pre: bool) -> None:
        tag = el.tag if isinstance(el.tag, str) else ""
        tag = tag.lower().rsplit("}", 1)[-1]
        if tag in _DROP_TAGS:
            parts.append(text_of(el.tail, pre))
            return
        block = tag in _BLOCK_TAGS
        inner_pre = pre or tag == "pre"
        if block:
            parts.append("\n")
        if tag:  # comments and processing instructions have a non-str tag: skip their text
            parts.append(text_of(el.text, inner_pre))
        for child in el:
            walk(child, inner_pre)
        if block:
            parts.append("\n")
        parts.append(text_of(el.tail, pre))

    try:
        walk(root, False)
    except Exception:
        return _collapse_lines(html.unescape(_TAG_RE.sub("\n", markup)))
    return _collapse_lines("".join(parts))


def _content_text(value: Any) -> str:
    """Text of a feedparser content/summary detail (dict with type/value) or a plain string."""
    if isinstance(value, dict):
        ctype = str(value.get("type") or "text/html").lower()
        raw = str(value.get("value") or "")
        if "html" in ctype or "xml" in ctype:
            return html_to_text(raw)
        return _collapse_lines(raw)
    return html_to_text(str(value or ""))


def _iso_from_struct(value: Any) -> str | None:
    try:
        seconds = calendar.timegm(value)
        return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def iso_utc(value: Any) -> str | None:
    """ISO 8601 UTC (`...Z`) of an RFC 3339 / ISO 8601 string (naive = UTC), or None."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        parsed_struct = feedparser.datetimes._parse_date(text)  # RFC 822, W3CDTF, ...
        return _iso_from_struct(parsed_struct) if parsed_struct else None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC).isoformat().replace("+00:00", "Z")
    except (ValueError, OverflowError):
        return None


def _clean(value: Any) -> str | None:
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text or None


# ---------------------------------------------------------------------------------------------
# RSS / Atom via feedparser
# ---------------------------------------------------------------------------------------------


def _feedparser_entries(
    body: bytes, feed_url: str, feed_name: str | None, language: str | None
) -> FeedParseResult:
    # BytesIO, never the raw bytes: feedparser treats a bytes/str argument that names an
    # existing file as a path to open (and a str URL as something to fetch).
    parsed = feedparser.parse(
        io.BytesIO(body),
        # content-type: without one feedparser flags every document bozo ("no Content-type");
        # application/xml lets the XML declaration / BOM decide the encoding.
        response_headers={"content-location": feed_url or "", "content-type": "application/xml"},
    )
    bozo = bool(parsed.get("bozo"))
    feed = parsed.get("feed") or {}
    feed_title = _clean(html_to_text(str(feed.get("title") or ""))) if feed.get("title") else None
    feed_language = _clean(feed.get("language"))
    result = FeedParseResult(bozo=bozo, feed_title=feed_title)
    for entry in parsed.get("entries") or []:
        try:
            article = _feedparser_entry(
                entry, feed_url, feed_name or feed_title, language, feed_language
            )
        except Exception:
            article = None
        if article is None:
            result.skipped += 1
        else:
            result.entries.append(article)
    if not result.entries:
        if bozo:
            reason = parsed.get("bozo_exception") or "not well-formed"
            result.error = _one_line(f"not a feed: {reason}")
        elif not parsed.get("version") and not feed:
            result.error = "not a feed: no RSS, Atom or RDF root element"
    return result


def _feedparser_entry(
    entry: Any, feed_url: str, source: str | None, language: str | None, feed_language: str | None
) -> RawArticle | None:
    title = _clean(html_to_text(str(entry.get("title") or ""))) if entry.get("title") else None
    text = ""
    contents = entry.get("content") or []
    entry_language = None
    for content in contents:
        text = _content_text(content)
        if isinstance(content, dict) and not entry_language:
            entry_language = _clean(content.get("language"))
        if text:
            break
    if not text:
        detail = entry.get("summary_detail")
        text = _content_text(detail) if detail else _content_text(entry.get("summary") or "")
        if isinstance(detail, dict):
            entry_language = entry_language or _clean(detail.get("language"))
    if not text and not title:
        return None
    link = entry.get("link")
    if not link:
        guid = entry.get("id")
        if isinstance(guid, str) and guid.startswith(("http://", "https://")):
            link = guid
    published = None
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        if entry.get(key):
            published = _iso_from_struct(entry.get(key))
            if published:
                break
    author = _clean(entry.get("author"))
    return RawArticle(
        url=canonical_url(str(link)) if link else None,
        title=title,
        text=text,
        published_at=published,
        source=source,
        language=language or entry_language or feed_language,
        author=author,
    )


# ---------------------------------------------------------------------------------------------
# JSON Feed
# ---------------------------------------------------------------------------------------------


def _looks_like_json(body: bytes) -> bool:
    head = body[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"{")


def _json_feed(
    body: bytes, feed_url: str, feed_name: str | None, language: str | None
) -> FeedParseResult | None:
    """Parse a JSON Feed 1/1.1 document; None when `body` is not one (try feedparser then)."""
    try:
        doc = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return FeedParseResult(error=_one_line(f"not a feed: invalid JSON ({exc})"), bozo=True)
    if not isinstance(doc, dict):
        return FeedParseResult(error="not a feed: JSON document is not an object", bozo=True)
    version = str(doc.get("version") or "").rstrip("/")
    if version not in JSON_FEED_VERSIONS:
        return FeedParseResult(
            error=_one_line(f"not a feed: JSON without a JSON Feed version ({version!r})")
        )
    feed_title = _clean(doc.get("title")) if isinstance(doc.get("title"), str) else None
    feed_language = _clean(doc.get("language")) if isinstance(doc.get("language"), str) else None
    feed_authors = _json_authors(doc)
    result = FeedParseResult(feed_title=feed_title)
    items = doc.get("items")
    if not isinstance(items, list):
        result.error = "not a feed: JSON Feed without an items list"
        result.bozo = True
        return result
    from urllib.parse import urljoin

    for item in items:
        if not isinstance(item, dict):
            result.skipped += 1
            continue
        try:
            title = _clean(item.get("title")) if isinstance(item.get("title"), str) else None
            text = ""
            if isinstance(item.get("content_html"), str):
                text = html_to_text(item["content_html"])
            if not text and isinstance(item.get("content_text"), str):
                text = _collapse_lines(item["content_text"])
            if not text and isinstance(item.get("summary"), str):
                text = html_to_text(item["summary"])
            if not text and not title:
                result.skipped += 1
                continue
            link = item.get("url") if isinstance(item.get("url"), str) else None
            if not link and isinstance(item.get("external_url"), str):
                link = item["external_url"]
            if link and feed_url:
                link = urljoin(feed_url, link)
            authors = _json_authors(item) or feed_authors
            item_language = item.get("language") if isinstance(item.get("language"), str) else None
            result.entries.append(
                RawArticle(
                    url=canonical_url(link) if link else None,
                    title=title,
                    text=text,
                    published_at=iso_utc(item.get("date_published"))
                    or iso_utc(item.get("date_modified")),
                    source=feed_name or feed_title,
                    language=language or _clean(item_language) or feed_language,
                    author=authors,
                )
            )
        except Exception:
            result.skipped += 1
    return result


def _json_authors(obj: dict[str, Any]) -> str | None:
    names: list[str] = []
    authors = obj.get("authors")
    if isinstance(authors, list):
        names += [str(a["name"]) for a in authors if isinstance(a, dict) and a.get("name")]
    author = obj.get("author")  # JSON Feed 1.0
    if not names and isinstance(author, dict) and author.get("name"):
        names.append(str(author["name"]))
    return _clean(", ".join(names)) if names else None


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------


def parse_feed(
    body: bytes, *, feed_url: str, feed_name: str | None = None, language: str | None = None
) -> FeedParseResult:
    """The entries of a feed document as RawArticles.

    RSS 0.9x/1.0/2.0 and Atom go through feedparser, JSON Feed 1/1.1 through `json`. HTML in
    content/summary becomes text with one line per paragraph. `published_at` is ISO 8601 UTC
    when the date parses; `source` is `feed_name` or the feed title; `language` is the hint,
    else the entry's, else the feed's. Entries with neither text nor title are skipped and
    counted in `skipped`. Entries with a title but no text keep `text=""`.
    A document whose DOCTYPE declares entities is refused (`error="refused: ..."`) without
    parsing; a malformed document that yields nothing gets `error="not a feed: <reason>"`.
    Never raises.
    """
    try:
        if not isinstance(body, bytes | bytearray | memoryview):
            return FeedParseResult(error="not a feed: body is not bytes")
        body = bytes(body)
        if not body.strip():
            return FeedParseResult(error="not a feed: empty document", bozo=True)
        refusal = entity_refusal(body)
        if refusal:
            return FeedParseResult(error=refusal, bozo=True)
        if _looks_like_json(body):
            result = _json_feed(body, feed_url, feed_name, language)
            if result is not None:
                return result
        return _feedparser_entries(body, feed_url, feed_name, language)
    except RecursionError:
        return FeedParseResult(error="not a feed: nesting too deep", bozo=True)
    except Exception as exc:  # a parser bug must not kill the poller
        return FeedParseResult(
            error=_one_line(f"not a feed: parser failure ({type(exc).__name__}: {exc})"), bozo=True
        )


# ---------------------------------------------------------------------------------------------
# Configuration and scheduling
# ---------------------------------------------------------------------------------------------


class FeedConfig(BaseModel):
    """One polled feed, as listed under `feeds:` in config/feeds.yaml."""

    model_config = ConfigDict(extra="forbid")

    url: str
    name: str | None = None
    language: str | None = None
    interval_s: int = Field(default=300, ge=30)
    full_text: bool = False

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        from urllib.parse import urlsplit

        value = value.strip()
        try:
            parts = urlsplit(value)
        except ValueError as exc:
            raise ValueError(f"not a URL ({exc})") from None
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL with a host")
        return value


def load_feeds(path: str | Path) -> list[FeedConfig]:
    """The feeds listed in a YAML file `feeds: [{url, name, language, interval_s, full_text}]`.

    Raises InputError naming the file and the offending field (`feeds[2].interval_s`).
    """
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(source, f"cannot read ({exc})") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(source, _one_line(f"invalid YAML ({exc})")) from None
    if doc is None:
        doc = {"feeds": []}
    if not isinstance(doc, dict) or "feeds" not in doc:
        raise InputError(source, "expected a mapping with a `feeds:` list")
    unknown = sorted(str(k) for k in doc if k != "feeds")
    if unknown:
        raise InputError(source, f"unknown top-level key(s): {', '.join(unknown)}")
    items = doc["feeds"] or []
    if not isinstance(items, list):
        raise InputError(source, "feeds: expected a list")
    feeds: list[FeedConfig] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise InputError(source, f"feeds[{index}]: expected a mapping with url, name, ...")
        try:
            config = FeedConfig.model_validate(item)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "?"
            raise InputError(
                source, f"feeds[{index}].{where}: {first.get('msg', 'invalid')}"
            ) from None
        key = canonical_url(config.url)
        if key in seen:
            raise InputError(
                source, f"feeds[{index}].url: duplicate of feeds[{seen[key]}] ({config.url})"
            )
        seen[key] = index
        feeds.append(config)
    return feeds


def next_poll_delay(
    failures: int, interval_s: int, max_s: float = 3600, *, rng: random.Random | None = None
) -> float:
    """Seconds until the next poll: `interval_s` when healthy, else exponential backoff
    `interval_s * 2**failures` capped at `max_s`, with "equal jitter" (a uniform draw in the
    upper half) so failing feeds do not retry in lock-step. Never below `interval_s`."""
    interval = float(max(1, interval_s))
    if failures <= 0:
        return interval
    cap = max(float(max_s), interval)
    base = min(cap, interval * (2.0 ** min(failures, 32)))
    draw = (rng or random).uniform(base / 2, base)
    return max(interval, draw)
