"""News corpora for replays and benchmarks: IndoSum, Wikinews (toscaData) and plain article JSONL."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from workers.domain import RawArticle
from workers.errors import InputError

_NO_SPACE_BEFORE = re.compile(r" ([.,;:!?%)\]}])")
_NO_SPACE_AFTER = re.compile(r"([(\[{]) ")


def detokenise(tokens: list[str]) -> str:
    """Join tokens with spaces, then close the gaps before punctuation and inside brackets."""
    text = " ".join(tokens)
    return _NO_SPACE_AFTER.sub(r"\1", _NO_SPACE_BEFORE.sub(r"\1", text))


def corpus_record(obj: dict[str, Any]) -> RawArticle:
    """One article from an IndoSum record (tokenised `paragraphs`), a Wikinews one (`body`) or ours."""
    if "text" in obj:
        return RawArticle.model_validate(obj)
    if "paragraphs" in obj:  # IndoSum: paragraphs -> sentences -> tokens
        paragraphs = [
            " ".join(detokenise(sentence) for sentence in paragraph)
            for paragraph in obj["paragraphs"]
        ]
        return RawArticle(
            id=str(obj.get("id", ""))[:100] or None,
            text="\n".join(paragraphs),
            url=obj.get("source_url"),
            source=obj.get("source"),
            language="id",
        )
    if "body" in obj:  # Wikinews (toscaData)
        return RawArticle(
            id=str(obj.get("id")),
            text=obj["body"],
            title=obj.get("title"),
            url=obj.get("url"),
            published_at=obj.get("date"),
            language=obj.get("language", "en"),
        )
    raise InputError("corpus record", "has none of the fields text, paragraphs, body")


def read_corpus(path: Path, limit: int | None = None) -> Iterator[RawArticle]:
    """The first `limit` articles of a JSONL corpus file."""
    with path.open(encoding="utf-8") as lines:
        count = 0
        for lineno, line in enumerate(lines, start=1):
            if limit is not None and count >= limit:
                return
            if not line.strip():
                continue
            try:
                yield corpus_record(json.loads(line))
            except (json.JSONDecodeError, InputError, ValueError) as err:
                raise InputError(f"{path}:{lineno}", str(err).splitlines()[0]) from err
            count += 1
