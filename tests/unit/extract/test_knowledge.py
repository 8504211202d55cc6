"""Gazetteer knowledge: capitals, cities, news organisations, institutions, countries; no services."""

from __future__ import annotations

from pathlib import Path

import pytest

from workers.extract.gazetteer import AliasMatcher, Match
from workers.extract.knowledge import (
    cased_aliases,
    country_of,
    demonym_entries,
    knowledge_entries,
)

SEED = Path(__file__).parents[3] / "seeds" / "000_f95ec22700e1a343.txt"
ENGLISH = (
    "Pyongyang and Moscow signed the pact, Reuters and the Associated Press reported. "
    "KCNA said troops reached Kursk; Seoul and Washington protested, the Kremlin declined to "
    "comment and the U.S. State Department spoke of NATO and the UN. Fighting near Kharkiv, "
    "Ukraine. As Turkey watched, a turkey was served in Ankara; Jordan and Georgia abstained."
)


@pytest.fixture(scope="module")
def indonesian() -> AliasMatcher:
    return AliasMatcher(knowledge_entries("id"))


@pytest.fixture(scope="module")
def english() -> AliasMatcher:
    return AliasMatcher(knowledge_entries("en", cased=True), case_sensitive=cased_aliases("en"))


def _found(matches: list[Match], text: str) -> dict[str, set[str | None]]:
    found: dict[str, set[str | None]] = {}
    for match in matches:
        found.setdefault(text[match.start : match.end], set()).add(match.entry.canonical)
    return found


def test_knowledge_finds_seed_article_places_agencies_and_bodies(indonesian: AliasMatcher) -> None:
    text = SEED.read_text(encoding="utf-8")
    found = _found(indonesian.find(text), text)
    assert found["Pyongyang"] == {"KP"}
    assert found["Moskow"] == {"RU"}
    assert found["Seoul"] == {"KR"}
    assert found["Ukraina"] == {"UA"}
    assert found["Kursk"] == {"city:ru:kursk"}
    assert found["KCNA"] == {"media:kcna"}
    assert found["Kantor Berita Yonhap"] == {"media:yonhap"}
    assert found["Bloomberg"] == {"media:bloomberg"}
    assert found["Bisnis.com"] == {"media:bisnis"}
    assert found["Kremlin"] == {"RU"}
    assert found["AS"] == {"US"}
    assert "antara" not in found  # "between", not the news agency


def test_knowledge_labels_places_loc_and_bodies_org(indonesian: AliasMatcher) -> None:
    text = "Pyongyang, Kursk, KCNA dan Kremlin"
    labels = [(text[m.start : m.end], m.entry.label) for m in indonesian.find(text)]
    assert labels == [("Pyongyang", "LOC"), ("Kursk", "LOC"), ("KCNA", "ORG"), ("Kremlin", "ORG")]


def test_knowledge_short_caps_alias_only_upper_case(indonesian: AliasMatcher) -> None:
    text = "AS menolak; as roda dan As tidak."
    assert [text[m.start : m.end] for m in indonesian.find(text)] == ["AS"]


def test_knowledge_leaves_out_everyday_words_by_default(indonesian: AliasMatcher) -> None:
    text = "Di medan perang, dalam tempo singkat, antara lain baku tembak di Medan."
    assert _found(indonesian.find(text), text) == {}


def test_knowledge_cased_aliases_match_only_as_written() -> None:
    matcher = AliasMatcher(knowledge_entries("id", cased=True), case_sensitive=cased_aliases("id"))
    text = "Di medan perang, baku tembak di Medan; Tempo dan ANTARA melaporkan dalam tempo singkat."
    found = _found(matcher.find(text), text)
    assert found == {
        "Medan": {"city:id:medan"},
        "Tempo": {"media:tempo"},
        "ANTARA": {"media:antara"},
    }


def test_knowledge_finds_english_equivalents(english: AliasMatcher) -> None:
    found = _found(english.find(ENGLISH), ENGLISH)
    assert found["Pyongyang"] == {"KP"}
    assert found["Moscow"] == {"RU"}
    assert found["Seoul"] == {"KR"}
    assert found["Washington"] == {"US"}
    assert found["Ankara"] == {"TR"}
    assert found["Kursk"] == {"city:ru:kursk"}
    assert found["Kharkiv"] == {"city:ua:kharkiv"}
    assert found["Reuters"] == {"media:reuters"}
    assert found["Associated Press"] == {"media:ap"}
    assert found["KCNA"] == {"media:kcna"}
    assert found["Kremlin"] == {"RU"}
    assert found["U.S. State Department"] == {"org:us:state-department"}
    assert found["NATO"] == {"org:nato"}
    assert found["UN"] == {"org:un"}
    assert found["Ukraine"] == {"UA"}
    assert found["Turkey"] == {"TR"}
    assert found["Jordan"] == {"JO"}
    assert found["Georgia"] == {"GE"}
    assert "turkey" not in found
    assert "As" not in found


def test_knowledge_city_ids_agree_across_languages() -> None:
    ids = {
        language: {alias: entry.canonical for alias, entry in knowledge_entries(language)}
        for language in ("id", "en")
    }
    assert ids["id"]["Sankt Peterburg"] == ids["en"]["St. Petersburg"] == "city:ru:saint-petersburg"
    assert ids["id"]["Moskow"] == ids["en"]["Moscow"] == "RU"


def test_knowledge_country_of_reads_every_kind_of_id() -> None:
    assert country_of("KP") == "KP"
    assert country_of("city:ru:kursk") == "RU"
    assert country_of("org:us:pentagon") == "US"
    assert country_of("org:nato") is None
    assert country_of("media:reuters") is None
    assert country_of(None) is None


def test_knowledge_canonical_ids_are_iso_codes_or_lower_case_slugs() -> None:
    for language in ("id", "en"):
        for alias, entry in knowledge_entries(language, cased=True):
            canonical = entry.canonical or ""
            assert (len(canonical) == 2 and canonical.isupper()) or (
                canonical == canonical.lower() and ":" in canonical
            ), (language, alias, canonical)


def test_knowledge_demonyms_are_norp_and_kept_apart() -> None:
    demonyms = dict(demonym_entries("en"))
    assert demonyms["North Korean"].label == "NORP"
    assert demonyms["North Korean"].canonical == "KP"
    assert "North Korean" not in dict(knowledge_entries("en", cased=True))
