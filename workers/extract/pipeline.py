"""The extract stage's core: language routing, spaCy NER, the gazetteer ruler, actor linking, events.

Precedence: a gazetteer match (watchlist alias, country name) wins over an overlapping model
entity, because it carries a canonical id; model entities fill everything else.
"""

from __future__ import annotations

import ctypes
import logging
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import spacy
from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.util import filter_spans
from thinc.api import Model, NumpyOps
from threadpoolctl import threadpool_limits

from workers.alert.watchlist import Watchlist
from workers.domain import Article, Entity, Event, Extraction, utc_now
from workers.extract.gazetteer import AliasMatcher, Entry
from workers.extract.knowledge import cased_aliases, knowledge_entries
from workers.extract.langid import detect_language, pipeline_language
from workers.extract.titles import split_title, title_before
from workers.extract.tokenizer import load_lean
from workers.resources import models_dir

log = logging.getLogger(__name__)

PIPELINE_LANGUAGES = ("id", "en", "xx")
MODEL_LABELS = {"PER", "ORG", "LOC", "MISC"}
# Words a short form must not be: sentence-initial capitals that are ordinary words.
_SHORT_FORM_MIN = 3


def watchlist_entries(watchlist: Watchlist) -> list[tuple[str, Entry]]:
    """Every watchlist alias, linked to its actor."""
    return [
        (alias, Entry(actor.type, canonical=actor.id, actor_id=actor.id))
        for actor in watchlist.actors
        for alias in actor.all_names
    ]


# Pipelines whose shipped strings (their training vocabulary) all get a lexeme at load, kept:
# extraction runs in memory zones, where a word without a lexeme gets a transient one per batch.
# id (75k strings): on IndoSum 57 % of tokens lacked one ("dan", "di"), 9 % after; in-process
# extraction in batches of 16 ran 2-4 % faster (A/B, 4 runs) for +6 MB RSS. en (101k strings,
# word vectors included): 2.5-3.5 % faster on Wikinews for +20 MB (A/B, 2 runs each), left out
# to keep an extract worker under 400 MB.
PRELOAD_LEXEMES = frozenset({"id"})


# Matrix multiplies: thinc's CPU backend calls BLIS by default, whose kernels ran 21-26 GFLOP/s
# per core on every host measured here; numpy's OpenBLAS ran 74-78 GFLOP/s on one core of the
# same host (float32, tok2vec's shapes). tok2vec's multiplies were ~45 % of extraction time.
def use_openblas(nlp: Language) -> Language:
    """Point every layer of `nlp`'s models at numpy's ops (OpenBLAS matrix multiplies).

    After loading rather than around it: spaCy builds some layers under its own ops (the NER's
    output layer on resizing). The parser's greedy decoding calls BLIS from C either way.
    """
    ops = NumpyOps(use_blis=False)
    for _name, component in nlp.pipeline:
        model = getattr(component, "model", None)
        if isinstance(model, Model):
            for layer in model.walk():
                layer.ops = ops
    return nlp


def one_blas_thread() -> None:
    """One BLAS thread in this process: a worker process is one core's worth of extraction
    (deployments scale by processes); two threads per process would oversubscribe the cores."""
    threadpool_limits(1, user_api="blas")


def load_pipeline(language: str, model_root: Path | None = None) -> Language:
    """The trained pipeline shipped for `language`, or a blank one; with sentence boundaries."""
    model_path = (model_root or models_dir()) / language
    if (model_path / "config.cfg").exists():
        nlp = use_openblas(load_lean(model_path))
    else:
        if language != "xx":
            log.warning("no trained pipeline in %s; using the gazetteer only", model_path)
        nlp = spacy.blank(language)
    if "sentencizer" not in nlp.pipe_names and "parser" not in nlp.pipe_names:
        nlp.add_pipe("sentencizer")
    if language in PRELOAD_LEXEMES:
        for string in list(nlp.vocab.strings):
            nlp.vocab[string]
    return nlp


# A pipeline's first LEARN_ARTICLES articles are extracted outside a spaCy memory zone: their
# words stay in the vocabulary and the tokenizer caches their chunks. It caches nothing inside a
# zone, so a worker that only ever ran in zones re-tokenised every chunk of every batch: 39
# articles per CPU-second on IndoSum instead of 46. After 1,000 articles (about +25,000 strings,
# +5 MB) every batch runs in a zone and the vocabulary stops growing: 44.6 per CPU-second.
LEARN_ARTICLES = 1000


# Articles per nlp.pipe batch (an extract message carries 16 by default). tok2vec keeps every
# layer's arrays of a batch alive until the batch is done: ~100 MB at 16 IndoSum articles,
# ~50 MB at 8. In-process A/B with the allocator setting below, 3 runs each: batch 16 70.1
# articles per CPU-second, peak RSS 378 MB; batch 8 67.7, 329 MB. 8 keeps an extract worker
# well under 400 MB for 3 % of its speed.
PIPE_BATCH = 8
# ... and at most this many characters (a longer article goes alone). tok2vec's arrays grow with
# a batch's tokens, and freed memory is kept for reuse (below), so a worker's RSS is set by the
# largest batch it has met: capped by articles only, it rose by ~25 MB at the first batch of
# eight long articles, hundreds of articles in. Capped by characters too, the largest batch is
# met early (eight IndoSum articles average ~16,700 characters; the cap splits 9 % of batches).
PIPE_CHARS = 20_000
# glibc gave the memory of those arrays back to the system after each batch and faulted it in
# again for the next (~1,500 page faults per article, 6-9 % of an extract worker's CPU time in
# the kernel). Keeping up to 512 MB of freed heap for reuse removes that: in-process A/B on
# IndoSum, 3 runs each (batch 16), 62.8 -> 70.1 articles per CPU-second, peak RSS 379 -> 378
# MB; the RSS stays at its high-water mark instead of dipping between batches (BENCHMARKS.md).
MMAP_THRESHOLD = 32 * 1024 * 1024
TRIM_THRESHOLD = 512 * 1024 * 1024


def _never(_left: int) -> bool:
    return False


def pipe_batches(texts: Sequence[str], size: int, chars: int) -> Iterator[list[int]]:
    """Positions of `texts` in consecutive groups of at most `size` texts and `chars`
    characters; a text longer than `chars` makes a group of its own."""
    group: list[int] = []
    total = 0
    for position, text in enumerate(texts):
        if group and (len(group) >= size or total + len(text) > chars):
            yield group
            group, total = [], 0
        group.append(position)
        total += len(text)
    if group:
        yield group


def keep_freed_memory() -> bool:
    """Tell glibc's malloc to keep freed memory for reuse (see TRIM_THRESHOLD); False elsewhere."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    return bool(
        mallopt(m_mmap_threshold, MMAP_THRESHOLD) and mallopt(m_trim_threshold, TRIM_THRESHOLD)
    )


class Extractor:
    """Turns articles into Extractions; built once per worker process."""

    def __init__(
        self,
        watchlist: Watchlist,
        *,
        model_root: Path | None = None,
        events: bool = True,
        learn_articles: int = LEARN_ARTICLES,
    ) -> None:
        self.watchlist = watchlist
        self.model_root = model_root
        self.use_events = events
        self.learn_articles = learn_articles
        self._seen: dict[str, int] = defaultdict(int)  # articles extracted, per pipeline
        self._nlp: dict[str, Language] = {}
        self._matchers: dict[str, AliasMatcher] = {}
        self._event_coders: dict[str, Any] = {}

    def set_watchlist(self, watchlist: Watchlist) -> None:
        """Use a new watchlist from the next article on (gazetteers are rebuilt lazily)."""
        self.watchlist = watchlist
        self._matchers.clear()

    def nlp(self, language: str) -> Language:
        """The spaCy pipeline for a pipeline language, loaded on first use."""
        if language not in self._nlp:
            self._nlp[language] = load_pipeline(language, self.model_root)
        return self._nlp[language]

    def matcher(self, language: str) -> AliasMatcher:
        """The gazetteer: watchlist aliases first, then organisations, media, countries, places."""
        if language not in self._matchers:
            self._matchers[language] = AliasMatcher(
                [*watchlist_entries(self.watchlist), *knowledge_entries(language, cased=True)],
                case_sensitive=cased_aliases(language),
            )
        return self._matchers[language]

    def warm_up(self, languages: Sequence[str] = ("id", "en")) -> None:
        """Ready this process for a stream of articles: pipelines and gazetteers loaded now
        rather than on the first article, freed memory kept for the next batch, one BLAS
        thread."""
        keep_freed_memory()
        one_blas_thread()
        for language in languages:
            self.nlp(language)
            self.matcher(language)
            self._events_for(language)

    def _events_for(self, language: str) -> Any:
        if not self.use_events or language == "xx":
            return None
        if language not in self._event_coders:
            from workers.extract.events import EventLexicon

            self._event_coders[language] = EventLexicon.for_language(language)
        return self._event_coders[language]

    def extract_many(
        self, articles: Sequence[Article], batch_size: int = PIPE_BATCH
    ) -> list[Extraction]:
        """Extract every article, batching by pipeline language; output keeps input order."""
        return self.extract_until(articles, _never, batch_size)[0]

    def extract_until(
        self,
        articles: Sequence[Article],
        stop: Callable[[int], bool],
        batch_size: int = PIPE_BATCH,
    ) -> tuple[list[Extraction], list[Article]]:
        """Extract the articles a pipe batch at a time, asking `stop(left)` after each batch
        that leaves `left` > 0 articles; when it says yes, stop there.

        Returns the extractions made (in input order) and the articles left (in input order).
        """
        languages = [self.route(article) for article in articles]
        by_pipeline: dict[str, list[int]] = defaultdict(list)
        for index, (_code, pipeline) in enumerate(languages):
            by_pipeline[pipeline].append(index)
        results: list[Extraction | None] = [None] * len(articles)
        left = len(articles)
        for pipeline, indexes in by_pipeline.items():
            texts = [articles[i].text for i in indexes]
            nlp = self.nlp(pipeline)
            # In a zone, the strings and lexemes the batch adds are freed when it ends: without
            # one the vocabulary keeps every new word and a long-running worker grows. The first
            # articles teach the vocabulary and the tokenizer cache instead (LEARN_ARTICLES).
            learning = self._seen[pipeline] < self.learn_articles
            with nullcontext() if learning else nlp.memory_zone():
                for group in pipe_batches(texts, batch_size, PIPE_CHARS):
                    docs = nlp.pipe([texts[i] for i in group], batch_size=len(group))
                    for i, doc in zip(group, docs, strict=True):
                        index = indexes[i]
                        results[index] = self._extraction(
                            articles[index], languages[index][0], pipeline, doc
                        )
                    self._seen[pipeline] += len(group)
                    left -= len(group)
                    if left and stop(left):
                        return (
                            [r for r in results if r is not None],
                            [a for a, r in zip(articles, results, strict=True) if r is None],
                        )
        return [r for r in results if r is not None], []

    def route(self, article: Article) -> tuple[str, str]:
        """(language code, pipeline language): the hint when it is native, else detection."""
        hint = article.language
        code = hint if hint and pipeline_language(hint) != "xx" else detect_language(article.text)
        return code, pipeline_language(code)

    def entities(self, doc: Doc, pipeline: str, text: str | None = None) -> list[Entity]:
        """Model entities and gazetteer matches, merged, with titles, actor links and short forms.

        Precedence: a watchlist alias wins over anything it overlaps (it names a watched actor);
        between the other gazetteer entries and the model, the longer span wins, and on equal
        spans the gazetteer (it carries a canonical id). A PER span loses its leading title
        ("Presiden Rusia Vladimir Putin" -> "Vladimir Putin", title "Presiden Rusia").
        """
        text = doc.text if text is None else text  # the same string; doc.text rebuilds it
        entries: dict[tuple[int, int], Entry] = {}
        watched: list[Span] = []
        known: list[Span] = []
        for match in self.matcher(pipeline).find(text):
            span = doc.char_span(
                match.start, match.end, label=match.entry.label, alignment_mode="expand"
            )
            if span is not None:
                entries[(span.start_char, span.end_char)] = match.entry
                (watched if match.entry.actor_id else known).append(span)
        titles: dict[tuple[int, int], str] = {}
        model = []
        for ent in doc.ents:
            if ent.label_ not in MODEL_LABELS:
                continue
            if ent.label_ == "PER":
                start, end, title = split_title(text, ent.start_char, ent.end_char, pipeline)
                if title is not None:
                    trimmed = doc.char_span(start, end, label="PER", alignment_mode="contract")
                    if trimmed is None or not len(trimmed):
                        continue
                    titles[(trimmed.start_char, trimmed.end_char)] = title
                    ent = trimmed
            model.append(ent)
        kept = filter_spans(watched)
        taken = {i for span in kept for i in range(span.start, span.end)}
        rest = [s for s in known + model if not taken & set(range(s.start, s.end))]
        kept += filter_spans(rest)  # on a tie the first listed wins: gazetteer before model
        entities = []
        for span in sorted(kept, key=lambda s: s.start_char):
            key = (span.start_char, span.end_char)
            entry = entries.get(key)
            entities.append(
                Entity(
                    text=text[span.start_char : span.end_char],
                    start=span.start_char,
                    end=span.end_char,
                    label=entry.label if entry else span.label_,
                    actor_id=entry.actor_id if entry else None,
                    canonical=entry.canonical if entry else None,
                    title=titles.get(key),
                    source="ruler" if entry else "model",
                )
            )
        return [
            with_title(text, ent, pipeline)
            for ent in resolve_short_forms(text, entities, self.watchlist)
        ]

    def _extraction(self, article: Article, code: str, pipeline: str, doc: Doc) -> Extraction:
        entities = self.entities(doc, pipeline, article.text)
        events: list[Event] = []
        lexicon = self._events_for(pipeline)
        if lexicon is not None:
            from workers.extract.events import code_events

            events = code_events(doc, entities, lexicon, article.text)
        return Extraction(
            article_id=article.id,
            story_id=article.story_id or article.id,
            language=code,
            text=article.text,
            title=article.title,
            url=article.url,
            source=article.source,
            published_at=article.published_at,
            entities=entities,
            events=events,
            truncated=article.truncated,
            ingested_at=article.ingested_at,
            extracted_at=utc_now(),
        )


@dataclass(frozen=True)
class _Ent:
    start_char: int
    end_char: int
    label_: str


@dataclass(frozen=True)
class _EntDoc:
    ents: list[_Ent]


class EntityPipe:
    """spaCy's `pipe` interface over the extractor's entities, so NER evaluation scores what ships."""

    def __init__(self, extractor: Extractor, language: str) -> None:
        self.extractor = extractor
        self.language = language

    def pipe(self, texts: Iterable[str], batch_size: int = 256) -> Iterator[_EntDoc]:
        """Docs whose .ents are the merged model + gazetteer entities."""
        nlp = self.extractor.nlp(self.language)
        for doc in nlp.pipe(texts, batch_size=batch_size):
            ents = self.extractor.entities(doc, self.language)
            yield _EntDoc([_Ent(e.start, e.end, e.label) for e in ents])


def with_title(text: str, ent: Entity, language: str) -> Entity:
    """A PER entity with the title phrase right before it ("Menteri Luar Negeri" Choe Son Hui)."""
    if ent.label != "PER" or ent.title is not None:
        return ent
    found = title_before(text, ent.start, language)
    return ent.model_copy(update={"title": found[1]}) if found else ent


def resolve_short_forms(text: str, entities: list[Entity], watchlist: Watchlist) -> list[Entity]:
    """Link "Putin", "Choe", "Kim" to the watched actor whose full name this article gives.

    A short form is the first or last word of a watched person's alias as it appears in the
    article. A short form two named actors share links to neither.
    """
    owners: dict[str, set[str]] = defaultdict(set)
    for ent in entities:
        actor = watchlist.get(ent.actor_id) if ent.actor_id else None
        if actor is None or actor.type != "PER":
            continue
        words = re.findall(r"\w+", ent.text)
        if len(words) < 2:
            continue
        for word in (words[0], words[-1]):
            if len(word) >= _SHORT_FORM_MIN and word[0].isupper():
                owners[word].add(actor.id)
    unique = {word: next(iter(ids)) for word, ids in owners.items() if len(ids) == 1}
    if not unique:
        return entities
    pattern = re.compile(r"(?<!\w)(" + "|".join(map(re.escape, unique)) + r")(?:nya)?(?!\w)")
    taken = [(e.start, e.end) for e in entities]
    resolved = list(entities)
    for match in pattern.finditer(text):
        start, end = match.span(1)
        overlapping = [e for e in resolved if e.start < end and start < e.end]
        if any(e.actor_id for e in overlapping):
            continue
        actor_id = unique[match.group(1)]
        if overlapping:  # a model entity on the short form ("Kim" as PER): link it, keep its span
            for ent in overlapping:
                if ent.label == "PER" and ent.start == start:
                    resolved[resolved.index(ent)] = ent.model_copy(
                        update={"actor_id": actor_id, "canonical": actor_id}
                    )
            continue
        resolved.append(
            Entity(
                text=text[start:end],
                start=start,
                end=end,
                label="PER",
                actor_id=actor_id,
                canonical=actor_id,
                source="ruler",
            )
        )
        taken.append((start, end))
    return sorted(resolved, key=lambda e: e.start)
