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
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import srsly
from spacy.language import Language
from spacy.symbols import ORTH
from spacy.tokenizer import Tokenizer
from spacy.util import registry

LEAN_TOKENIZER = "pantau.lean_tokenizer.v1"


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
    for attribute, method in (
        ("prefix_search", "search"),
        ("suffix_search", "search"),
        ("infix_finditer", "finditer"),
        ("url_match", "match"),
    ):
        if isinstance(data.get(attribute), str):
            setattr(tokenizer, attribute, getattr(re.compile(data[attribute]), method))
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
