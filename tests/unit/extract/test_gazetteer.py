"""Alias matching: case, whole words, -nya, hyphen/space variants, offsets into the original text."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from workers.extract.gazetteer import AliasMatcher, Entry, fold

KIM = Entry("PER", canonical="kim-jong-un", actor_id="kim-jong-un")
US = Entry("LOC", canonical="US")


def _found(matcher: AliasMatcher, text: str) -> list[str]:
    return [text[m.start : m.end] for m in matcher.find(text)]


def test_matcher_case_insensitive_whole_word_and_hyphen_variants() -> None:
    matcher = AliasMatcher([("Kim Jong Un", KIM)])
    text = "KIM JONG UN tiba. Kim Jong-un pergi. Kim Jong Unxx bukan. kim  jong un? tidak."
    assert _found(matcher, text) == ["KIM JONG UN", "Kim Jong-un"]


def test_matcher_tolerates_nya_clitic() -> None:
    matcher = AliasMatcher([("Rusia", US)])
    assert _found(matcher, "sekutu Rusianya dan Rusia-nya, bukan Rusiawi") == ["Rusia", "Rusia"]


def test_matcher_short_caps_alias_is_case_sensitive() -> None:
    matcher = AliasMatcher([("AS", US)])
    assert _found(matcher, "AS menuduh; as roda; As well") == ["AS"]


def test_matcher_prefers_longest_leftmost() -> None:
    matcher = AliasMatcher([("Korea", Entry("LOC")), ("Korea Utara", Entry("LOC", canonical="KP"))])
    matches = matcher.find("pasukan Korea Utara tiba")
    assert [(m.start, m.end, m.entry.canonical) for m in matches] == [(8, 19, "KP")]


@given(st.text(max_size=200))
def test_fold_keeps_length(text: str) -> None:
    assert len(fold(text)) == len(text)


@given(st.text(alphabet="Kim Jong-unİıß\u0301 \n", max_size=80))
def test_matcher_offsets_index_the_text(text: str) -> None:
    matcher = AliasMatcher([("Kim Jong Un", KIM)])
    for match in matcher.find(text):
        assert fold(text[match.start : match.end]).split() == ["kim", "jong", "un"]
