"""Person titles: "Presiden Rusia Vladimir Putin" is the name "Vladimir Putin" with the title "Presiden Rusia".

A title is, token by token: an optional modifier ("mantan", "former"), in English optional
qualifiers ("Russian", "State Department"), one or more title phrases ("Prof. Dr.", "Menteri Luar
Negeri", "juru bicara"), an optional connector ("of the") and qualifiers: countries, capitals,
cities, organisations, demonyms and institution heads from lang/<code>/ ("Korea Utara",
"Departemen Luar Negeri AS"). Everything is matched as written: capitalised titles and
lower-case role nouns are listed separately. Offsets always index the original text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from workers.extract.knowledge import (
    LANGUAGES,
    demonym_entries,
    knowledge_entries,
    language_data,
)

# Words keep inner dots, apostrophes and hyphens ("Dr.", "U.S.", "Workers'", "Jong-un"); other
# punctuation is a token of its own, so "AS," is "AS" then ",".
_TOKEN = re.compile(r"[\w.'\u2019\-]+|[^\w\s]")
_WINDOW = 200  # characters before a name searched for its title
_MAX_QUALIFIERS = 4

Phrase = tuple[str, ...]


def _is_gap(text: str) -> bool:
    """Spaces between words of one title; a line break ends a title (headline, paragraph)."""
    return bool(text) and text.isspace() and "\n" not in text


def _phrase(text: str) -> Phrase:
    return tuple(_TOKEN.findall(text))


@dataclass(frozen=True)
class _Lexicon:
    titles: frozenset[Phrase]
    qualifiers: frozenset[Phrase]
    modifiers: frozenset[Phrase]
    connectors: frozenset[Phrase]
    qualifier_first: bool
    longest: int

    @classmethod
    def build(cls, language: str) -> _Lexicon:
        data = language_data(language)
        titles = {_phrase(t) for t in [*data.TITLES, *data.ROLE_NOUNS]}
        names = [alias for alias, _ in knowledge_entries(language, cased=True)]
        names += [alias for alias, _ in demonym_entries(language, cased=True)]
        names += data.TITLE_INSTITUTIONS
        qualifiers = {_phrase(name) for name in names}
        phrases = titles | qualifiers
        return cls(
            titles=frozenset(titles),
            qualifiers=frozenset(q for q in qualifiers if q),
            modifiers=frozenset(_phrase(m) for m in data.TITLE_MODIFIERS),
            connectors=frozenset(_phrase(c) for c in data.TITLE_CONNECTORS),
            qualifier_first=data.QUALIFIER_BEFORE_TITLE,
            longest=max(len(p) for p in phrases),
        )


_LEXICONS = {code: _Lexicon.build(code) for code in LANGUAGES}


def _lexicon(language: str) -> _Lexicon:
    return _LEXICONS.get(language, _LEXICONS["en"])


class _Tokens:
    """Tokens of a text slice with their offsets, and phrase lookups over runs of them."""

    def __init__(self, text: str, start: int, end: int) -> None:
        self.text = text
        found = [(m.start(), m.end(), m.group()) for m in _TOKEN.finditer(text, start, end)]
        self.starts = [s for s, _, _ in found]
        self.ends = [e for _, e, _ in found]
        self.words = [w for _, _, w in found]

    def __len__(self) -> int:
        return len(self.words)

    def spaced(self, i: int, j: int) -> bool:
        """Tokens i..j-1 are separated by whitespace only (a phrase never spans punctuation)."""
        return all(_is_gap(self.text[self.ends[k] : self.starts[k + 1]]) for k in range(i, j - 1))

    def phrase_ending(self, j: int, phrases: frozenset[Phrase], longest: int) -> list[int]:
        """Starts i (longest first) where tokens i..j-1 form one of `phrases`, spaced from token j."""
        if j < len(self) and not self.spaced(j - 1, j + 1):
            return []
        return [
            i
            for i in range(max(0, j - longest), j)
            if tuple(self.words[i:j]) in phrases and self.spaced(i, j)
        ]

    def phrase_starting(self, i: int, phrases: frozenset[Phrase], longest: int) -> list[int]:
        """Ends j (longest first) where tokens i..j-1 form one of `phrases`, spaced from token i-1."""
        if i >= len(self) or (i > 0 and not self.spaced(i - 1, i + 1)):
            return []
        return [
            j
            for j in range(min(len(self), i + longest), i, -1)
            if tuple(self.words[i:j]) in phrases and self.spaced(i, j)
        ]


def _title_start(tokens: _Tokens, end: int, lexicon: _Lexicon) -> int | None:
    """The first token of the longest title ending just before token `end`, if any."""
    ends = {end}
    frontier = {end}
    for _ in range(_MAX_QUALIFIERS):  # qualifiers after the title: "... Korea Utara"
        frontier = {
            i
            for j in frontier
            for i in tokens.phrase_ending(j, lexicon.qualifiers, lexicon.longest)
        }
        ends |= frontier
    for j in list(ends):
        if j != end:
            ends.update(tokens.phrase_ending(j, lexicon.connectors, lexicon.longest))
    best: int | None = None
    for j in ends:
        found = tokens.phrase_ending(j, lexicon.titles, lexicon.longest)
        if not found:
            continue
        first = min(found)
        while more := tokens.phrase_ending(first, lexicon.titles, lexicon.longest):
            first = min(more)  # stacked titles: "Prof. Dr."
        first = _extend_left(tokens, first, lexicon)
        if best is None or first < best:
            best = first
    return best


def _extend_left(tokens: _Tokens, start: int, lexicon: _Lexicon) -> int:
    if lexicon.qualifier_first:  # "former U.S. President", "North Korean leader"
        for _ in range(_MAX_QUALIFIERS):
            found = tokens.phrase_ending(start, lexicon.qualifiers, lexicon.longest)
            if not found:
                break
            start = min(found)
    found = tokens.phrase_ending(start, lexicon.modifiers, lexicon.longest)
    return min(found) if found else start


def title_before(text: str, start: int, language: str) -> tuple[int, str] | None:
    """The title immediately before a name starting at `start`: (its start, its text), or None.

    "Menteri Luar Negeri Choe Son Hui" with the name at "Choe" gives "Menteri Luar Negeri";
    "juru bicara Departemen Luar Negeri AS, Matthew Miller" gives everything before the comma.
    """
    window = max(0, start - _WINDOW)
    tokens = _Tokens(text, window, start)
    end = len(tokens)
    if window > 0 and end:  # the first token may be cut by the window
        tokens.starts, tokens.ends, tokens.words = (
            tokens.starts[1:],
            tokens.ends[1:],
            tokens.words[1:],
        )
        end -= 1
    if not end:
        return None
    gap = text[tokens.ends[end - 1] : start]
    if tokens.words[end - 1] == ",":  # "..., Matthew Miller"
        if gap and not _is_gap(gap):
            return None
        end -= 1
        if not end:
            return None
        gap = text[tokens.ends[end - 1] : tokens.starts[end]]
        if gap and not _is_gap(gap):
            return None
    elif not _is_gap(gap):
        return None
    del tokens.starts[end:], tokens.ends[end:], tokens.words[end:]
    first = _title_start(tokens, end, _lexicon(language))
    if first is None:
        return None
    title_start, title_end = tokens.starts[first], tokens.ends[end - 1]
    return title_start, text[title_start:title_end]


def split_title(text: str, start: int, end: int, language: str) -> tuple[int, int, str | None]:
    """Split a leading title off an entity span: (name start, name end, title or None).

    "Presiden Rusia Vladimir Putin" -> the span of "Vladimir Putin" and "Presiden Rusia". The
    span is returned unchanged, with None, when it does not open with a title or would leave
    no capitalised name.
    """
    lexicon = _lexicon(language)
    tokens = _Tokens(text, start, end)
    if len(tokens) < 2:
        return start, end, None
    best: int | None = None  # index of the first name token
    for title_end in _title_ends(tokens, lexicon):
        for name in _qualified_ends(tokens, title_end, lexicon):
            if (
                name < len(tokens)
                and tokens.spaced(name - 1, name + 1)
                and tokens.words[name][:1].isupper()
                and tuple(tokens.words[name:]) not in lexicon.qualifiers
            ):
                if best is None or name > best:
                    best = name
                break
    if best is None:
        return start, end, None
    title = text[tokens.starts[0] : tokens.ends[best - 1]]
    return tokens.starts[best], end, title


def _title_ends(tokens: _Tokens, lexicon: _Lexicon) -> list[int]:
    """Token indexes just past an opening title (modifier, English qualifiers, stacked titles)."""
    opening = {0}
    opening.update(tokens.phrase_starting(0, lexicon.modifiers, lexicon.longest))
    if lexicon.qualifier_first:
        frontier = set(opening)
        for _ in range(_MAX_QUALIFIERS):
            frontier = {
                j
                for i in frontier
                for j in tokens.phrase_starting(i, lexicon.qualifiers, lexicon.longest)
            }
            opening |= frontier
    ends: list[int] = []
    for i in sorted(opening):
        found = tokens.phrase_starting(i, lexicon.titles, lexicon.longest)
        while found:
            ends.append(found[0])
            found = tokens.phrase_starting(found[0], lexicon.titles, lexicon.longest)
    return sorted(set(ends), reverse=True)


def _qualified_ends(tokens: _Tokens, i: int, lexicon: _Lexicon) -> list[int]:
    """Where a name may start after the title ending at `i`: after most qualifiers first."""
    after_connector = tokens.phrase_starting(i, lexicon.connectors, lexicon.longest)
    ends: list[int] = []
    for first in [*after_connector, i]:
        position = first
        chain = []
        for _ in range(_MAX_QUALIFIERS):
            found = tokens.phrase_starting(position, lexicon.qualifiers, lexicon.longest)
            if not found:
                break
            position = found[0]
            chain.append(position)
        ends.extend(reversed(chain))
    return [*ends, i]
