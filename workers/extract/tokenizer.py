"""A trained pipeline's own tokenizer, with hyphenated-word exceptions kept out of memory.

spaCy's Indonesian tokenizer has 15,963 exceptions, 15,614 of them hyphenated words kept as one
token ("anak-anak", "bolak-balik"). Each exception is a special case with its own token array
and phrase-matcher pattern: ~60 MB per process, a seventh of an extract worker. Here those words
are one frozenset that `token_match` looks up, at the same points of the affix loop where the
special cases were looked up; every other exception stays a special case, and the prefix,
suffix and infix rules are the ones the pipeline was trained with (read from its `tokenizer`
file). On 5,015 texts (1,000 IndoSum articles, idner-news-2k train and dev) the tokens are
identical. One difference is known: a hyphenated word glued to another word by a hyphen
("Korea-abu-abu") is split at every hyphen, where the phrase matcher re-joined "abu-abu".

The affix rules are large regular expressions (the suffix rules alone are 14,000 characters)
that Python's `re` tries alternative by alternative, position by position, several calls per
word. The Indonesian prefix rules took 8-17 microseconds a call on news words: they hold one
alternative not anchored at the start (`<a([^>]+)>`), so even they are tried at every
position. spaCy's tokenizer cache spares most of those calls, but it is off inside a memory
zone, where extraction runs after its first articles (`pipeline.LEARN_ARTICLES`). So each affix
function keeps its results for the most recently seen strings (`AFFIX_CACHE`): they are pure
functions of the string, and what they keep (strings and match objects) holds nothing of the
vocabulary.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import srsly
from spacy.language import Language
from spacy.symbols import ORTH
from spacy.tokenizer import Tokenizer
from spacy.util import registry

LEAN_TOKENIZER = "pantau.lean_tokenizer.v1"

# Strings whose affix results each of the three affix functions keeps. The Indonesian pipeline
# as the workers load it, tokenising IndoSum's 3,263 articles in memory zones: 12.0-12.3 ms per
# article without the caches, 6.2-6.4 / 4.5-4.8 / 4.2-4.4 ms with 4,096 / 8,192 / 16,384 strings
# each, for +1.4 / +2.9 / +6.9 MB of RSS.
AFFIX_CACHE = 8_192


def remembered(function: Callable[[str], Any], size: int = AFFIX_CACHE) -> Callable[[str], Any]:
    """`function`, a pure function of one string, keeping its results for the `size` most
    recently used strings.

    The wrapper does not pickle, so neither does a tokenizer holding it (its `to_bytes` already
    failed on `token_match`); nothing here pickles one. A class with `__reduce__` would, but its
    Python-level `__call__` costs ~0.3 microseconds a call, ~0.3 ms per article.
    """
    return functools.lru_cache(maxsize=size)(function)


def all_matches(finditer: Callable[[str], Iterator[re.Match[str]]]) -> Callable[[str], Any]:
    """`finditer` returning a tuple (which can be kept and read again) instead of an iterator."""

    def matches(string: str) -> tuple[re.Match[str], ...]:
        return tuple(finditer(string))

    return matches


def split_exceptions(
    rules: dict[str, list[dict[int, str]]],
) -> tuple[frozenset[str], dict[str, list[dict[int, str]]]]:
    """(hyphenated words that are one plain token, every other exception)."""
    words = frozenset(
        string
        for string, tokens in rules.items()
        if "-" in string and len(tokens) == 1 and tokens[0] == {ORTH: string}
    )
    return words, {string: tokens for string, tokens in rules.items() if string not in words}


def lean_tokenizer_from_disk(nlp: Language, path: Path) -> Tokenizer:
    """The tokenizer serialised at `path` (a pipeline's `tokenizer` file), made lean."""
    data: dict[str, Any] = srsly.msgpack_loads(path.read_bytes())
    rules = {
        string: [{int(attr): value for attr, value in token.items()} for token in tokens]
        for string, tokens in (data.get("exceptions") or {}).items()
    }
    tokenizer = Tokenizer(nlp.vocab)
    if isinstance(data.get("prefix_search"), str):
        tokenizer.prefix_search = remembered(re.compile(data["prefix_search"]).search)
    if isinstance(data.get("suffix_search"), str):
        tokenizer.suffix_search = remembered(re.compile(data["suffix_search"]).search)
    if isinstance(data.get("infix_finditer"), str):
        tokenizer.infix_finditer = remembered(
            all_matches(re.compile(data["infix_finditer"]).finditer)
        )
    if isinstance(data.get("url_match"), str):
        tokenizer.url_match = re.compile(data["url_match"]).match
    if "faster_heuristics" in data:
        tokenizer.faster_heuristics = data["faster_heuristics"]
    if isinstance(data.get("token_match"), str):
        # The pipeline has its own token_match: keep it and every exception as they are.
        tokenizer.token_match = re.compile(data["token_match"]).match
        tokenizer.rules = rules
        return tokenizer
    words, rest = split_exceptions(rules)
    tokenizer.token_match = words.__contains__
    tokenizer.rules = rest  # last, as spaCy does: special cases are tokenised with the rules above
    return tokenizer


@registry.tokenizers(LEAN_TOKENIZER)
def create_lean_tokenizer(path: str) -> Callable[[Language], Tokenizer]:
    """Config entry: `[nlp.tokenizer] @tokenizers = "pantau.lean_tokenizer.v1", path = ...`."""

    def factory(nlp: Language) -> Tokenizer:
        return lean_tokenizer_from_disk(nlp, Path(path))

    return factory


def load_lean(model_path: Path) -> Language:
    """`spacy.load` with the lean tokenizer: the default one is never built, nor read back."""
    import spacy

    return spacy.load(
        model_path,
        exclude=["tokenizer"],
        config={
            "nlp": {
                "tokenizer": {"@tokenizers": LEAN_TOKENIZER, "path": str(model_path / "tokenizer")}
            }
        },
    )
