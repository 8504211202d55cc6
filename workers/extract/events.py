"""Rule-based PLOVER event coding for Indonesian and English news: who did what to whom.

The coder is pure (no Celery, no Redis): `code_events(doc, entities, lexicon)` takes a spaCy `Doc`
(tokenizer + sentence boundaries; no parser or tagger needed), the article's entities and an
`EventLexicon` loaded from ``config/events/<lang>.yaml``, and returns `Event` records.

Per sentence it

1. finds triggers: every token is reduced to candidate roots (Indonesian affix stripping with nasal
   restoration plus spaCy's lookup lemmas; English lookup lemmas plus a small suffix stripper) and
   looked up in the lexicon; multi-word triggers and `near`-word disambiguation come from the YAML;
2. fills roles with clause-level rules: source = nearest actor before the trigger that is not the
   object of a preposition, target = direct object or the object of a role preposition after it;
   passives (``di-``/``ter-`` verbs, English ``was X-ed by``) swap them; "pasukan Korea Utara"
   becomes the country;
3. sets negation and context (future / hypothetical / historical / reported) from cue words in a
   window around the trigger, and picks up a location (``di``/``in`` + LOC) and a stated date.

Everything language-specific is data in the YAML; lookups are compiled once per lexicon and the
per-word analysis is cached, so the cost per token is a dict lookup.
"""

from __future__ import annotations

import bisect
import gzip
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from workers.domain import Entity, EntityRef, Event, Span

__all__ = [
    "CONFIG_DIR",
    "PLOVER_TYPES",
    "EventLexicon",
    "code_events",
    "evaluate_events",
    "evaluate_gold_file",
    "format_event_report",
    "load_gold",
]

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config" / "events"

PLOVER_TYPES = (
    "AGREE", "CONSULT", "SUPPORT", "CONCEDE", "COOPERATE", "AID", "RETREAT", "REQUEST",
    "ACCUSE", "REJECT", "THREATEN", "PROTEST", "SANCTION", "MOBILIZE", "COERCE", "ASSAULT",
)  # fmt: skip

_CONTEXT_ORDER = ("hypothetical", "future", "historical", "reported")
_QUOTES = frozenset({'"', "“", "”", "''", "``"})
_SENT_END = frozenset({".", "!", "?"})
_WORD_STRIP = "\"'“”‘’()[]{}.,;:!?"


# --------------------------------------------------------------------------- morphology


def _lookup_table(lang: str) -> dict[str, str]:
    """spaCy's lookup lemma table from spacy-lookups-data, loaded once per language."""
    return _load_lookup(lang)


@lru_cache(maxsize=4)
def _load_lookup(lang: str) -> dict[str, str]:
    try:
        import spacy_lookups_data  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - the data package is a dependency
        return {}
    path = Path(spacy_lookups_data.__file__).parent / "data" / f"{lang}_lemma_lookup.json.gz"
    if not path.exists():
        return {}
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        table = json.load(fh)
    return {k.lower(): v.lower() for k, v in table.items() if isinstance(v, str)}


_ID_CLITICS = ("nya", "lah", "kah", "pun")
_ID_SUFFIXES = ("kan", "an", "i")
# prefix -> replacements for the first letter of the root (nasal restoration)
_ID_PREFIXES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("memper", ("", "per")),
    ("diper", ("", "per")),
    ("meny", ("s",)),
    ("meng", ("", "k")),
    ("mem", ("p", "")),
    ("men", ("t", "")),
    ("me", ("",)),
    ("peny", ("s",)),
    ("peng", ("", "k")),
    ("pem", ("p", "")),
    ("pen", ("t", "")),
    ("per", ("",)),
    ("pe", ("",)),
    ("ber", ("",)),
    ("be", ("",)),
    ("ter", ("",)),
    ("di", ("",)),
    ("ke", ("",)),
)


def indonesian_candidates(word: str) -> tuple[str, ...]:
    """Possible roots of an Indonesian word, most literal first (no dictionary check).

    ``mengirim -> kirim``, ``dikirim -> kirim``, ``pengiriman -> kirim``, ``memberikan -> beri``.
    """
    w = word.lower().strip(_WORD_STRIP)
    if not w:
        return ()
    bases = [w]
    for clitic in _ID_CLITICS:
        if w.endswith(clitic) and len(w) - len(clitic) >= 3:
            bases.append(w[: -len(clitic)])
    out: list[str] = []
    seen: set[str] = set()

    def add(x: str) -> None:
        if len(x) >= 3 and x not in seen:
            seen.add(x)
            out.append(x)

    for base in bases:
        add(base)
        stems = [base]
        for suf in _ID_SUFFIXES:
            if base.endswith(suf) and len(base) - len(suf) >= 3:
                stems.append(base[: -len(suf)])
        for stem in stems:
            add(stem)
            for pre, reps in _ID_PREFIXES:
                if stem.startswith(pre) and len(stem) - len(pre) >= 2:
                    rest = stem[len(pre) :]
                    for rep in reps:
                        add(rep + rest)
                        # a second prefix (diper-, keber-, memper-) or ke-...-an around per-
                        for pre2, reps2 in (("per", ("",)), ("ber", ("",)), ("pe", ("",))):
                            if rest.startswith(pre2) and len(rest) - len(pre2) >= 3:
                                for r2 in reps2:
                                    add(r2 + rest[len(pre2) :])
    return tuple(out)


_EN_IRREGULAR = {
    "met": "meet", "meets": "meet", "fought": "fight", "sought": "seek", "struck": "strike",
    "shot": "shoot", "sent": "send", "held": "hold", "withdrew": "withdraw",
    "withdrawn": "withdraw", "gave": "give", "given": "give", "took": "take", "taken": "take",
    "threw": "throw", "spoke": "speak", "spoken": "speak", "told": "tell", "said": "say",
    "began": "begin", "begun": "begin", "came": "come", "led": "lead", "beat": "beat",
    "beaten": "beat", "stole": "steal", "stolen": "steal", "forbade": "forbid",
    "forbidden": "forbid", "bound": "bind", "swore": "swear", "sworn": "swear",
}  # fmt: skip


def english_candidates(word: str, table: dict[str, str] | None = None) -> tuple[str, ...]:
    """Possible lemmas of an English word: the word, a lookup lemma and suffix-stripped forms."""
    w = word.lower().strip(_WORD_STRIP)
    if not w:
        return ()
    out: list[str] = [w]
    if table is not None and w in table:
        out.append(table[w])
    if w in _EN_IRREGULAR:
        out.append(_EN_IRREGULAR[w])
    if w.endswith("ies") and len(w) > 4:
        out.append(w[:-3] + "y")
    if w.endswith("ied") and len(w) > 4:
        out.append(w[:-3] + "y")
    if w.endswith("es") and len(w) > 4:
        out.append(w[:-2])
    if w.endswith("s") and not w.endswith("ss") and len(w) > 3:
        out.append(w[:-1])
    if w.endswith("ed") and len(w) > 4:
        out.extend((w[:-2], w[:-1]))
        if len(w) > 5 and w[-3] == w[-4]:
            out.append(w[:-3])
    if w.endswith("ing") and len(w) > 5:
        out.extend((w[:-3], w[:-3] + "e"))
        if w[-4] == w[-5]:
            out.append(w[:-4])
    seen: set[str] = set()
    return tuple(x for x in out if not (x in seen or seen.add(x)))


# --------------------------------------------------------------------------- lexicon


@dataclass(frozen=True)
class TriggerEntry:
    """One trigger of the lexicon: a root or a phrase, with its conditions."""

    type: str
    cameo_root: str | None
    words: tuple[str, ...]
    forms: frozenset[str] | None = None
    exclude: frozenset[str] = frozenset()
    near: frozenset[str] | None = None
    window: int = 6
    nominal: bool = False

    @property
    def is_phrase(self) -> bool:
        return len(self.words) > 1


@dataclass
class _Cues:
    window: int = 4
    cues: frozenset[str] = frozenset()
    conditionals: frozenset[str] = frozenset()


@dataclass
class EventLexicon:
    """Trigger lexicon and cue lists for one language, compiled for fast lookup."""

    language: str
    morphology: str
    types: dict[str, str | None]
    entries: list[TriggerEntry]
    negation: frozenset[str]
    skip_words: frozenset[str]
    future: _Cues
    hypothetical: _Cues
    historical_re: re.Pattern[str] | None
    reported_anywhere: frozenset[str]
    reported_before: frozenset[str]
    reported_after: frozenset[str]
    speech_act_types: frozenset[str]
    complement_types: frozenset[str]
    target_preps: frozenset[str]
    location_preps: frozenset[str]
    agent_preps: frozenset[str]
    not_source: frozenset[str]
    coordination: frozenset[str]
    passive_prefixes: tuple[str, ...]
    passive_aux: frozenset[str]
    clause_breaks: frozenset[str]
    complement_markers: frozenset[str]
    verbal_markers: frozenset[str]
    object_fillers: frozenset[str]
    determiners: frozenset[str]
    light_nouns: tuple[tuple[str, ...], ...]
    stop_phrases: tuple[tuple[str, ...], ...]
    date_res: tuple[re.Pattern[str], ...]
    symmetric_types: frozenset[str]
    movement_types: frozenset[str]
    path: Path | None = None
    light_nouns_flat: frozenset[str] = frozenset()
    _by_key: dict[str, list[TriggerEntry]] = field(default_factory=dict, repr=False)
    _stop_heads: dict[str, list[tuple[str, ...]]] = field(default_factory=dict, repr=False)
    _cand_cache: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False)
    _entry_cache: dict[str, tuple[TriggerEntry, ...]] = field(default_factory=dict, repr=False)

    # ----------------------------------------------------------------- loading

    @classmethod
    def for_language(cls, lang: str, config_dir: str | Path | None = None) -> EventLexicon:
        """The lexicon of ``lang`` ("id", "en") from ``config/events/<lang>.yaml``."""
        base = Path(config_dir) if config_dir is not None else CONFIG_DIR
        return cls.load(base / f"{lang.lower().split('-')[0]}.yaml")

    @classmethod
    def load(cls, path: str | Path) -> EventLexicon:
        """Read and compile a lexicon YAML file."""
        path = Path(path)
        with path.open(encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
        return cls.from_dict(data, path=path)

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: Path | None = None) -> EventLexicon:
        lang = str(data.get("language", "id"))
        morph = str(data.get("morphology", "indonesian" if lang == "id" else "english"))

        def words(key: str, src: dict[str, Any] | None = None) -> frozenset[str]:
            src = data if src is None else src
            return frozenset(str(x).lower() for x in (src.get(key) or []))

        types: dict[str, str | None] = {}
        entries: list[TriggerEntry] = []
        for typ, spec in (data.get("types") or {}).items():
            if typ not in PLOVER_TYPES:
                raise ValueError(f"{path}: unknown PLOVER type {typ!r}")
            spec = spec or {}
            root_code = spec.get("cameo_root")
            types[typ] = str(root_code) if root_code is not None else None
            for item in spec.get("triggers") or []:
                if isinstance(item, str):
                    item = {"root": item}
                if "phrase" in item:
                    ws = tuple(str(item["phrase"]).lower().split())
                else:
                    ws = (str(item["root"]).lower(),)
                cameo = item.get("cameo_root", root_code)
                entries.append(
                    TriggerEntry(
                        type=typ,
                        cameo_root=str(cameo) if cameo is not None else None,
                        words=ws,
                        forms=frozenset(str(f).lower() for f in item["forms"])
                        if item.get("forms")
                        else None,
                        exclude=frozenset(str(f).lower() for f in item.get("exclude") or []),
                        near=frozenset(str(f).lower() for f in item["near"])
                        if item.get("near")
                        else None,
                        window=int(item.get("window", 6)),
                        nominal=bool(item.get("nominal", False)),
                    )
                )
        ctx = data.get("context") or {}
        fut = ctx.get("future") or {}
        hyp = ctx.get("hypothetical") or {}
        hist = (ctx.get("historical") or {}).get("patterns") or []
        rep = ctx.get("reported") or {}
        roles = data.get("roles") or {}
        hist_re = re.compile("|".join(f"(?:{p})" for p in hist), re.IGNORECASE) if hist else None
        lex = cls(
            language=lang,
            morphology=morph,
            types=types,
            entries=entries,
            negation=words("negation"),
            skip_words=words("skip_words"),
            future=_Cues(window=int(fut.get("window", 4)), cues=words("cues", fut)),
            hypothetical=_Cues(
                window=int(hyp.get("window", 3)),
                cues=words("cues", hyp),
                conditionals=words("conditionals", hyp),
            ),
            historical_re=hist_re,
            reported_anywhere=words("anywhere", rep),
            reported_before=words("before", rep),
            reported_after=words("after", rep),
            speech_act_types=frozenset(ctx.get("speech_act_types") or []),
            complement_types=frozenset(data.get("complement_types") or []),
            target_preps=words("target", roles),
            location_preps=words("location", roles),
            agent_preps=words("agent", roles),
            not_source=words("not_source", roles),
            coordination=words("coordination", roles),
            passive_prefixes=tuple(str(x).lower() for x in roles.get("passive_prefixes") or []),
            passive_aux=words("passive_aux", roles),
            clause_breaks=words("clause_breaks", roles),
            complement_markers=words("complement_markers", roles),
            verbal_markers=words("verbal_markers", roles),
            object_fillers=words("object_fillers", roles),
            determiners=words("determiners", roles),
            light_nouns=tuple(
                sorted(
                    (tuple(str(x).lower().split()) for x in data.get("light_nouns") or []),
                    key=len,
                    reverse=True,
                )
            ),
            stop_phrases=tuple(
                tuple(str(x).lower().split()) for x in data.get("stop_phrases") or []
            ),
            date_res=tuple(re.compile(p) for p in data.get("dates") or []),
            symmetric_types=frozenset(
                data.get("symmetric_types") or ["AGREE", "CONSULT", "COOPERATE"]
            ),
            movement_types=frozenset(
                data.get("movement_types") or ["MOBILIZE", "CONSULT", "RETREAT"]
            ),
            path=path,
        )
        lex._index()
        return lex

    def _index(self) -> None:
        by_key: dict[str, list[TriggerEntry]] = defaultdict(list)
        for e in self.entries:
            head = e.words[0]
            keys = {head}
            if e.is_phrase:
                keys.update(self.candidates(head))
            for k in keys:
                by_key[k].append(e)
        self._by_key = dict(by_key)
        stops: dict[str, list[tuple[str, ...]]] = defaultdict(list)
        for sp in self.stop_phrases:
            stops[sp[0]].append(sp)
        self._stop_heads = dict(stops)
        self.light_nouns_flat = frozenset(w for ln in self.light_nouns for w in ln)

    # ----------------------------------------------------------------- analysis

    def candidates(self, form: str) -> tuple[str, ...]:
        """Candidate roots/lemmas of a word form (cached)."""
        key = form.lower()
        hit = self._cand_cache.get(key)
        if hit is not None:
            return hit
        if self.morphology == "indonesian":
            table = _lookup_table("id")
            cands = list(indonesian_candidates(key))
            lemma = table.get(key.strip(_WORD_STRIP))
            if lemma:
                cands.insert(1, lemma)
                cands.extend(lemma.split())
        else:
            cands = list(english_candidates(key, _lookup_table("en")))
        seen: set[str] = set()
        res = tuple(x for x in cands if not (x in seen or seen.add(x)))
        if len(self._cand_cache) > 200_000:
            self._cand_cache.clear()
        self._cand_cache[key] = res
        return res

    def entries_for(self, form: str) -> tuple[TriggerEntry, ...]:
        """Lexicon entries whose head matches this word form (before context conditions)."""
        key = form.lower()
        hit = self._entry_cache.get(key)
        if hit is not None:
            return hit
        found: list[TriggerEntry] = []
        seen: set[int] = set()
        bare = key.strip(_WORD_STRIP)
        for cand in self.candidates(key):
            for e in self._by_key.get(cand, ()):
                if id(e) in seen:
                    continue
                if e.forms is not None and not e.is_phrase and not self._form_ok(bare, e.forms):
                    continue
                if bare in e.exclude:
                    continue
                seen.add(id(e))
                found.append(e)
        res = tuple(found)
        if len(self._entry_cache) > 200_000:
            self._entry_cache.clear()
        self._entry_cache[key] = res
        return res

    def _form_ok(self, bare: str, forms: frozenset[str]) -> bool:
        if bare in forms:
            return True
        if self.morphology == "indonesian":
            for clitic in _ID_CLITICS:
                if bare.endswith(clitic) and bare[: -len(clitic)] in forms:
                    return True
        return False

    def word_matches(self, form: str, word: str) -> bool:
        """Does a token form match a lexicon word (by surface or root)?"""
        low = form.lower().strip(_WORD_STRIP)
        return low == word or word in self.candidates(low)

    def type_code(self, typ: str) -> str | None:
        return self.types.get(typ)


# --------------------------------------------------------------------------- coding


@dataclass
class _Tok:
    text: str
    low: str
    start: int
    end: int


@dataclass
class _Trig:
    i: int  # first token
    j: int  # last token (inclusive)
    entry: TriggerEntry
    near_dist: int


def _sentences(doc: Any) -> list[tuple[int, int]]:
    """(first token, end token) per sentence; segments on . ! ? if the doc has no boundaries."""
    try:
        if doc.has_annotation("SENT_START"):
            return [(s.start, s.end) for s in doc.sents]
    except (AttributeError, ValueError):  # pragma: no cover - defensive
        pass
    out: list[tuple[int, int]] = []
    start = 0
    n = len(doc)
    for i, tok in enumerate(doc):
        if tok.text in _SENT_END or "\n" in tok.text_with_ws[len(tok.text) :]:
            nxt = doc[i + 1] if i + 1 < n else None
            if (
                nxt is None
                or nxt.text[:1].isupper()
                or nxt.text in _QUOTES
                or nxt.text[:1].isdigit()
            ):
                out.append((start, i + 1))
                start = i + 1
    if start < n:
        out.append((start, n))
    return out


def _ref(ent: Entity, lex: EventLexicon) -> EntityRef:
    """An EntityRef for an entity; a leading light noun ("pasukan Korea Utara") is dropped."""
    text = ent.text
    low = text.lower().split()
    for ln in lex.light_nouns:
        if len(low) > len(ln) and tuple(low[: len(ln)]) == ln:
            # offset of the remainder inside the entity text
            rest_words = text.split()[len(ln) :]
            rest = " ".join(rest_words)
            off = text.find(rest_words[0])
            if off >= 0 and text[off:].startswith(rest_words[0]):
                start = ent.start + off
                end = ent.end
                return EntityRef(
                    text=text[off:],
                    start=start,
                    end=end,
                    label="LOC" if ent.label in ("ORG", "MISC") else ent.label,
                    canonical=ent.canonical or rest,
                    actor_id=ent.actor_id,
                )
    return EntityRef(
        text=ent.text,
        start=ent.start,
        end=ent.end,
        label=ent.label,
        canonical=ent.canonical,
        actor_id=ent.actor_id,
    )


class _SentenceCoder:
    """Codes one sentence; holds the token view and entity index for it."""

    def __init__(
        self,
        lex: EventLexicon,
        text: str,
        toks: list[_Tok],
        ents: list[Entity],
        sent_start: int,
        sent_end: int,
    ) -> None:
        self.lex = lex
        self.text = text
        self.toks = toks
        self.n = len(toks)
        self.sent = {"start": sent_start, "end": sent_end}
        self.ents = ents
        # token -> entity index; entity -> (first token, last token)
        self.ent_at = [-1] * self.n
        self.ent_span: list[tuple[int, int]] = []
        starts = [t.start for t in toks]
        for k, e in enumerate(ents):
            i = max(0, bisect.bisect_right(starts, e.start) - 1)
            while i < self.n and toks[i].end <= e.start:
                i += 1
            j = i
            while j + 1 < self.n and toks[j + 1].start < e.end:
                j += 1
            if i >= self.n:
                self.ent_span.append((self.n, self.n - 1))
                continue
            self.ent_span.append((i, j))
            for x in range(i, j + 1):
                if self.ent_at[x] == -1:
                    self.ent_at[x] = k
        self.breaks = lex.clause_breaks
        # quote depth per token
        self.in_quote = [False] * self.n
        q = False
        for i, t in enumerate(toks):
            if t.text in _QUOTES or t.text.startswith('"') or t.text.endswith('"'):
                q = not q
                continue
            self.in_quote[i] = q
        self.comma_clause = [0] * self.n
        c = 0
        for i, t in enumerate(toks):
            if t.low in {",", ";", ":"} or t.low in _QUOTES:
                c += 1
            self.comma_clause[i] = c

    # ----------------------------------------------------------------- triggers

    def find_triggers(self) -> list[_Trig]:
        lex = self.lex
        blocked = [False] * self.n
        for i, t in enumerate(self.toks):
            for sp in lex._stop_heads.get(t.low, ()):
                if i + len(sp) <= self.n and all(
                    self.toks[i + k].low == sp[k] for k in range(len(sp))
                ):
                    for k in range(len(sp)):
                        blocked[i + k] = True
        out: list[_Trig] = []
        i = 0
        while i < self.n:
            t = self.toks[i]
            if blocked[i] or self.ent_at[i] != -1 or not t.low[:1].isalpha():
                i += 1
                continue
            entries = lex.entries_for(t.low)
            if not entries:
                i += 1
                continue
            best: _Trig | None = None
            best_key: tuple[int, int, int] | None = None
            for e in entries:
                j = i
                if e.is_phrase:
                    if not self._phrase_at(i, e):
                        continue
                    j = i + len(e.words) - 1
                dist = 0
                if e.near is not None:
                    dist = self._near_distance(i, j, e)
                    if dist < 0:
                        continue
                # longest phrase, then conditioned entries (closest first), then order of file
                key = (-(j - i), 0 if e.near is not None else 1, dist)
                if best_key is None or key < best_key:
                    best, best_key = _Trig(i, j, e, dist), key
            if best is None:
                i += 1
                continue
            out.append(best)
            i = best.j + 1
        return out

    def _phrase_at(self, i: int, e: TriggerEntry) -> bool:
        if i + len(e.words) > self.n:
            return False
        lex = self.lex
        for k, w in enumerate(e.words):
            tok = self.toks[i + k]
            if self.ent_at[i + k] != -1:
                return False
            if not lex.word_matches(tok.low, w):
                return False
        if e.forms is not None and self.toks[i].low not in e.forms:
            return False
        return True

    def _near_distance(self, i: int, j: int, e: TriggerEntry) -> int:
        assert e.near is not None
        lex = self.lex
        best = -1
        lo = max(0, i - e.window)
        hi = min(self.n, j + e.window + 1)
        for x in range(lo, hi):
            if i <= x <= j:
                continue
            # same comma-clause (or adjacent one, for "mengirim menteri luar negerinya ke Rusia")
            if abs(self.comma_clause[x] - self.comma_clause[i]) > 0:
                continue
            low = self.toks[x].low
            if low in e.near or any(c in e.near for c in lex.candidates(low)[:3]):
                d = i - x if x < i else x - j
                if best < 0 or d < best:
                    best = d
        return best

    # ----------------------------------------------------------------- helpers

    def _is_break(self, x: int) -> bool:
        low = self.toks[x].low
        return low in self.breaks or low in _QUOTES

    def _entity_starting(self, x: int) -> int:
        k = self.ent_at[x]
        if k >= 0 and self.ent_span[k][0] == x:
            return k
        return -1

    def _prev_word(self, k: int) -> str:
        i = self.ent_span[k][0]
        return self.toks[i - 1].low if i > 0 else ""

    def _preceding_prep(self, k: int) -> str:
        """The preposition governing entity k, looking past fillers ("di wilayah Kursk")."""
        x = self.ent_span[k][0] - 1
        steps = 0
        while x >= 0 and steps < 4:
            low = self.toks[x].low
            if (
                low in self.lex.object_fillers
                or low in self.lex.determiners
                or low in self.lex.light_nouns_flat
            ):
                x -= 1
                steps += 1
                continue
            return low
        return ""

    # ----------------------------------------------------------------- roles

    def find_source(self, trig: _Trig, limit: int = 30) -> tuple[int, int]:
        """(source entity, co-actor entity) before the trigger, -1 when none."""
        lex = self.lex
        x = trig.i - 1
        lo = max(0, trig.i - limit)
        while x >= lo:
            low = self.toks[x].low
            if low in {";", ":"} or low in _QUOTES or low in ("namun", "tetapi", "but", "however"):
                break
            k = self.ent_at[x]
            if k >= 0:
                first = self.ent_span[k][0]
                prep = self._preceding_prep(k)
                if prep in lex.not_source:
                    x = first - 1
                    continue
                co = -1
                # "Putin dan Kim sepakat": the first conjunct is the source, the second a co-actor
                before = first - 1
                if before > 0 and self.toks[before].low in lex.coordination:
                    k2 = self.ent_at[before - 1]
                    if k2 >= 0 and self._preceding_prep(k2) not in lex.not_source:
                        return k2, k
                return k, co
            x -= 1
        return -1, -1

    def find_target(self, trig: _Trig, limit: int = 12, movement: bool = False) -> int:
        lex = self.lex
        x = trig.j + 1
        hi = min(self.n, trig.j + 1 + limit)
        adjacent = True
        saw_prep = ""
        while x < hi:
            low = self.toks[x].low
            if self._is_break(x) and low not in lex.target_preps:
                break
            k = self._entity_starting(x)
            if k >= 0:
                prep = self._preceding_prep(k)
                if prep in lex.agent_preps:
                    x = self.ent_span[k][1] + 1
                    adjacent = False
                    continue
                if (
                    adjacent
                    or prep in lex.target_preps
                    or (movement and prep in lex.location_preps)
                ):
                    return k
                if prep in lex.location_preps or prep in ("dari", "from"):
                    x = self.ent_span[k][1] + 1
                    adjacent = False
                    continue
                if saw_prep in lex.target_preps:
                    return k
                x = self.ent_span[k][1] + 1
                adjacent = False
                continue
            if low in lex.target_preps:
                saw_prep = low
            elif not (
                low in lex.object_fillers
                or low in lex.determiners
                or low in lex.light_nouns_flat
                or low[:1].isdigit()
            ):
                adjacent = False
                if saw_prep and low not in lex.skip_words:
                    saw_prep = saw_prep  # keep: "kepada pemerintah Filipina"
            x += 1
        return -1

    def find_agent(self, trig: _Trig, limit: int = 8) -> int:
        """Agent of a passive: after oleh/by, or (Indonesian) the entity right after a di-verb."""
        lex = self.lex
        x = trig.j + 1
        hi = min(self.n, trig.j + 1 + limit)
        first = True
        while x < hi:
            low = self.toks[x].low
            if self._is_break(x):
                break
            k = self._entity_starting(x)
            if k >= 0:
                prep = self._preceding_prep(k)
                if prep in lex.agent_preps or (first and lex.morphology == "indonesian"):
                    return k
                return -1
            if not (low in lex.agent_preps or low in lex.object_fillers or low in lex.determiners):
                first = False
            x += 1
        return -1

    def find_location(self, trig: _Trig) -> int:
        lex = self.lex
        best, best_d = -1, 10**9
        for k, (a, b) in enumerate(self.ent_span):
            if a >= self.n or self.ents[k].label != "LOC":
                continue
            if self._preceding_prep(k) not in lex.location_preps:
                continue
            d = a - trig.j if a > trig.j else (trig.i - b) * 2
            if d < best_d and d <= 25:
                best, best_d = k, d
        return best

    def is_passive(self, trig: _Trig) -> bool:
        lex = self.lex
        form = self.toks[trig.i].low
        if lex.morphology == "indonesian":
            root = trig.entry.words[0]
            for pre in lex.passive_prefixes:
                if form.startswith(pre) and not root.startswith(pre) and form != root:
                    return True
            return False
        # English: be-form (+ adverbs) before a participle
        if not (form.endswith("ed") or form.endswith("en") or form in _EN_IRREGULAR):
            return False
        x = trig.i - 1
        steps = 0
        while x >= 0 and steps < 3:
            low = self.toks[x].low
            if low in lex.passive_aux:
                return True
            if low.endswith("ly") or low in lex.skip_words:
                x -= 1
                steps += 1
                continue
            break
        return False

    def is_nominal(self, trig: _Trig) -> bool:
        e = trig.entry
        if e.nominal:
            return True
        form = self.toks[trig.i].low.strip(_WORD_STRIP)
        lex = self.lex
        if lex.morphology == "indonesian":
            for clitic in _ID_CLITICS:
                if form.endswith(clitic) and len(form) - len(clitic) > 3:
                    form = form[: -len(clitic)]
                    break
            root = e.words[0]
            if form.startswith(("me", "di", "ber", "ter")) and not root.startswith(
                ("me", "di", "ber", "ter")
            ):
                return False
            if form == root:
                return False
            return form.endswith("an") or form.startswith(("pe", "ke"))
        if form.endswith(("tion", "ment", "sal", "ance", "ence")):
            return True
        prev = self.toks[trig.i - 1].low if trig.i > 0 else ""
        if prev in lex.determiners:
            return True
        if form.endswith(("ed", "ing")) or form in _EN_IRREGULAR:
            return False
        # a bare or -s form is a verb only after an auxiliary, "to", a pronoun or a negation
        x = trig.i - 1
        while x >= 0 and (self.toks[x].low.endswith("ly") or self.toks[x].low in lex.negation):
            if self.toks[x].low in lex.negation:
                return False
            x -= 1
        prev = self.toks[x].low if x >= 0 else ""
        return not (prev in lex.verbal_markers or prev in lex.passive_aux or prev in lex.skip_words)

    # ----------------------------------------------------------------- modality

    def negated(self, trig: _Trig) -> bool:
        lex = self.lex
        x = trig.i - 1
        steps = 0
        while x >= 0 and steps < 5:
            low = self.toks[x].low
            if low in lex.negation:
                return True
            if low in lex.skip_words or low.endswith("ly") and lex.morphology == "english":
                x -= 1
                steps += 1
                continue
            break
        return False

    def _back_window(self, trig: _Trig, window: int) -> list[str]:
        out = []
        x = trig.i - 1
        c = self.comma_clause[trig.i]
        while x >= 0 and len(out) < window and self.comma_clause[x] == c:
            out.append(self.toks[x].low)
            x -= 1
        return out

    def _forward_window(self, trig: _Trig, window: int) -> list[str]:
        out = []
        x = trig.j + 1
        c = self.comma_clause[trig.j]
        while x < self.n and len(out) < window and self.comma_clause[x] == c:
            low = self.toks[x].low
            if low in self.lex.complement_markers:
                break
            out.append(low)
            x += 1
        return out

    def context(self, trig: _Trig) -> str:
        lex = self.lex
        typ = trig.entry.type
        # hypothetical: modal just before, or a conditional earlier in the same clause
        if any(
            w in lex.hypothetical.cues for w in self._back_window(trig, lex.hypothetical.window)
        ):
            return "hypothetical"
        if lex.hypothetical.conditionals and (
            any(w in lex.hypothetical.conditionals for w in self._back_window(trig, 40))
            or any(w in lex.hypothetical.conditionals for w in self._forward_window(trig, 10))
        ):
            return "hypothetical"
        if any(w in lex.future.cues for w in self._back_window(trig, lex.future.window)):
            return "future"
        if lex.historical_re is not None and lex.historical_re.search(self.text_of_sentence()):
            return "historical"
        if self._reported(trig, typ):
            return "reported"
        return "asserted"

    def text_of_sentence(self) -> str:
        if not self.toks:
            return ""
        return self.text[self.toks[0].start : self.toks[-1].end]

    def _reported(self, trig: _Trig, typ: str) -> bool:
        lex = self.lex
        speech = typ in lex.speech_act_types
        lows = [t.low for t in self.toks]
        if not speech and any(w in lex.reported_anywhere for w in lows):
            return True
        # a reporting verb before the trigger: the trigger is in its complement
        for x in range(trig.i - 1, -1, -1):
            if lows[x] in lex.reported_before and x != trig.i:
                return True
        if speech:
            return False
        # "…," kata X / X said — attribution after the trigger
        for x in range(trig.j + 1, self.n):
            if lows[x] in lex.reported_after:
                return True
        return bool(self.in_quote[trig.i])

    # ----------------------------------------------------------------- dates

    def date(self, trig: _Trig) -> str | None:
        s0 = self.toks[0].start if self.toks else 0
        sent = self.text_of_sentence()
        pos = self.toks[trig.i].start - s0
        best, best_d = None, 10**9
        for rx in self.lex.date_res:
            for m in rx.finditer(sent):
                d = abs(m.start() - pos)
                if d < best_d:
                    best, best_d = m.group(0).strip(), d
        return best

    # ----------------------------------------------------------------- events

    def code(self) -> list[Event]:
        lex = self.lex
        trigs = self.find_triggers()
        if not trigs:
            return []
        events: list[Event] = []
        suppress_until = -1
        for trig in trigs:
            if trig.i <= suppress_until:
                continue
            e = trig.entry
            typ = e.type
            # the trigger must not be part of an attribution ("kata X") — cheap guard
            passive = self.is_passive(trig)
            movement = typ in lex.movement_types
            src_k, co_k = self.find_source(trig)
            if passive:
                agent = self.find_agent(trig)
                tgt_k = src_k
                src_k = agent
                co_k = -1
            else:
                tgt_k = self.find_target(trig, movement=movement)
                if tgt_k < 0 and co_k >= 0 and typ in lex.symmetric_types:
                    tgt_k = co_k
            if src_k < 0 and not passive:
                src_k = self._speaker(trig)
            if tgt_k == src_k:
                tgt_k = -1
            date = self.date(trig)
            nominal = self.is_nominal(trig)
            if nominal and src_k < 0 and tgt_k < 0 and date is None:
                continue
            loc_k = self.find_location(trig)
            ctx = self.context(trig)
            neg = self.negated(trig)
            conf = 0.35
            conf += 0.2 if src_k >= 0 else 0.0
            conf += 0.2 if tgt_k >= 0 else 0.0
            conf += 0.1 if not nominal else 0.0
            conf += 0.05 if (loc_k >= 0 or date) else 0.0
            conf += 0.05 if (e.near is not None or e.is_phrase) else 0.0
            t0, t1 = self.toks[trig.i], self.toks[trig.j]
            events.append(
                Event(
                    type=typ,
                    cameo_root=e.cameo_root or lex.type_code(typ),
                    trigger=Span(text=self.text[t0.start : t1.end], start=t0.start, end=t1.end),
                    sentence=dict(self.sent),
                    source=_ref(self.ents[src_k], lex) if src_k >= 0 else None,
                    target=_ref(self.ents[tgt_k], lex) if tgt_k >= 0 else None,
                    location=_ref(self.ents[loc_k], lex)
                    if loc_k >= 0 and loc_k not in (src_k, tgt_k)
                    else None,
                    date=date,
                    negated=neg,
                    context=ctx,  # type: ignore[arg-type]
                    confidence=round(min(conf, 0.95), 2),
                )
            )
            if typ in lex.complement_types:
                x = trig.j + 1
                while x < self.n and not self._is_break(x):
                    x += 1
                suppress_until = x
        return events

    def _speaker(self, trig: _Trig) -> int:
        """Inside a quote with no subject: the speaker named after 'kata'/'said'."""
        lex = self.lex
        if not self.in_quote[trig.i] and not any(
            self.toks[x].low in _QUOTES for x in range(0, trig.i)
        ):
            return -1
        for x in range(trig.j + 1, self.n):
            if self.toks[x].low in lex.reported_after:
                for y in range(x + 1, min(self.n, x + 10)):
                    k = self._entity_starting(y)
                    if k >= 0:
                        return k
                return -1
        return -1


def code_events(doc: Any, entities: list[Entity], lexicon: EventLexicon) -> list[Event]:
    """Code PLOVER events in a spaCy Doc whose text is the article, given its entities."""
    text = doc.text
    if not text or len(doc) == 0:
        return []
    ents = sorted(
        (e for e in entities if 0 <= e.start < e.end <= len(text)), key=lambda e: (e.start, -e.end)
    )
    ent_starts = [e.start for e in ents]
    events: list[Event] = []
    for s, t in _sentences(doc):
        if t <= s:
            continue
        toks = []
        for tok in doc[s:t]:
            if tok.is_space:
                continue
            toks.append(_Tok(tok.text, tok.text.lower(), tok.idx, tok.idx + len(tok.text)))
        if not toks:
            continue
        s_start, s_end = toks[0].start, toks[-1].end
        lo = bisect.bisect_left(ent_starts, s_start)
        hi = bisect.bisect_left(ent_starts, s_end)
        sent_ents = [e for e in ents[lo:hi] if e.end <= s_end]
        coder = _SentenceCoder(lexicon, text, toks, sent_ents, s_start, s_end)
        events.extend(coder.code())
    return events


# --------------------------------------------------------------------------- evaluation


def _norm(s: str | None) -> str:
    return " ".join((s or "").lower().split())


def _role_ok(pred: EntityRef | None, gold: str | None) -> bool:
    if gold is None:
        return pred is None
    if pred is None:
        return False
    g = _norm(gold)
    for cand in (pred.text, pred.canonical):
        c = _norm(cand)
        if not c:
            continue
        if c == g or (len(c) >= 2 and c in g) or (len(g) >= 2 and g in c):
            return True
    return False


def evaluate_events(gold: list[dict[str, Any]], predicted: list[list[Event]]) -> dict[str, Any]:
    """Per-type P/R/F1 on (sentence, type) matches, micro F1 and role accuracy.

    ``gold[i]`` is a gold line (``events``: list of dicts with type/source/target/negated/context);
    ``predicted[i]`` the events coded for that sentence. A type counts once per sentence. Over the
    matched (sentence, type) pairs, a role is right when the best-matching predicted event's
    entity text or canonical overlaps the gold string (or both are empty); the `_nonnull` figures
    count only gold roles that are filled.
    """
    if len(gold) != len(predicted):
        raise ValueError("gold and predicted differ in length")
    tp: dict[str, int] = defaultdict(int)
    fp: dict[str, int] = defaultdict(int)
    fn: dict[str, int] = defaultdict(int)
    roles = {"source": [0, 0], "target": [0, 0], "source_nonnull": [0, 0], "target_nonnull": [0, 0]}
    neg = [0, 0]
    ctx = [0, 0]
    errors: list[dict[str, Any]] = []
    for g, preds in zip(gold, predicted, strict=True):
        gtypes: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for ge in g.get("events") or []:
            gtypes[ge["type"]].append(ge)
        ptypes: dict[str, list[Event]] = defaultdict(list)
        for pe in preds:
            ptypes[pe.type].append(pe)
        for typ in set(gtypes) | set(ptypes):
            if typ in gtypes and typ in ptypes:
                tp[typ] += 1
                # best pairing by number of right roles
                best = None
                for ge in gtypes[typ]:
                    for pe in ptypes[typ]:
                        score = int(_role_ok(pe.source, ge.get("source"))) + int(
                            _role_ok(pe.target, ge.get("target"))
                        )
                        if best is None or score > best[0]:
                            best = (score, ge, pe)
                assert best is not None
                _, ge, pe = best
                for role in ("source", "target"):
                    ok = _role_ok(getattr(pe, role), ge.get(role))
                    roles[role][0] += int(ok)
                    roles[role][1] += 1
                    if ge.get(role) is not None:
                        roles[role + "_nonnull"][0] += int(ok)
                        roles[role + "_nonnull"][1] += 1
                    if not ok:
                        errors.append(
                            {
                                "id": g.get("id"),
                                "kind": role,
                                "type": typ,
                                "gold": ge.get(role),
                                "pred": getattr(pe, role).text if getattr(pe, role) else None,
                            }
                        )
                neg[0] += int(bool(ge.get("negated")) == pe.negated)
                neg[1] += 1
                ctx[0] += int(ge.get("context", "asserted") == pe.context)
                ctx[1] += 1
            elif typ in gtypes:
                fn[typ] += 1
                errors.append({"id": g.get("id"), "kind": "fn", "type": typ})
            else:
                fp[typ] += 1
                errors.append(
                    {
                        "id": g.get("id"),
                        "kind": "fp",
                        "type": typ,
                        "trigger": ptypes[typ][0].trigger.text,
                    }
                )

    def prf(t: int, p: int, n: int) -> dict[str, float | int]:
        prec = t / (t + p) if t + p else 0.0
        rec = t / (t + n) if t + n else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        return {"precision": round(prec, 3), "recall": round(rec, 3), "f1": round(f1, 3),
                "tp": t, "fp": p, "fn": n, "support": t + n}  # fmt: skip

    per_type = {
        typ: prf(tp[typ], fp[typ], fn[typ]) for typ in PLOVER_TYPES if tp[typ] or fp[typ] or fn[typ]
    }
    micro = prf(sum(tp.values()), sum(fp.values()), sum(fn.values()))

    def acc(pair: list[int]) -> float | None:
        return round(pair[0] / pair[1], 3) if pair[1] else None

    return {
        "sentences": len(gold),
        "gold_events": sum(len(g.get("events") or []) for g in gold),
        "per_type": per_type,
        "micro": micro,
        "source_accuracy": acc(roles["source"]),
        "target_accuracy": acc(roles["target"]),
        "source_accuracy_nonnull": acc(roles["source_nonnull"]),
        "target_accuracy_nonnull": acc(roles["target_nonnull"]),
        "role_accuracy": acc(
            [roles["source"][0] + roles["target"][0], roles["source"][1] + roles["target"][1]]
        ),
        "negation_accuracy": acc(neg),
        "context_accuracy": acc(ctx),
        "matched": roles["source"][1],
        "errors": errors,
    }


def format_event_report(result: dict[str, Any]) -> str:
    """A plain-text table of an `evaluate_events` result."""
    lines = [f"{'type':<10} {'P':>6} {'R':>6} {'F1':>6} {'tp':>4} {'fp':>4} {'fn':>4}"]
    for typ, r in result["per_type"].items():
        lines.append(
            f"{typ:<10} {r['precision']:>6.3f} {r['recall']:>6.3f} {r['f1']:>6.3f} "
            f"{r['tp']:>4} {r['fp']:>4} {r['fn']:>4}"
        )
    m = result["micro"]
    lines.append(
        f"{'micro':<10} {m['precision']:>6.3f} {m['recall']:>6.3f} {m['f1']:>6.3f} "
        f"{m['tp']:>4} {m['fp']:>4} {m['fn']:>4}"
    )

    def fmt(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    lines.append(
        f"sentences={result['sentences']} matched={result['matched']} "
        f"source_acc={fmt(result['source_accuracy'])} target_acc={fmt(result['target_accuracy'])} "
        f"role_acc={fmt(result['role_accuracy'])}"
    )
    lines.append(
        f"source_acc(gold filled)={fmt(result['source_accuracy_nonnull'])} "
        f"target_acc(gold filled)={fmt(result['target_accuracy_nonnull'])} "
        f"negation_acc={fmt(result['negation_accuracy'])} context_acc={fmt(result['context_accuracy'])}"
    )
    return "\n".join(lines)


def load_gold(path: str | Path) -> list[dict[str, Any]]:
    """Read a gold JSONL file (one annotated sentence per line)."""
    rows = []
    with Path(path).open(encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if line:
                rows.append(json.loads(line))
    return rows


@lru_cache(maxsize=4)
def _blank_pipeline(lang: str) -> Any:
    import spacy

    nlp = spacy.blank(lang)
    nlp.add_pipe("sentencizer")
    return nlp


def code_gold_line(row: dict[str, Any], lexicon: EventLexicon) -> list[Event]:
    """Code one gold line with its gold entities (blank pipeline + sentencizer)."""
    nlp = _blank_pipeline(row.get("lang") or lexicon.language)
    doc = nlp(row["text"])
    ents = [
        Entity(text=e["text"], start=e["start"], end=e["end"], label=e["label"])
        for e in row.get("entities") or []
    ]
    return code_events(doc, ents, lexicon)


def evaluate_gold_file(
    path: str | Path, lang: str, split: str | None = None, lexicon: EventLexicon | None = None
) -> dict[str, Any]:
    """Evaluate the coder on a gold file with its gold entities; ``split`` = "dev"/"test"/None."""
    lex = lexicon or EventLexicon.for_language(lang)
    rows = [r for r in load_gold(path) if split is None or r.get("split", "dev") == split]
    preds = [code_gold_line(r, lex) for r in rows]
    result = evaluate_events(rows, preds)
    result["split"] = split or "all"
    result["lang"] = lang
    return result


def _main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="Evaluate the event coder on the gold files.")
    ap.add_argument("--lang", action="append", help="id, en (default both)")
    ap.add_argument(
        "--data", default=str(Path(__file__).resolve().parents[2] / "tests" / "data" / "events")
    )
    ap.add_argument("--errors", action="store_true", help="print the errors of the dev split")
    args = ap.parse_args(argv)
    for lang in args.lang or ["id", "en"]:
        path = Path(args.data) / f"{lang}.jsonl"
        if not path.exists():
            print(f"[{lang}] no gold file at {path}")
            continue
        for split in ("dev", "test", None):
            res = evaluate_gold_file(path, lang, split=split)
            print(f"== {lang} / {res['split']} ==")
            print(format_event_report(res))
            if args.errors and split == "dev":
                for err in res["errors"]:
                    print("  ", err)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
