"""Language identification with py3langid (a maintained fork of langid.py, model shipped)."""

from __future__ import annotations

import py3langid

NATIVE = ("id", "en")
# Malay is close enough to Indonesian for the Indonesian pipeline to serve it.
ROUTED = {"ms": "id"}
SAMPLE_CHARS = 2000


def detect_language(text: str) -> str:
    """The ISO 639-1 code of the text's language (from its first 2,000 characters)."""
    sample = text[:SAMPLE_CHARS]
    if not any(c.isalpha() for c in sample):
        return "und"
    code, _score = py3langid.classify(sample)
    return str(code)


def pipeline_language(code: str) -> str:
    """Which pipeline serves a language: id or en natively, else "xx" (ruler only)."""
    code = ROUTED.get(code, code)
    return code if code in NATIVE else "xx"
