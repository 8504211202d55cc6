"""Reading articles from files, directories and stdin: plain text, JSON, JSONL/NDJSON.

Pure parsing: bytes in, RawArticle records and one-line problems out. Feed files (RSS, Atom,
JSON Feed) are handed to workers.ingest.feeds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from workers.domain import RawArticle
from workers.errors import InputError

TEXT_SUFFIXES = {".txt", ".text", ".md"}
JSON_SUFFIXES = {".json"}
JSONL_SUFFIXES = {".jsonl", ".ndjson"}
FEED_SUFFIXES = {".xml", ".rss", ".atom", ".rdf"}
# "Bisnis.com, JAKARTA — ..." : outlet, dateline, then a dash opens the article.
DATELINE = re.compile(
    r"^(?P<outlet>[^,\n]{2,60}?),\s*(?P<place>[A-Z][A-Z .'-]{1,40}?)\s*[—–-]{1,2}\s+"
)
_MAX_JSON_DEPTH = 64


@dataclass
class ParseResult:
    """What one input yielded: records, problems (one line each), and warnings."""

    source: str
    records: list[RawArticle] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def decode(data: bytes, source: str, warnings: list[str]) -> str:
    """Bytes to text: UTF-8 (a BOM is dropped), else Windows-1252 with a warning; binary refused."""
    if not data.strip():
        raise InputError(source, "empty input")
    if b"\x00" in data[:65536]:
        raise InputError(source, "binary data (NUL bytes), not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        sample = data[:65536]
        controls = sum(1 for b in sample if b < 9 or 13 < b < 32)
        if controls > len(sample) // 100:
            raise InputError(source, "binary data, not text") from err
        warnings.append(f"{source}: not UTF-8 (byte {err.start}); decoded as Windows-1252")
        return data.decode("cp1252", errors="replace")


def _depth_ok(text: str) -> bool:
    depth = 0
    for char in text:
        if char in "[{":
            depth += 1
            if depth > _MAX_JSON_DEPTH:
                return False
        elif char in "]}":
            depth -= 1
    return True


def _record(obj: object, where: str) -> RawArticle:
    if not isinstance(obj, dict):
        raise InputError(where, f"expected a JSON object, got {type(obj).__name__}")
    try:
        record = RawArticle.model_validate(obj)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "record"
        raise InputError(where, f"field {loc!r}: {first['msg']}") from err
    if not record.text.strip():
        raise InputError(where, "field 'text' is empty")
    return record


def parse_json(text: str, source: str) -> ParseResult:
    """A JSON object or array of objects."""
    result = ParseResult(source)
    if not _depth_ok(text):
        raise InputError(source, f"JSON nested deeper than {_MAX_JSON_DEPTH} levels")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(
            source, f"invalid JSON: {err.msg} at line {err.lineno} column {err.colno}"
        ) from err
    items = data if isinstance(data, list) else [data]
    for index, item in enumerate(items):
        try:
            result.records.append(_record(item, f"{source}[{index}]"))
        except InputError as err:
            result.problems.append(str(err))
    return result


def parse_jsonl(text: str, source: str) -> ParseResult:
    """One JSON object per line; blank lines skipped; bad lines reported one by one."""
    result = ParseResult(source)
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{source}:{lineno}"
        try:
            if not _depth_ok(line):
                raise InputError(where, f"JSON nested deeper than {_MAX_JSON_DEPTH} levels")
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise InputError(where, f"invalid JSON: {err.msg} at column {err.colno}") from err
            result.records.append(_record(obj, where))
        except InputError as err:
            result.problems.append(str(err))
    return result


def parse_text(text: str, source: str) -> ParseResult:
    """One plain-text article; an "Outlet, CITY — " opening names the source."""
    result = ParseResult(source)
    match = DATELINE.match(text.lstrip())
    outlet = match.group("outlet").strip() if match else None
    result.records.append(RawArticle(text=text, source=outlet))
    return result


def _looks_like_jsonl(text: str) -> bool:
    lines = [line for line in text.splitlines()[:3] if line.strip()]
    return len(lines) > 1 and all(line.lstrip().startswith("{") for line in lines)


def parse_bytes(
    data: bytes, source: str, *, kind: str | None = None, language: str | None = None
) -> ParseResult:
    """Parse one input's bytes; `kind` is the suffix-derived format, else it is sniffed."""
    warnings: list[str] = []
    if kind == "feed" or (kind is None and data.lstrip()[:1] == b"<"):
        from workers.ingest.feeds import parse_feed

        feed = parse_feed(data, feed_url=source, language=language)
        result = ParseResult(source, records=list(feed.entries))
        if not feed.entries:
            raise InputError(source, feed.error or "feed has no entries")
        return result
    text = decode(data, source, warnings)
    stripped = text.lstrip()
    if kind == "jsonl" or (kind is None and _looks_like_jsonl(text)):
        result = parse_jsonl(text, source)
    elif kind == "json" or (kind is None and stripped[:1] in "[{"):
        result = parse_json(text, source)
    else:
        result = parse_text(text, source)
    result.warnings.extend(warnings)
    if language:
        for record in result.records:
            record.language = record.language or language
    return result


def kind_for(path: Path) -> str | None:
    """The input format implied by a file name, or None to sniff."""
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix in JSON_SUFFIXES:
        return "json"
    if suffix in FEED_SUFFIXES:
        return "feed"
    if suffix in TEXT_SUFFIXES:
        return "text"
    return None


def iter_files(path: Path) -> Iterator[Path]:
    """The file itself, or every regular file under a directory (sorted, hidden ones skipped)."""
    if path.is_dir():
        for child in sorted(path.rglob("*")):
            if child.is_file() and not any(
                part.startswith(".") for part in child.relative_to(path).parts
            ):
                yield child
    else:
        yield path


def read_file(path: Path, max_bytes: int) -> ParseResult:
    """Read and parse one file, refusing it whole above `max_bytes`."""
    source = str(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise InputError(
                source, f"file is {size / 1e6:.1f} MB, above the {max_bytes / 1e6:.0f} MB limit"
            )
        data = path.read_bytes()
    except OSError as err:
        raise InputError(source, err.strerror or str(err)) from err
    return parse_bytes(data, source, kind=kind_for(path))


def read_stream(stream: object, source: str, max_bytes: int) -> ParseResult:
    """Read stdin (or any binary stream) up to `max_bytes` and parse it."""
    data = stream.read(max_bytes + 1)  # type: ignore[attr-defined]
    if len(data) > max_bytes:
        raise InputError(source, f"input is above the {max_bytes / 1e6:.0f} MB limit")
    return parse_bytes(data, source)
