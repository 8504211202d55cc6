"""Main text and metadata of a fetched article page, with trafilatura. No network here."""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin, urlsplit

from workers.domain import RawArticle
from workers.ingest.feeds import iso_utc
from workers.ingest.urls import canonical_url

MAX_HTML_BYTES = 5 * 1024 * 1024  # larger pages are cut before parsing (CPU and memory bound)
MIN_TEXT_CHARS = 25  # less is a stub or a headline, not an article

# htmldate (via trafilatura) with a time when the page gives one; the default keeps the day only.
_DATE_PARAMS: dict[str, Any] = {
    "extensive_search": False,  # no guessing from URL-less free text
    "original_date": True,  # the publication date, not the last update
    "outputformat": "%Y-%m-%dT%H:%M:%S%z",
}


def _absolute_http(candidate: str | None, base: str) -> str | None:
    if not candidate or not isinstance(candidate, str):
        return None
    try:
        joined = urljoin(base, candidate.strip()) if base else candidate.strip()
        if urlsplit(joined).scheme.lower() not in ("http", "https"):
            return None
    except ValueError:
        return None
    return canonical_url(joined)


def _parse(html: bytes) -> Any:
    try:
        import lxml.html

        return lxml.html.document_fromstring(html)
    except Exception:
        return None


def _page_language(root: Any) -> str | None:
    if root is None:
        return None
    for value in root.xpath(
        "/html/@lang | /html/@xml:lang | //meta[@http-equiv='content-language']/@content"
    ):
        value = " ".join(str(value).split())
        if value and len(value) <= 35:
            return value
    return None


def _canonical_link(root: Any, base: str) -> str | None:
    """`<link rel=canonical href>` or `<meta property=og:url>` of the page, absolute."""
    if root is None:
        return None
    for href in root.xpath(
        '//link[contains(concat(" ", normalize-space(translate(@rel, '
        '"CANONICAL", "canonical")), " "), " canonical ")]/@href'
    ):
        link = _absolute_http(str(href), base)
        if link:
            return link
    for content in root.xpath('//meta[@property="og:url" or @name="og:url"]/@content'):
        link = _absolute_http(str(content), base)
        if link:
            return link
    return None


def _published(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip()
    # A day only (htmldate writes it as local midnight without an offset, e.g. from the URL):
    # keep it a date rather than invent a time.
    if len(value) == 10 or (value.endswith("T00:00:00") and len(value) == 19):
        return value[:10]
    return iso_utc(value) or value[:10]


def extract_page(html: bytes, url: str) -> RawArticle | None:
    """The article in an HTML page: main text (paragraphs as lines), title, author, publication
    date and canonical URL (`<link rel=canonical>` / og:url, else `url`). None when the page has
    no main text or cannot be parsed. `published_at` is ISO 8601 UTC when the page gives a time,
    `YYYY-MM-DD` when it gives a day only.
    """
    if not html:
        return None
    if isinstance(html, str):
        html = html.encode("utf-8")
    html = bytes(html[:MAX_HTML_BYTES])
    try:
        import trafilatura

        doc = trafilatura.bare_extraction(
            html,
            url=url,
            with_metadata=True,
            include_comments=False,
            include_tables=False,
            include_images=False,
            include_links=False,
            favor_precision=True,
            date_extraction_params=_DATE_PARAMS,
        )
    except Exception:
        return None
    if doc is None:
        return None
    data: dict[str, Any] = doc.as_dict() if hasattr(doc, "as_dict") else dict(doc)
    text = (data.get("text") or "").strip()
    if len(text) < MIN_TEXT_CHARS:
        return None
    title = " ".join(str(data.get("title") or "").split()) or None
    lines = [" ".join(line.split()) for line in text.splitlines()]
    lines = [line for line in lines if line]
    if title and len(lines) > 1 and lines[0] == title:
        lines = lines[1:]  # the headline repeated as the first line of the body
    text = "\n".join(lines)
    root = _parse(html)
    canonical = (
        _canonical_link(root, url)
        or _absolute_http(data.get("url"), url)
        or (canonical_url(url) if url else None)
    )
    author = " ".join(str(data.get("author") or "").split()) or None
    language = data.get("language") or _page_language(root)
    return RawArticle(
        url=canonical,
        title=title,
        text=text,
        published_at=_published(data.get("date")),
        source=(data.get("sitename") or None),
        language=language,
        author=author,
    )
