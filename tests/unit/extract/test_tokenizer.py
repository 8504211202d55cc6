"""The lean tokenizer splits text exactly as the pipeline's own tokenizer does."""

from __future__ import annotations

import pytest
import spacy
from spacy.symbols import NORM, ORTH

from workers.extract.tokenizer import AFFIX_CACHE, split_exceptions
from workers.resources import models_dir

TRICKY = [
    "Anak-anak bermain bolak-balik di Jakarta-Bandung, (abu-abu) dan ANAK-ANAK.",
    "Harga naik 5-10 persen pada 2023-2024; Jum'at, 12 Agu. 2024 pukul 10.30 WIB.",
    'Menlu Choe Son-hui tiba di Moskow... "Kerja sama-sama!" kata-nya :) https://x.id/a-b',
    "anak-anak. anak-anak, -anak-anak- anak--anak e-mail e-KTP ke-2 ke-20 pasca-pemilu",
    "Trump's co-operation with the U.S. state-of-the-art e-mail isn't well-known, y'all.",
]


@pytest.mark.parametrize("language", ["id", "en"])
def test_lean_tokenizer_gives_the_shipped_tokens(language: str, seed_text: str) -> None:
    from workers.extract.tokenizer import load_lean

    path = models_dir() / language
    if not (path / "config.cfg").exists():
        pytest.skip(f"no trained {language} pipeline")
    standard = spacy.load(path)
    lean = load_lean(path)
    assert len(lean.tokenizer.rules) < len(standard.tokenizer.rules) or language == "en"
    for text in [seed_text, *TRICKY]:
        expected = [(t.idx, t.text) for t in standard.make_doc(text)]
        assert [(t.idx, t.text) for t in lean.make_doc(text)] == expected, text


def test_split_exceptions_keeps_every_exception_that_is_not_a_plain_hyphen_word() -> None:
    rules = {
        "anak-anak": [{ORTH: "anak-anak"}],
        "Agu.": [{ORTH: "Agu.", NORM: "Agustus"}],
        "x-y": [{ORTH: "x-y", NORM: "xy"}],
        "°C.": [{ORTH: "°"}, {ORTH: "C"}, {ORTH: "."}],
        "a-b.": [{ORTH: "a-b"}, {ORTH: "."}],
    }
    words, rest = split_exceptions(rules)
    assert words == {"anak-anak"}
    assert set(rest) == {"Agu.", "x-y", "°C.", "a-b."}


@pytest.mark.parametrize("language", ["id", "en"])
def test_lean_tokenizer_gives_the_same_tokens_from_its_affix_caches(
    language: str, seed_text: str
) -> None:
    """A second pass over the same texts reads the affix results back from the caches, and a
    memory zone turns spaCy's own cache off: the tokens stay the shipped ones."""
    from workers.extract.tokenizer import load_lean

    path = models_dir() / language
    if not (path / "config.cfg").exists():
        pytest.skip(f"no trained {language} pipeline")
    standard = spacy.load(path)
    lean = load_lean(path)
    texts = [seed_text, *TRICKY]
    expected = [[(t.idx, t.text) for t in standard.make_doc(text)] for text in texts]
    for _ in range(2):
        with lean.memory_zone():
            assert [[(t.idx, t.text) for t in lean.make_doc(text)] for text in texts] == expected
    assert lean.tokenizer.suffix_search.cache_info().hits > 0
    for affixes in (lean.tokenizer.prefix_search, lean.tokenizer.infix_finditer):
        assert affixes.cache_info().maxsize == AFFIX_CACHE  # bounded: a worker's RSS stays flat
