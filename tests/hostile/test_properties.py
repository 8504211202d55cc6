"""Property tests (hypothesis) of the pure cores that see hostile text: the normaliser, the URL
canonicaliser, the dedup signatures and the alias matcher."""

from __future__ import annotations

import unicodedata
from functools import cache

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.conftest import TEST_WATCHLIST
from workers.alert.watchlist import load_watchlist
from workers.domain import RawArticle
from workers.errors import InputError
from workers.extract.gazetteer import CLITICS, AliasMatcher, Entry, _fold_case_sensitive, fold
from workers.extract.pipeline import Extractor
from workers.ingest import dedup
from workers.ingest.normalise import clean_text, normalise
from workers.ingest.urls import canonical_url

BOUNDED = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _has_letter(text: str) -> bool:
    return any(unicodedata.category(c).startswith("L") for c in text)


# Arbitrary text, and text that looks like news (words, names, punctuation, odd spaces).
any_text = st.text(max_size=400)
WORDS = [
    "Presiden",
    "Joko",
    "Widodo",
    "Jokowi",
    "Putin",
    "Kim",
    "Jong",
    "Un",
    "di",
    "Jakarta",
    "pada",
    "Senin",
    "KPK",
    "AS",
    "menolak",
    "bertemu",
    "Menteri",
    "Rusia-nya",
    "Putinnya",
    "Korea",
    "Utara",
    "dan",
    "yang",
    "&amp;",
    "<b>",
    "</b>",
    "\u00a0",
    "\u200b",
    "\r\n",
    "\t",
    "İstanbul",
    "ß",
    "ΑΣ",
    "—",
    "(",
    ")",
    ",",
    ".",
    '"',
    "1945",
    "e\u0301",
]
news_text = st.lists(st.sampled_from(WORDS) | st.text(min_size=1, max_size=8), max_size=60).map(
    " ".join
)
lettered = (any_text | news_text).filter(_has_letter)


# Normaliser ----------------------------------------------------------------------------------


@BOUNDED
@given(any_text | news_text)
def test_normalise_raises_only_input_error_for_empty_text(text: str) -> None:
    try:
        article = normalise(RawArticle(text=text), max_chars=100_000)
    except InputError:
        assert clean_text(text) == "", "refused although something was left"
        return
    assert article.text == clean_text(text) and article.text


@BOUNDED
@given(lettered.filter(lambda t: "<" not in t and "&" not in t))
@example("Putin\u00ad")
def test_normalise_never_raises_on_text_with_a_letter(text: str) -> None:
    """Markup aside ('<b>' or '&shy;' alone clean to nothing), a letter always survives."""
    article = normalise(RawArticle(text=text), max_chars=100_000)
    assert _has_letter(article.text)


@BOUNDED
@given((any_text | news_text).filter(lambda t: "&" not in t))
@example("<b>Putin</b>  tiba\r\n\r\n\r\ndi <i class='x'>Moskow</i>\u200b.")
def test_clean_text_is_idempotent_without_entities(text: str) -> None:
    once = clean_text(text)
    assert clean_text(once) == once


@BOUNDED
@given(any_text | news_text)
@example("&lt;b&gt;Putin")
@example("&amp;amp;")
def test_clean_text_is_idempotent(text: str) -> None:
    once = clean_text(text)
    assert clean_text(once) == once


@BOUNDED
@given(lettered.filter(lambda t: "&" not in t))  # entities: see the xfail above
def test_normalise_is_idempotent(text: str) -> None:
    try:
        first = normalise(RawArticle(text=text), max_chars=100_000)
    except InputError:
        return
    again = normalise(RawArticle(id=first.id, text=first.text, url=first.url), max_chars=100_000)
    assert (again.id, again.text, again.content_hash) == (first.id, first.text, first.content_hash)


@cache
def _extractor() -> Extractor:
    extractor = Extractor(load_watchlist(TEST_WATCHLIST))
    extractor.warm_up()
    return extractor


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(news_text.filter(_has_letter))
@example("Presiden Rusia Vladimir Putin bertemu Kim Jong-un di Pyongyang pada Senin.")
@example("İstanbul\u00a0ΑΣ  Putinnya &amp; <b>KPK</b> menolak\r\nJokowi.")
def test_extracted_entity_offsets_index_the_normalised_text(text: str) -> None:
    """Spans found by the real extractor (NER + gazetteer + events) index the normalised text."""
    try:
        article = normalise(RawArticle(text=text, language="id"), max_chars=100_000)
    except InputError:
        return
    (extraction,) = _extractor().extract_many([article])
    assert extraction.text == article.text
    spans = [*extraction.entities]
    for event in extraction.events:
        spans.append(event.trigger)
        spans.extend(ref for ref in (event.source, event.target, event.location) if ref)
    for span in spans:
        assert 0 <= span.start < span.end <= len(article.text)
        assert article.text[span.start : span.end] == span.text


# URL canonicaliser ---------------------------------------------------------------------------

url_like = st.one_of(
    any_text,
    st.builds(
        lambda scheme, host, port, path, query, frag: (
            f"{scheme}://{host}{port}/{path}?{query}#{frag}"
        ),
        st.sampled_from(["http", "https", "HTTP", "ftp", "javascript", ""]),
        st.sampled_from(
            [
                "Example.COM",
                "xn--bcher-kva.example",
                "bücher.example",
                "[::1]",
                "127.0.0.1",
                "a..b",
                "-x-.com",
                "例え.jp",
                "user:pw@host",
                "%41.com",
            ]
        ),
        st.sampled_from(["", ":80", ":443", ":0", ":99999", ":abc"]),
        st.text(max_size=30),
        st.text(max_size=40) | st.sampled_from(["utm_source=x&b=2&a=1", "fbclid=1", "a=%2f&a=%2F"]),
        st.text(max_size=10),
    ),
)


@BOUNDED
@given(url_like)
@example("http://Example.COM:80/a/b/?utm_source=x&b=2&a=1#frag")
@example("http://[::1")
def test_canonical_url_idempotent_and_never_raises(url: str) -> None:
    once = canonical_url(url)
    assert isinstance(once, str)
    assert canonical_url(once) == once


# Dedup ---------------------------------------------------------------------------------------


@BOUNDED
@given(any_text | news_text)
def test_signature_deterministic_and_round_trips(text: str) -> None:
    first, second = dedup.signature(text), dedup.signature(text)
    assert first == second
    assert dedup.Signature.from_str(first.to_str()) == first
    assert dedup.band_keys(first) == dedup.band_keys(second)
    assert dedup.content_hash(text) == dedup.content_hash(text)


@BOUNDED
@given((any_text | news_text).filter(lambda t: bool(dedup.words(t))))
def test_a_text_is_a_near_duplicate_of_itself(text: str) -> None:
    sig = dedup.signature(text)
    assert dedup.similarity(sig, sig) == 1.0
    assert dedup.is_near_duplicate(sig, dedup.signature(text))


# Alias matcher -------------------------------------------------------------------------------

alias = st.one_of(
    st.sampled_from(
        [
            "Putin",
            "Kim Jong-un",
            "AS",
            "U.S.",
            "C++",
            "a.*b",
            "(x)",
            "[KPK]",
            "$^",
            "\\d+",
            "Jokowi?",
            "a|b",
            "İ",
            "ΑΣ",
            "K-pop",
            "x{2}",
        ]
    ),
    st.text(min_size=1, max_size=12),
).filter(lambda a: bool(a.strip()) and len(a.strip()) <= 200)


def _whole_word(text: str, start: int, end: int) -> bool:
    if start > 0 and text[start - 1].isalnum():
        return False
    if end == len(text) or not text[end].isalnum():
        return True
    for clitic in CLITICS:  # "Putinnya": the Indonesian -nya clitic is allowed after a name
        stop = end + len(clitic)
        if text[end:stop].lower() == clitic and (stop == len(text) or not text[stop].isalnum()):
            return True
    return False


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(st.lists(alias, min_size=1, max_size=8), st.data())
@example(["C++", "a.*b"], None)
def test_alias_matches_are_whole_word_occurrences(
    aliases: list[str], data: st.DataObject | None
) -> None:
    matcher = AliasMatcher((a, Entry(label="X", canonical=a)) for a in aliases)
    if data is None:
        text = "Harga C++ naik; a.*b turun, ac++ tidak, a.*bc juga tidak."
    else:
        pieces = st.lists(
            st.sampled_from(aliases) | st.sampled_from(WORDS) | st.text(max_size=6), max_size=30
        )
        text = data.draw(
            pieces.map(
                lambda parts: "".join(p + (" " if i % 3 else "") for i, p in enumerate(parts))
            )
        )
    matches = matcher.find(text)
    previous_end = 0
    folded, folded_cs = fold(text), _fold_case_sensitive(text)
    keys = {a: " ".join((_fold_case_sensitive(a) if _cs(a) else fold(a)).split()) for a in aliases}
    for match in matches:
        assert 0 <= match.start < match.end <= len(text)
        assert match.start >= previous_end, "matches overlap"
        previous_end = match.end
        found = (
            folded_cs[match.start : match.end]
            if _cs(match.entry.canonical or "")
            else folded[match.start : match.end]
        )
        assert found == keys[match.entry.canonical or ""], (text, match)
        assert _whole_word(text, match.start, match.end), (text, match)
    if data is None:
        assert [text[m.start : m.end] for m in matches] == ["C++", "a.*b"]


def _cs(alias_text: str) -> bool:
    from workers.extract.gazetteer import is_case_sensitive

    return is_case_sensitive(alias_text)


@pytest.mark.parametrize("text", ["", " ", "\n\n", "nya", "-" * 1000])
def test_alias_matcher_degenerate_texts(text: str) -> None:
    matcher = AliasMatcher([("Putin", Entry(label="PER")), ("-", Entry(label="X"))])
    for match in matcher.find(text):
        assert 0 <= match.start < match.end <= len(text)
