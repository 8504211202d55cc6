"""Character-level alias matching: case-insensitive, whole-word, hyphen = space, `-nya` tolerated.

Matching runs on a folded copy of the text that has exactly the same length, so every match's
offsets index the original text.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import ahocorasick

_DASHES = "-\u2010\u2011\u2012\u2013\u2014\u2212"
_FOLD = str.maketrans({**{d: " " for d in _DASHES}, "\n": " ", "\t": " ", "\u00a0": " "})
CLITICS = ("nya",)  # Indonesian -nya: "Putinnya", "Rusia-nya"


@dataclass(frozen=True)
class Entry:
    """What an alias stands for."""

    label: str
    canonical: str | None = None
    actor_id: str | None = None


@dataclass(frozen=True)
class Match:
    """One alias occurrence in a text."""

    start: int
    end: int
    entry: Entry


def fold(text: str) -> str:
    """Lower-case, dashes and line breaks to spaces, keeping the length (offsets stay valid)."""
    lowered = text.lower()
    if len(lowered) != len(text):  # a few characters lower-case to two (e.g. "İ")
        lowered = "".join(c.lower() if len(c.lower()) == 1 else c for c in text)
    return lowered.translate(_FOLD)


def _fold_case_sensitive(text: str) -> str:
    return text.translate(_FOLD)


def is_case_sensitive(alias: str) -> bool:
    """Short all-caps aliases ("AS", "UN") only match as written: "as" is a common word."""
    letters = [c for c in alias if c.isalpha()]
    return len(letters) <= 3 and alias.isupper()


def _word_boundary_ok(text: str, start: int, end: int) -> bool:
    if start > 0 and text[start - 1].isalnum():
        return False
    if end >= len(text) or not text[end].isalnum():
        return True
    for clitic in CLITICS:
        stop = end + len(clitic)
        if text[end:stop].lower() == clitic and (stop >= len(text) or not text[stop].isalnum()):
            return True
    return False


class AliasMatcher:
    """Finds every alias of a gazetteer in a text, leftmost-longest, without overlaps."""

    def __init__(
        self, entries: Iterable[tuple[str, Entry]], case_sensitive: Iterable[str] = ()
    ) -> None:
        """`case_sensitive`: aliases that are everyday words too ("Turkey", "Medan"); they match
        only as written or in capitals, like short all-caps aliases do."""
        self._insensitive = ahocorasick.Automaton()
        self._sensitive = ahocorasick.Automaton()
        cased = frozenset(case_sensitive)
        table: dict[tuple[bool, str], list[Entry]] = {}
        for alias, entry in entries:
            sensitive = alias in cased or is_case_sensitive(alias)
            forms = (alias, alias.upper()) if alias in cased else (alias,)
            for form in forms:
                key = " ".join((_fold_case_sensitive(form) if sensitive else fold(form)).split())
                if key:
                    table.setdefault((sensitive, key), []).append(entry)
        for (sensitive, key), found in table.items():
            automaton = self._sensitive if sensitive else self._insensitive
            automaton.add_word(key, (len(key), tuple(dict.fromkeys(found))))
        self.size = len(table)
        for automaton in (self._insensitive, self._sensitive):
            if len(automaton):
                automaton.make_automaton()

    def find(self, text: str) -> list[Match]:
        """Non-overlapping matches; where several entries share an alias, the first one wins."""
        candidates: list[tuple[int, int, Entry]] = []
        for automaton, folded in (
            (self._insensitive, fold),
            (self._sensitive, _fold_case_sensitive),
        ):
            if not len(automaton):
                continue
            haystack = folded(text)
            for last, (length, found) in automaton.iter(haystack):
                start, end = last - length + 1, last + 1
                if _word_boundary_ok(text, start, end):
                    candidates.append((start, end, found[0]))
        candidates.sort(key=lambda c: (c[0], c[0] - c[1]))
        matches: list[Match] = []
        covered_to = -1
        for start, end, entry in candidates:
            if start >= covered_to:
                matches.append(Match(start, end, entry))
                covered_to = end
        return matches
