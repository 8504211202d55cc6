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
from spacy.attrs import IDX, IS_SPACE, LENGTH

from workers.domain import Entity, EntityRef, Event, Span
from workers.resources import config_file

__all__ = [
    "CONFIG_DIR",
    "PLOVER_TYPES",
    "EventLexicon",
    "code_events",
    "code_gold_line",
    "evaluate_events",
    "evaluate_gold_file",
    "format_event_report",
    "format_markdown_tables",
    "load_gold",
]

CONFIG_DIR = config_file("events")

PLOVER_TYPES = (
    "AGREE", "CONSULT", "SUPPORT", "CONCEDE", "COOPERATE", "AID", "RETREAT", "REQUEST",
    "ACCUSE", "REJECT", "THREATEN", "PROTEST", "SANCTION", "MOBILIZE", "COERCE", "ASSAULT",
)  # fmt: skip

_CONTEXT_ORDER = ("hypothetical", "future", "historical", "reported")
_QUOTES = frozenset({'"', "“", "”", "''", "``"})
_SENT_END = frozenset({".", "!", "?"})
_MEDIA_WORDS = frozenset(
    {
        "kantor",
        "berita",
        "media",
        "warta",
        "laman",
        "situs",
        "harian",
        "surat",
        "kabar",
        "stasiun",
        "tv",
        "televisi",
        "news",
        "agency",
        "newspaper",
    }
)
_WORD_STRIP = "\"'“”‘’()[]{}.,;:!?"


# --------------------------------------------------------------------------- morphology


def _lookup_table(lang: str) -> dict[str, str]:
    """spaCy's lookup lemma table from spacy-lookups-data, loaded once per language."""
    return _load_lookup(lang)


@lru_cache(maxsize=4)
def _load_lookup(lang: str) -> dict[str, str]:
    try:
        import spacy_lookups_data
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
    return tuple(dict.fromkeys(out))


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
    active_only: bool = False
    needs_target: bool = False

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
    relativizers: frozenset[str]
    light_verbs: frozenset[str]
    movement_roots: frozenset[str]
    anaphors_after: frozenset[str]
    anaphors_before: frozenset[str]
    source_preps: frozenset[str]
    between_preps: frozenset[str]
    attribution_cues: frozenset[str]
    transfer_types: frozenset[str]
    absolute_preps: frozenset[str]
    possessive_clitics: tuple[str, ...]
    topic_preps: frozenset[str]
    weak_dates: frozenset[str]
    complementizers: frozenset[str]
    noun_roots: frozenset[str]
    speaker_titles: frozenset[str]
    purpose_markers: frozenset[str]
    purpose_skip: frozenset[str]
    passive_light_verbs: frozenset[str]
    light_verb_window: int
    light_verb_pass: frozenset[str]
    verb_prefixes: tuple[str, ...]
    object_fillers: frozenset[str]
    determiners: frozenset[str]
    light_nouns: tuple[tuple[str, ...], ...]
    stop_phrases: tuple[tuple[str, ...], ...]
    date_res: tuple[re.Pattern[str], ...]
    symmetric_types: frozenset[str]
    movement_types: frozenset[str]
    path: Path | None = None
    light_nouns_flat: frozenset[str] = frozenset()
    all_preps: frozenset[str] = frozenset()
    source_stops: frozenset[str] = frozenset()
    clause_stops: frozenset[str] = frozenset()
    _by_key: dict[str, list[TriggerEntry]] = field(default_factory=dict, repr=False)
    _stop_heads: dict[str, list[tuple[str, ...]]] = field(default_factory=dict, repr=False)
    _cand_cache: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False)
    _entry_cache: dict[str, tuple[TriggerEntry, ...]] = field(default_factory=dict, repr=False)

    # ----------------------------------------------------------------- loading

    @classmethod
    def for_language(cls, lang: str, config_dir: str | Path | None = None) -> EventLexicon:
        """The lexicon of ``lang`` ("id", "en") from ``config/events/<lang>.yaml``."""
        name = f"{lang.lower().split('-')[0]}.yaml"
        if config_dir is not None:
            return cls.load(Path(config_dir) / name)
        return cls.load(config_file(f"events/{name}"))

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
                        active_only=bool(item.get("active_only", False)),
                        needs_target=bool(item.get("needs_target", False)),
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
            relativizers=words("relativizers", roles),
            light_verbs=words("light_verbs", roles),
            movement_roots=words("movement_roots", roles),
            anaphors_after=words("anaphors_after", roles),
            anaphors_before=words("anaphors_before", roles),
            source_preps=words("source", roles),
            between_preps=words("between", roles),
            attribution_cues=words("attribution", rep) | words("anywhere", rep),
            transfer_types=frozenset(data.get("transfer_types") or ["AID", "MOBILIZE"]),
            absolute_preps=words("absolute", roles),
            possessive_clitics=tuple(str(x) for x in roles.get("possessive_clitics") or []),
            topic_preps=words("topic", roles),
            weak_dates=words("weak_dates"),
            complementizers=words("complementizers", roles),
            noun_roots=words("noun_roots"),
            speaker_titles=words("speaker_titles", roles),
            purpose_markers=words("purpose", roles),
            purpose_skip=words("purpose_skip", roles),
            passive_light_verbs=words("passive_light_verbs", roles),
            light_verb_window=int(roles.get("light_verb_window", 3)),
            light_verb_pass=words("light_verb_pass", roles),
            verb_prefixes=tuple(str(x) for x in roles.get("verb_prefixes") or []) or ("\x00",),
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
            movement_types=frozenset(data.get("movement_types") or ["MOBILIZE", "RETREAT"]),
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
        self.all_preps = (
            self.target_preps
            | self.location_preps
            | self.agent_preps
            | self.not_source
            | self.source_preps
            | self.between_preps
        )
        # subordinators end the search for a subject ("setelah", "ketika", "because" …)
        self.source_stops = (
            frozenset(
                w
                for w in self.clause_breaks
                if w[:1].isalpha()
                and w not in self.relativizers
                and w not in self.complement_markers
            )
            | self.complementizers
        )
        self.clause_stops = (
            self.source_stops
            | self.relativizers
            | self.complementizers
            | self.reported_before
            | self.reported_after
        )

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
        res = tuple(dict.fromkeys(cands))
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
    near_pos: int = -1  # token of the `near` word that selected the entry


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
        # entities that name a news source ("menurut Reuters", "dilansir dari laman Quartz")
        self.attribution = []
        for a_, _b in self.ent_span:
            flag = False
            x = min(a_, self.n) - 1
            while x >= 0 and x >= a_ - 5:
                low = self.toks[x].low
                if low in lex.attribution_cues:
                    flag = True
                    break
                if not (
                    low in lex.object_fillers
                    or low in lex.determiners
                    or low in lex.not_source
                    or low in lex.source_preps
                    or low in _MEDIA_WORDS
                ):
                    break
                x -= 1
            self.attribution.append(flag)
        self.last_source = -1
        self.pending_co = -1
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
            if blocked[i] or self.ent_at[i] != -1 or not t.low[:1].isalpha() or self._in_name(i):
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
                pos = -1
                if e.near is not None:
                    dist, pos = self._near_match(i, j, e)
                    if dist < 0:
                        continue
                # longest phrase, then conditioned entries (closest first), then order of file
                key = (-(j - i), 0 if e.near is not None else 1, dist)
                if best_key is None or key < best_key:
                    best, best_key = _Trig(i, j, e, dist, pos), key
            if best is None:
                i += 1
                continue
            out.append(best)
            i = best.j + 1
        # a word that selected another trigger ("limiting its cooperation") is not a trigger
        used = {t.near_pos for t in out if t.near_pos >= 0}
        return [t for t in out if not any(t.i <= u <= t.j for u in used)]

    def _in_name(self, i: int) -> bool:
        """A capitalised word inside a name the NER missed ("Dialog Manama", "Perjanjian Paris")."""
        t = self.toks[i].text
        if not t[:1].isupper() or t.isupper() or i == 0 or self.toks[i - 1].low in _QUOTES:
            return False
        prev = self.toks[i - 1].text
        if prev in _SENT_END or prev in {":", "—", "-", "("}:
            return False
        nxt = self.toks[i + 1].text if i + 1 < self.n else ""
        return nxt[:1].isupper() and not nxt.isupper()

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
        return not (e.forms is not None and self.toks[i].low not in e.forms)

    def _near_match(self, i: int, j: int, e: TriggerEntry) -> tuple[int, int]:
        assert e.near is not None
        lex = self.lex
        best = -1
        pos = -1
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
                    best, pos = d, x
        return best, pos

    # ----------------------------------------------------------------- helpers

    def _is_break(self, x: int) -> bool:
        low = self.toks[x].low
        return low in self.breaks or low in _QUOTES

    def _is_filler(self, low: str) -> bool:
        lex = self.lex
        return (
            low in lex.object_fillers
            or low in lex.determiners
            or low in lex.light_nouns_flat
            or low[:1].isdigit()
        )

    def _entity_starting(self, x: int) -> int:
        k = self.ent_at[x]
        if k >= 0 and self.ent_span[k][0] == x:
            return k
        return -1

    def _entity_ending(self, x: int) -> int:
        if x < 0 or x >= self.n:
            return -1
        k = self.ent_at[x]
        if k >= 0 and self.ent_span[k][1] == x:
            return k
        return -1

    def _preceding_prep(self, k: int) -> str:
        """The preposition governing entity k ("di wilayah Kursk", "kepada Menteri X Y")."""
        lex = self.lex
        x = self.ent_span[k][0] - 1
        steps = 0
        while x >= 0 and steps < 5:
            low = self.toks[x].low
            if low in lex.all_preps:
                return low
            k2 = self.ent_at[x]
            if k2 >= 0:  # "Presiden Rusia Vladimir Putin": inherit the chain's preposition
                return self._preceding_prep(k2) if k2 != k else ""
            if low in ("-", "/"):
                x -= 1
                continue
            if not low[:1].isalnum() or low in lex.clause_stops:
                return ""
            x -= 1
            steps += 1
        return ""

    def _skip_back(self, x: int) -> int:
        """Index of the first token before x that is not an auxiliary/adverb cue word."""
        lex = self.lex
        while x >= 0 and (self.toks[x].low in lex.skip_words or self.toks[x].low in lex.negation):
            x -= 1
        return x

    def _chain_head(self, k: int) -> int:
        """For "Presiden Suriah Bashar al-Assad" return the last entity of the adjacent chain."""
        while True:
            nxt = self.ent_span[k][1] + 1
            # allow one title word between ("Menteri Pertahanan Indonesia Ryamizard Ryacudu")
            for step in (0, 1, 2, 3):
                y = nxt + step
                if y >= self.n:
                    return k
                k2 = self._entity_starting(y)
                if k2 >= 0:
                    if self.ents[k2].label == "PER" and self.ents[k].label != "PER":
                        k = k2
                        break
                    return k
                if not self._is_filler(self.toks[y].low) and not self.toks[y].text[:1].isupper():
                    return k
            else:
                return k

    # ----------------------------------------------------------------- roles

    def find_source(self, trig: _Trig, limit: int = 30) -> tuple[int, int]:
        """(source entity, co-actor entity) before the trigger, -1 when none."""
        lex = self.lex
        x = trig.i - 1
        # "pihak yang menyerang Tokyo": the subject is the head noun before "yang"
        y = self._skip_back(x)
        if y >= 0 and self._is_light_verb(self.toks[y].low):
            y = self._skip_back(y - 1)
        if y >= 0 and self.toks[y].low in lex.relativizers:
            z = y - 1
            if z >= 0 and self.toks[z].low == ",":
                z -= 1
            # "African Union (AU) troops who were killed": the owner of the light noun
            while z >= 0 and (self.toks[z].low in lex.light_nouns_flat or self.toks[z].low == ")"):
                z -= 1
            k = self._entity_ending(z)
            if k >= 0 and not self.attribution[k]:
                return self._with_coordination(self.ent_at[z])
            return -1, -1
        head = self._apposition_head(trig)
        if head >= 0:
            return self._with_coordination(head)
        lo = max(0, trig.i - limit)
        while x >= lo:
            low = self.toks[x].low
            if low in {";", ":"} or low in _QUOTES or low in lex.source_stops:
                break
            if low in lex.relativizers:
                break
            k = self.ent_at[x]
            if k >= 0:
                first = self.ent_span[k][0]
                if self._is_possessor(k) or self._is_appositive(k, trig):
                    x = first - 1
                    continue
                prep = self._preceding_prep(k)
                # "dengan Rusia mendukung …": an absolute clause keeps its subject
                absolute = prep in lex.absolute_preps and (
                    self._skip_back(trig.i - 1) == self.ent_span[k][1]
                )
                if self.attribution[k] or (prep in lex.not_source and not absolute):
                    x = first - 1
                    continue
                return self._with_coordination(k)
            x -= 1
        # "pasukannya tiba": the possessor of a light noun is the sentence's main actor
        y = self._skip_back(trig.i - 1)
        if y >= 0 and self.ent_at[y] < 0:
            low = self.toks[y].low
            for clitic in lex.possessive_clitics:
                if low.endswith(clitic) and low[: -len(clitic)] in lex.light_nouns_flat:
                    if self.last_source >= 0:
                        return self.last_source, -1
                    for k, (a_, _b) in enumerate(self.ent_span):
                        if a_ >= trig.i:
                            break
                        if not self.attribution[k] and (
                            self._preceding_prep(k) not in lex.not_source
                        ):
                            return k, -1
        return -1, -1

    def _valid_actor(self, k: int) -> bool:
        return not self.attribution[k] and self._preceding_prep(k) not in self.lex.not_source

    def _apposition_head(self, trig: _Trig) -> int:
        """Subject before appositions: "Javier Correa, president of X, the Y, denounced …"."""
        y = self._skip_back(trig.i - 1)
        if y < 1 or self.toks[y].low != ",":
            return -1
        commas = [y]
        x = y - 1
        while x >= 0 and len(commas) < 4:
            z = x
            while z >= 0 and y - z <= 14 and self.toks[z].low != ",":
                if self._is_break(z) or self.toks[z].low in self.lex.source_stops:
                    z = -1
                    break
                z -= 1
            if z < 0 or self.toks[z].low != ",":
                break
            commas.append(z)
            y = z
            x = z - 1
        if len(commas) < 2:
            return -1
        for c in reversed(commas):  # earliest comma first
            k = self._entity_ending(c - 1)
            if k >= 0 and self._valid_actor(k) and not self._is_possessor(k):
                return k
        return -1

    def _is_possessor(self, k: int) -> bool:
        """ "Sudan's Presidential Advisor": the entity modifies a noun, it is not the subject."""
        y = self.ent_span[k][1] + 1
        return y < self.n and self.toks[y].low in ("'s", "’s")

    def _is_appositive(self, k: int, trig: _Trig) -> bool:
        """ "Javier Correa, president of X, the Y, denounced": Y is an apposition, not the subject."""
        a_, b_ = self.ent_span[k]
        y = b_ + 1
        if y >= self.n or self.toks[y].low != "," or self._skip_back(trig.i - 1) != y:
            return False
        x = a_ - 1
        while x >= 0 and self._is_filler(self.toks[x].low):
            x -= 1
        if x < 0 or self.toks[x].low != ",":
            return False
        # an earlier entity before the comma chain is the real subject
        return any(self.ent_at[z] >= 0 for z in range(max(0, x - 12), x))

    def _is_light_verb(self, low: str) -> bool:
        lv = self.lex.light_verbs
        return low in lv or any(c in lv for c in self.lex.candidates(low)[:2])

    def _with_coordination(self, k: int) -> tuple[int, int]:
        """Coordinated subjects ("Putin dan Kim sepakat"): the first is the source, then a co-actor."""
        lex = self.lex
        before = self.ent_span[k][0] - 1
        # skip title words between the conjunction and the entity ("bersama Menlu Taro Kono")
        steps = 0
        while before > 0 and steps < 2 and self._is_filler(self.toks[before].low):
            before -= 1
            steps += 1
        if before > 0 and self.toks[before].low in lex.coordination:
            k2 = self.ent_at[before - 1]
            if (
                k2 >= 0
                and not self.attribution[k2]
                and (self._preceding_prep(k2) not in lex.not_source)
            ):
                return k2, k
        return k, -1

    def find_target(
        self, trig: _Trig, limit: int = 12, movement: bool = False, direct: bool = True
    ) -> int:
        lex = self.lex
        x = trig.j + 1
        hi = min(self.n, trig.j + 1 + limit)
        gap = 0  # content words between the trigger and the candidate
        saw_prep = ""
        since_prep = 0
        while x < hi:
            low = self.toks[x].low
            if self._is_break(x) and low not in lex.target_preps:
                break
            k = self._entity_starting(x)
            if k >= 0:
                if self.attribution[k]:
                    x = self.ent_span[k][1] + 1
                    continue
                prep = self._preceding_prep(k)
                if prep in lex.agent_preps:
                    x = self.ent_span[k][1] + 1
                    gap += 1
                    continue
                if prep in lex.target_preps and saw_prep:
                    return self._chain_head(k)
                if movement and prep in lex.location_preps:
                    return self._chain_head(k)
                if prep in lex.location_preps or prep in lex.source_preps:
                    x = self.ent_span[k][1] + 1
                    gap += 1
                    saw_prep = ""
                    continue
                if direct and gap <= 1 and not saw_prep:
                    return self._chain_head(k)
                if direct:
                    return -1
                # a noun's possessor ("serangan Rusia terhadap Ukraina"): look further
                x = self.ent_span[k][1] + 1
                gap += 1
                continue
            if low in lex.target_preps:
                saw_prep = low
                since_prep = 0
            elif low in lex.all_preps:
                saw_prep = ""
                gap += 1
            elif low in lex.complement_markers or low in lex.skip_words:
                pass
            elif not (self._is_filler(low) or self.toks[x].text[:1].isupper()):
                gap += 1
                since_prep += 1
                if since_prep > 1:  # "dengan militan ISIS" keeps the preposition, two words not
                    saw_prep = ""
            x += 1
        return -1

    def find_complement_subject(self, trig: _Trig) -> int:
        """Subject of a complement clause as target ("memperingatkan bahwa AS akan…", "warned that X")."""
        x = trig.j + 1
        steps = 0
        while x < self.n and steps < 3:
            low = self.toks[x].low
            if low in self.lex.complement_markers:
                y = x + 1
                while y < self.n and self._is_filler(self.toks[y].low):
                    y += 1
                if y < self.n:
                    k = self._entity_starting(y)
                    if k >= 0 and not self.attribution[k]:
                        return self._chain_head(k)
                return -1
            if self.ent_at[x] >= 0 or not self._is_filler(low):
                return -1
            x += 1
            steps += 1
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
                if not self.attribution[k] and (
                    prep in lex.agent_preps or (first and lex.morphology == "indonesian")
                ):
                    return self._chain_head(k)
                return -1
            if not (low in lex.agent_preps or self._is_filler(low)):
                first = False
            x += 1
        return -1

    def nominal_roles(self, trig: _Trig) -> tuple[int, int]:
        """Source/target of a noun trigger: possessor, oleh/by, dari/from, antara X dan Y, or the
        subject of a light verb ("melancarkan serangan", "held talks")."""
        lex = self.lex
        src = tgt = -1
        x = trig.j + 1
        # possessor right after the noun (one modifier word allowed): "kunjungan Choe",
        # "serangan udara Amerika Serikat"
        y = x
        gap = 0
        form = self.toks[trig.i].low
        # pe(N)-…-an nouns name the action done to the possessor ("penangkapan X" = X's arrest)
        patient = (
            lex.morphology == "indonesian"
            and form.startswith("pe")
            and not form.startswith("per")
            and form.endswith("an")
        )
        while y < self.n and gap <= 1:
            k = self._entity_starting(y)
            if k >= 0:
                if not self.attribution[k] and lex.morphology == "indonesian":
                    if patient:
                        tgt = self._chain_head(k)
                    else:
                        src = self._chain_head(k)
                break
            low = self.toks[y].low
            if self._is_break(y) or low in lex.all_preps:
                break
            if not self._is_filler(low):
                gap += 1
            y += 1
        # prepositional participants after the noun
        y = x
        while y < min(self.n, x + 12):
            low = self.toks[y].low
            if self._is_break(y) and low not in lex.all_preps:
                break
            k = self._entity_starting(y)
            if k >= 0 and not self.attribution[k]:
                prep = self._preceding_prep(k)
                if (prep in lex.agent_preps and src < 0) or (
                    prep in lex.source_preps and src < 0 and trig.entry.type in lex.transfer_types
                ):
                    src = self._chain_head(k)
                elif prep in lex.between_preps and src < 0:
                    src = k
                    z = self.ent_span[k][1] + 1
                    if z + 1 < self.n and self.toks[z].low in lex.coordination:
                        k2 = self._entity_starting(z + 1)
                        if k2 >= 0:
                            tgt = k2
                y = self.ent_span[k][1] + 1
                continue
            y += 1
        if lex.morphology == "english" and src < 0:
            # "the U.S.-led strikes", "Hamas rocket attacks": an entity right before the noun
            z = trig.i - 1
            steps = 0
            while (
                z >= 0
                and steps < 3
                and self.ent_at[z] < 0
                and (
                    self.toks[z].low in ("-", "led", "backed", "sponsored", "'s", "’s")
                    or self._is_filler(self.toks[z].low)
                )
            ):
                z -= 1
                steps += 1
            if z >= 0:
                k = self._entity_ending(z)
                if (
                    k >= 0
                    and not self.attribution[k]
                    and self._preceding_prep(k) not in lex.location_preps
                ):
                    src = k
        if lex.morphology == "english":
            # "Israel's attack", "the Israeli attacks" (adjectives are not entities)
            z = trig.i - 1
            while (
                z >= 0
                and self._is_filler(self.toks[z].low)
                and self.toks[z].low not in ("'s", "’s")
            ):
                z -= 1
            if z >= 1 and self.toks[z].low in ("'s", "’s"):
                k = self._entity_ending(z - 1)
                if k >= 0 and src < 0:
                    src = k
        # light verb just before the noun: its subject is the source ("melancarkan serangan")
        z = trig.i - 1
        steps = 0
        while z >= 0 and steps < lex.light_verb_window:
            low = self.toks[z].low
            if self._is_light_verb(low):
                if src < 0:
                    src, co = self.find_source(_Trig(z, z, trig.entry, 0))
                    if co >= 0 and trig.entry.type in lex.symmetric_types:
                        self.pending_co = co  # "Tokyo dan Washington memiliki perjanjian"
                break
            if (
                self.ent_at[z] >= 0
                or self._is_break(z)
                or (low in lex.all_preps and low not in lex.light_verb_pass)
            ):
                break
            z -= 1
            steps += 1
        return src, tgt

    def is_anaphoric(self, trig: _Trig, span: int = 2) -> bool:
        """Re-mention of an event reported before: "serangan itu", "this attack"."""
        lex = self.lex
        for y in range(trig.j + 1, min(self.n, trig.j + 1 + span)):
            if self.toks[y].low in lex.anaphors_after:
                return True
            if self.ent_at[y] >= 0:
                break
        return bool(trig.i > 0 and self.toks[trig.i - 1].low in lex.anaphors_before)

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
                if form.startswith(pre) and not form.startswith(root):
                    return True
            return False
        # English: be-form (+ adverbs) before a participle, or a participle + "by"
        if not (form.endswith("ed") or form.endswith("en") or form in _EN_IRREGULAR):
            return False
        if trig.j + 1 < self.n and self.toks[trig.j + 1].low in lex.agent_preps:
            return True
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
        if e.is_phrase and " ".join(e.words) in self.lex.noun_roots:
            # "kerja sama" is a noun, "bekerja sama" a verb
            return self.toks[trig.i].low.strip(_WORD_STRIP) == e.words[0]
        form = self.toks[trig.i].low.strip(_WORD_STRIP)
        lex = self.lex
        if lex.morphology == "indonesian":
            for clitic in _ID_CLITICS:
                if form.endswith(clitic) and len(form) - len(clitic) > 3:
                    form = form[: -len(clitic)]
                    break
            root = e.words[0]
            if form.startswith(root):
                # bare noun roots (sanksi, diskusi) and root + -an (serangan, bantuan) are nouns;
                # -kan/-i make verbs
                if form == root:
                    return root in lex.noun_roots
                return form[len(root) :] == "an"
            if form.startswith(("me", "di", "ber", "ter")):
                return False
            return form.endswith("an") or form.startswith(("pe", "ke"))
        if form.endswith(("tion", "ment", "sal", "ance", "ence")):
            return True
        prev = self.toks[trig.i - 1].low if trig.i > 0 else ""
        if prev in lex.determiners:
            return True
        if form.endswith("ing"):
            x = self._skip_back(trig.i - 1)
            if x < 0:
                return True
            prevw = self.toks[x].low
            if self.ent_at[x] >= 0 or prevw in lex.passive_aux or prevw in lex.verbal_markers:
                return False
            return prevw in lex.determiners or prevw in lex.all_preps or prevw.isalpha()
        if form.endswith("ed") or form in _EN_IRREGULAR:
            return False
        # a bare or -s form is a verb only after an auxiliary, "to", a pronoun or a negation
        x = trig.i - 1
        while x >= 0 and (self.toks[x].low.endswith("ly") or self.toks[x].low in lex.negation):
            if self.toks[x].low in lex.negation:
                return False
            x -= 1
        if x >= 0 and self.ent_at[x] >= 0:  # "Russia attacks Ukraine": an entity subject
            return False
        if x >= 0 and self.toks[x].low in lex.coordination and form.endswith("s"):
            return False  # "… and accuses the FARC": a coordinated verb
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
            if low in lex.skip_words or (low.endswith("ly") and lex.morphology == "english"):
                x -= 1
                steps += 1
                continue
            break
        return False

    def _back_window(
        self, trig: _Trig, window: int, stop_at_subordinators: bool = True
    ) -> list[str]:
        out: list[str] = []
        x = trig.i - 1
        c = self.comma_clause[trig.i]
        while x >= 0 and len(out) < window and self.comma_clause[x] == c:
            low = self.toks[x].low
            if stop_at_subordinators and low in self.lex.source_stops:
                out.append(low)  # "if", "jika" open the clause the trigger is in
                break
            out.append(low)
            x -= 1
        return out

    def _forward_window(self, trig: _Trig, window: int) -> list[str]:
        out: list[str] = []
        x = trig.j + 1
        c = self.comma_clause[trig.j]
        while x < self.n and len(out) < window and self.comma_clause[x] == c:
            low = self.toks[x].low
            if low in self.lex.complement_markers:
                break
            out.append(low)
            x += 1
        return out

    def context(self, trig: _Trig, src_k: int) -> str:
        lex = self.lex
        typ = trig.entry.type
        # hypothetical: modal just before, or a conditional in the same clause
        if any(
            w in lex.hypothetical.cues for w in self._back_window(trig, lex.hypothetical.window)
        ):
            return "hypothetical"
        if lex.hypothetical.conditionals and (
            any(w in lex.hypothetical.conditionals for w in self._back_window(trig, 40))
            or (
                typ not in lex.complement_types
                and any(w in lex.hypothetical.conditionals for w in self._forward_window(trig, 10))
            )
        ):
            return "hypothetical"
        if typ not in lex.speech_act_types and self._conditional_sentence(trig):
            return "hypothetical"
        if any(w in lex.future.cues for w in self._back_window(trig, lex.future.window)):
            return "future"
        # "akan bertolak ke AS … untuk melakukan pertemuan": a future purpose clause
        back = self._back_window(trig, 15)
        if any(w in lex.future.cues for w in back) and not any(
            w in lex.reported_before for w in back
        ):
            return "future"
        if lex.historical_re is not None and self._historical(trig):
            return "historical"
        if self._reported(trig, typ, src_k):
            return "reported"
        return "asserted"

    def _conditional_sentence(self, trig: _Trig) -> bool:
        """ "If they died …, I will withdraw": the main clause after a fronted condition."""
        x = 0
        while x < self.n and (self.toks[x].low in _QUOTES or self.toks[x].low == "“"):
            x += 1
        if x >= self.n or self.toks[x].low not in self.lex.hypothetical.conditionals:
            return False
        return self.comma_clause[trig.i] > self.comma_clause[x]

    def _historical(self, trig: _Trig) -> bool:
        """A past-time cue before the trigger, or after it but not inside a relative clause."""
        assert self.lex.historical_re is not None
        s0 = self.toks[0].start
        sent = self.text_of_sentence()
        trig_end = self.toks[trig.j].end
        for m in self.lex.historical_re.finditer(sent):
            pos = s0 + m.start()
            if pos < trig_end:
                return True
            between = [t.low for t in self.toks[trig.j + 1 :] if t.start < pos]
            if not any(w in self.lex.relativizers for w in between):
                return True
        return False

    def text_of_sentence(self) -> str:
        if not self.toks:
            return ""
        return self.text[self.toks[0].start : self.toks[-1].end]

    def _reported(self, trig: _Trig, typ: str, src_k: int) -> bool:
        """Attributed to someone else: "menurut X", "X said that …", a quote of X about others.

        A speech act (accuse, request, threaten …) made by the quoted or reporting speaker is
        asserted: it happens by being said.
        """
        lex = self.lex
        speech = typ in lex.speech_act_types
        lows = [t.low for t in self.toks]
        src_pos = self.ent_span[src_k][0] if src_k >= 0 else -1
        if not speech and any(w in lex.reported_anywhere for w in lows):
            return True
        for x in range(trig.i - 1, -1, -1):
            if lows[x] in lex.reported_before:
                # the trigger is in the complement of a reporting verb (unless the reporter
                # performs the speech act herself: "X menyatakan … sekaligus mengecam …")
                if not speech or src_pos > x or src_pos < 0:
                    return True
                break
        after = any(lows[x] in lex.reported_after for x in range(trig.j + 1, self.n))
        if not after and not self.in_quote[trig.i]:
            return False
        if not speech:
            return True
        speaker = self._speaker(trig)
        return (
            src_k >= 0
            and speaker >= 0
            and src_k != speaker
            and (_norm(self.ents[src_k].text) != _norm(self.ents[speaker].text))
        )

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
        verbal_ends: set[int] = set()
        for trig in trigs:
            nominal = self.is_nominal(trig)
            if not nominal:
                verbal_ends.add(trig.j)
            if trig.i <= suppress_until:
                continue
            e = trig.entry
            typ = e.type
            date = self.date(trig)
            passive = False
            if not nominal and self.is_anaphoric(trig, span=1):
                continue
            if nominal:
                if (
                    self.is_anaphoric(trig)
                    or self._is_topic(trig)
                    or self._object_of(trig, verbal_ends)
                ):
                    continue
                self.pending_co = -1
                src_k, tgt_k = self.nominal_roles(trig)
                if tgt_k < 0:
                    # nouns take no direct object, gerunds do ("allowing UN peacekeepers")
                    gerund = self.toks[trig.j].low.endswith("ing")
                    tgt_k = self.find_target(
                        trig, limit=6, movement=typ in lex.movement_types, direct=gerund
                    )
                if tgt_k < 0:
                    tgt_k = self.pending_co
                # "Serangan dilakukan …", "an agreement was reached": the noun is the subject
                # of a passive light verb, so the sentence reports the event itself
                asserted_noun = self._has_passive_light_verb(trig)
                has_date = date is not None and date.lower() not in lex.weak_dates
                # "a demonstration in London's Parliament Square": a place makes it specific
                has_place = self._place_after(trig) >= 0
                if src_k < 0 and tgt_k < 0 and not has_date and not asserted_noun and not has_place:
                    continue
            else:
                passive = self.is_passive(trig)
                movement = typ in lex.movement_types or any(
                    w in lex.movement_roots for w in e.words
                )
                src_k, co_k = self.find_source(trig)
                y = self._skip_back(trig.i - 1)
                if (
                    y >= 0
                    and self.toks[y].low in lex.coordination
                    and self.last_source >= 0
                    and self.ent_at[y - 1] < 0
                ):
                    # "X does not recognize Y and accuses Z": a coordinated verb shares X
                    src_k, co_k = self.last_source, -1
                nya = self.toks[trig.i].low.endswith("nya")
                if passive and nya and lex.morphology == "indonesian":
                    # "ditolaknya Gatot": a nominalised passive, the patient follows
                    tgt_k = self.find_agent(trig)
                    src_k = -1
                elif passive:
                    if e.active_only:
                        continue
                    tgt_k = src_k
                    src_k = self.find_agent(trig)
                    if (
                        src_k < 0
                        and tgt_k >= 0
                        and typ in lex.transfer_types | lex.movement_types
                        and self._owns_light_noun(tgt_k)
                    ):
                        # "UN troops will be sent to Darfur": the owner of the troops sends them
                        src_k = tgt_k
                        tgt_k = self.find_target(trig, movement=movement)
                else:
                    tgt_k = self.find_target(trig, movement=movement)
                    if tgt_k < 0 and typ in lex.speech_act_types:
                        tgt_k = self.find_complement_subject(trig)
                    if tgt_k < 0 and co_k >= 0 and typ in lex.symmetric_types:
                        tgt_k = co_k
                    if src_k < 0 and typ in lex.speech_act_types:
                        src_k = self._speaker(trig)
            src_k = self._full_name(src_k)
            tgt_k = self._full_name(tgt_k)
            if tgt_k == src_k:
                tgt_k = -1
            if tgt_k < 0 and e.needs_target:
                continue  # "meet its obligations", "Wikia hosted sites"
            if src_k < 0 and tgt_k < 0 and self._in_purpose_clause(trig):
                # "… untuk mendukung demokrasi", "… to protect civilians": an aim, not an event
                continue
            if src_k >= 0:
                self.last_source = src_k
            loc_k = self.find_location(trig)
            ctx = self.context(trig, src_k)
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
            if typ in lex.complement_types and self._opens_complement(trig):
                x = trig.j + 1
                # the complement clause runs to the next break after its marker
                while (
                    x < self.n
                    and (
                        self.toks[x].low not in lex.complement_markers
                        and self.toks[x].low not in lex.future.cues
                    )
                    and x < trig.j + 8
                ):
                    x += 1
                x += 1
                while x < self.n and not self._is_break(x):
                    x += 1
                suppress_until = x
        return events

    def _opens_complement(self, trig: _Trig) -> bool:
        """ "sepakat untuk …", "mengancam akan …", "meminta AS untuk …", "urged Israel to …"."""
        lex = self.lex
        for y in range(trig.j + 1, min(self.n, trig.j + 8)):
            low = self.toks[y].low
            if low in lex.complement_markers or low in lex.future.cues:
                nxt = self.toks[y + 1].low if y + 1 < self.n else ""
                # "agreed to a ceasefire": "to" + noun phrase is not a complement clause
                return nxt not in lex.determiners
            if self._is_break(y) and low != ",":
                return False
        # "meminta AS melayangkan …": a request's object followed by the requested action
        y = trig.j + 1
        while y < self.n and self._is_filler(self.toks[y].low):
            y += 1
        k = self._entity_starting(y) if y < self.n else -1
        if trig.entry.type in lex.complement_types and k >= 0:
            z = self.ent_span[k][1] + 1
            if (
                z < self.n
                and lex.entries_for(self.toks[z].low) == ()
                and (self.toks[z].low.startswith(lex.verb_prefixes))
            ):
                return True
        return False

    def _place_after(self, trig: _Trig) -> int:
        """A LOC entity introduced by a location preposition right after the noun."""
        lex = self.lex
        y = trig.j + 1
        if y < self.n and self.toks[y].low in lex.location_preps:
            z = y + 1
            while z < self.n and self._is_filler(self.toks[z].low):
                z += 1
            k = self._entity_starting(z) if z < self.n else -1
            if k >= 0 and self.ents[k].label == "LOC":
                return k
        return -1

    def _full_name(self, k: int) -> int:
        """ "Amerika Serikat (AS)": an abbreviation in brackets stands for the name before it."""
        if k < 0:
            return k
        a_, b_ = self.ent_span[k]
        if (
            a_ >= 2
            and b_ + 1 < self.n
            and self.toks[a_ - 1].low == "("
            and self.toks[b_ + 1].low == ")"
        ):
            k2 = self._entity_ending(a_ - 2)
            if k2 >= 0:
                return k2
        return k

    def _object_of(self, trig: _Trig, verbal_ends: set[int]) -> bool:
        """A noun that is the object of another trigger ("protested the arrest of X",
        "rejected the charge", "mengutuk serangan"): the topic of that event, not a new one."""
        x = trig.i - 1
        steps = 0
        while x >= 0 and steps < 4:
            if x in verbal_ends:
                return True
            low = self.toks[x].low
            if not (
                self._is_filler(low)
                or low in self.lex.all_preps
                or low in self.lex.skip_words
                or (self.lex.morphology == "english" and low.endswith("ly"))
            ):
                return False
            x -= 1
            steps += 1
        return False

    def _has_passive_light_verb(self, trig: _Trig) -> bool:
        lex = self.lex
        for y in range(trig.j + 1, min(self.n, trig.j + 4)):
            low = self.toks[y].low
            if low in lex.passive_light_verbs:
                return True
            if self._is_break(y) or self.ent_at[y] >= 0:
                return False
        return False

    def _owns_light_noun(self, k: int) -> bool:
        y = self.ent_span[k][1] + 1
        if y < self.n and self.toks[y].low == ")":  # "United Nations (UN) troops"
            y += 1
        while y < self.n and self.ent_at[y] >= 0:
            y = self.ent_span[self.ent_at[y]][1] + 1
            if y < self.n and self.toks[y].low == ")":
                y += 1
        return y < self.n and self.toks[y].low in self.lex.light_nouns_flat

    def _in_purpose_clause(self, trig: _Trig) -> bool:
        x = trig.i - 1
        while x >= 0 and (
            self.toks[x].low in self.lex.negation
            or self.toks[x].low in self.lex.purpose_skip
            or (self.lex.morphology == "english" and self.toks[x].low.endswith("ly"))
        ):
            x -= 1
        return x >= 0 and self.toks[x].low in self.lex.purpose_markers

    def _is_topic(self, trig: _Trig) -> bool:
        """ "mengenai kesepakatan kedua", "talks about the deal": a topic, not an event."""
        x = trig.i - 1
        steps = 0
        while x >= 0 and steps < 2:
            low = self.toks[x].low
            if low in self.lex.topic_preps:
                return True
            if not self._is_filler(low):
                return False
            x -= 1
            steps += 1
        return False

    def _speaker(self, trig: _Trig) -> int:
        """Inside a quote with no subject: the speaker named after 'kata'/'said'."""
        lex = self.lex
        if not self.in_quote[trig.i] and not any(
            self.toks[x].low in _QUOTES for x in range(0, trig.i)
        ):
            return -1
        for x in range(trig.j + 1, self.n):
            if self.toks[x].low in lex.reported_after:
                k = self._entity_ending(x - 1)
                if k >= 0:  # "…," Regev said
                    return k
                y = x + 1
                steps = 0
                while y < self.n and steps < 6:
                    k = self._entity_starting(y)
                    if k >= 0:
                        return self._chain_head(k)
                    low = self.toks[y].low
                    if not (
                        self._is_filler(low)
                        or self.toks[y].text[:1].isupper()
                        or low in lex.light_nouns_flat
                        or low in lex.speaker_titles
                    ):
                        return -1
                    y += 1
                    steps += 1
                return -1
        return -1


def code_events(
    doc: Any, entities: list[Entity], lexicon: EventLexicon, text: str | None = None
) -> list[Event]:
    """Code PLOVER events in a spaCy Doc whose text is the article, given its entities.

    `text`, when the caller has it, is the doc's text (spaCy's `doc.text` joins every token
    anew on each call).
    """
    text = doc.text if text is None else text
    if not text or len(doc) == 0:
        return []
    ents = sorted(
        (e for e in entities if 0 <= e.start < e.end <= len(text)), key=lambda e: (e.start, -e.end)
    )
    ent_starts = [e.start for e in ents]
    # Offsets and lengths as one array: no spaCy Token object per token and sentence.
    columns = doc.to_array([IDX, LENGTH, IS_SPACE]).tolist()
    events: list[Event] = []
    for s, t in _sentences(doc):
        if t <= s:
            continue
        toks = []
        for idx, length, is_space in columns[s:t]:
            if is_space:
                continue
            word = text[idx : idx + length]
            toks.append(_Tok(word, word.lower(), idx, idx + length))
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


def format_markdown_tables(lang: str, path: str | Path) -> str:
    """Per-type and summary tables for dev / test / all splits, as markdown."""
    results = {
        sp or "all": evaluate_gold_file(path, lang, split=sp) for sp in ("dev", "test", None)
    }
    out = [
        f"#### {lang}",
        "",
        "| type | dev P | dev R | dev F1 | test P | test R | test F1 | all F1 | support (all) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for typ in PLOVER_TYPES:
        cells = []
        for sp in ("dev", "test"):
            r = results[sp]["per_type"].get(typ)
            cells += (
                ["–", "–", "–"]
                if r is None
                else [f"{r['precision']:.2f}", f"{r['recall']:.2f}", f"{r['f1']:.2f}"]
            )
        r_all = results["all"]["per_type"].get(typ)
        if r_all is None:
            continue
        out.append(
            f"| {typ} | " + " | ".join(cells) + f" | {r_all['f1']:.2f} | {r_all['support']} |"
        )
    out += [
        "",
        "| split | sentences | gold events | micro P | micro R | micro F1 | source acc | target acc | source acc (gold filled) | target acc (gold filled) | negation acc | context acc |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def f(x: float | None) -> str:
        return "–" if x is None else f"{x:.3f}"

    for sp in ("dev", "test", "all"):
        r = results[sp]
        m = r["micro"]
        out.append(
            f"| {sp} | {r['sentences']} | {r['gold_events']} | {f(m['precision'])} | {f(m['recall'])} | {f(m['f1'])} | "
            f"{f(r['source_accuracy'])} | {f(r['target_accuracy'])} | {f(r['source_accuracy_nonnull'])} | "
            f"{f(r['target_accuracy_nonnull'])} | {f(r['negation_accuracy'])} | {f(r['context_accuracy'])} |"
        )
    return "\n".join(out) + "\n"


def _main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="Evaluate the event coder on the gold files.")
    ap.add_argument("--lang", action="append", help="id, en (default both)")
    ap.add_argument(
        "--data", default=str(Path(__file__).resolve().parents[2] / "tests" / "data" / "events")
    )
    ap.add_argument("--errors", action="store_true", help="print the errors of the dev split")
    ap.add_argument(
        "--markdown", action="store_true", help="print markdown tables (docs/EVENTS.md)"
    )
    args = ap.parse_args(argv)
    for lang in args.lang or ["id", "en"]:
        path = Path(args.data) / f"{lang}.jsonl"
        if not path.exists():
            print(f"[{lang}] no gold file at {path}")
            continue
        if args.markdown:
            print(format_markdown_tables(lang, path))
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
