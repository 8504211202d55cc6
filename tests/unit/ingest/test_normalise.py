"""Normalisation: clean text, stable ids, truncation with a flag."""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from workers.domain import RawArticle
from workers.ingest.normalise import clean_text, normalise


def test_clean_text_nfc_crlf_invisible_and_tags() -> None:
    raw = "Cafe\u0301\r\nKim\u200bJong  Un <b>tiba</b>\u00a0di &amp; Moskow\r\n\r\n\r\n\r\nAkhir"
    assert clean_text(raw) == "Café\nKimJong Un tiba di & Moskow\n\nAkhir"


def test_normalise_id_stable_from_url_then_text() -> None:
    by_url = normalise(
        RawArticle(text="A", url="HTTPS://Example.com/a?utm_source=x"), max_chars=100
    )
    same_url = normalise(RawArticle(text="B", url="https://example.com/a"), max_chars=100)
    by_text = normalise(RawArticle(text="Teks  berita"), max_chars=100)
    assert by_url.id == same_url.id
    assert by_text.id == normalise(RawArticle(text="Teks berita"), max_chars=100).id


def test_normalise_truncates_with_flag() -> None:
    article = normalise(RawArticle(text="kata " * 1000), max_chars=1000)
    assert article.truncated and len(article.text) <= 1000


def test_normalise_keeps_given_id_and_drops_bad_language() -> None:
    article = normalise(RawArticle(id="feed-1", text="x", language="Indonesian!"), max_chars=10)
    assert article.id == "feed-1" and article.language is None


@given(st.text(max_size=300))
def test_clean_text_is_idempotent_and_nfc(text: str) -> None:
    once = clean_text(text)
    assert clean_text(once) == once
    assert unicodedata.is_normalized("NFC", once)
