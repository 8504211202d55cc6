"""Corpus conversion and spaCy NER training for the Indonesian (`id`) and English (`en`) pipelines.

Usage (until `pantau train ner` wraps it):
    python -m workers.extract.training --lang id --data /work/shared/data --out training/id

Everything here is deterministic (seeded splits); the corpora are documented in
`workers/extract/models/<lang>/README.md` and `docs/EVALUATION-NER.md`.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workers.extract.evaluate import (
    MISSING,
    Sentence,
    iob_to_spans,
    iter_conll_blocks,
    normalize_tags,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO_ROOT / "config" / "spacy"
MODELS_DIR = Path(__file__).resolve().parent / "models"

# ---------------------------------------------------------------------------------------------
# Label mappings, one per corpus. Values: "PER"/"ORG"/"LOC"/"MISC", "O" (drop to O) or "-" (missing).
# ---------------------------------------------------------------------------------------------
IDNER_LABELS: dict[str, str] = {"PER": "PER", "ORG": "ORG", "LOC": "LOC"}
NERUI_LABELS: dict[str, str] = {"PERSON": "PER", "ORGANIZATION": "ORG", "LOCATION": "LOC"}
NERUGM_LABELS: dict[str, str] = {
    "PERSON": "PER",
    "ORGANIZATION": "ORG",
    "LOCATION": "LOC",
    "TIME": "O",
    "QUANTITY": "O",
}
NERGRIT_LABELS: dict[str, str] = {"PERSON": "PER", "ORGANISATION": "ORG", "PLACE": "LOC"}
# NERP has no ORG type: its O tokens are read as missing (see NERP_O_TAG), IND/EVT/FNB as missing too.
NERP_LABELS: dict[str, str] = {
    "PPL": "PER",
    "PLC": "LOC",
    "IND": MISSING,
    "EVT": MISSING,
    "FNB": MISSING,
}
NERP_O_TAG = MISSING
WIKIGOLD_LABELS: dict[str, str] = {"PER": "PER", "ORG": "ORG", "LOC": "LOC", "MISC": MISSING}
BTC_LABELS: dict[str, str] = {"PER": "PER", "ORG": "ORG", "LOC": "LOC"}
WNUT17_LABELS: dict[str, str] = {
    "person": "PER",
    "location": "LOC",
    "group": "ORG",
    "corporation": "ORG",
    "product": MISSING,
    "creative-work": MISSING,
}

LABELS: tuple[str, ...] = ("PER", "ORG", "LOC")

# Training data licences (from each folder's SOURCE.md), written into the shipped meta.json.
ID_SOURCES: tuple[tuple[str, str], ...] = (
    ("idner-news-2k (Khairunnisa et al. 2020)", "MIT"),
    (
        "IndoLEM NER-UI (Gultom & Wibowo 2017; Koto et al. 2020)",
        "CC BY 4.0 (per SEACrowd catalogue)",
    ),
    ("IndoLEM NER-UGM (Fachri 2014; Koto et al. 2020)", "CC BY 4.0 (per SEACrowd catalogue)"),
    (
        "IndoNLU NERGrit (NERGRIT developers; Wilie et al. 2020)",
        "Apache-2.0 + NERGRIT contributor notice",
    ),
    ("IndoNLU NERP (Hoesen & Purwarianti 2018)", "Apache-2.0 (repo) / CC BY-SA 4.0 (SEACrowd)"),
)
EN_SOURCES: tuple[tuple[str, str], ...] = (
    ("wikigold (Balasuriya et al. 2009)", "CC BY 4.0"),
    ("Broad Twitter Corpus (Derczynski et al. 2016)", "CC BY 4.0"),
    ("WNUT-17 (Derczynski et al. 2017)", "CC BY 4.0"),
    (
        "static vectors: English Wikinews via toscaData (Wikinews, https://en.wikinews.org)",
        "CC BY 2.5",
    ),
)

# idner-news-2k train is the in-domain (news, cased) corpus for the main target: it is repeated in the train set.
IDNER_TRAIN_REPEAT = 2

# Deterministic English held-out split (a tenth of wikigold documents + a tenth of each BTC section).
EN_SPLIT_SEED = 20261126
EN_HELDOUT_FRACTION = 0.10
EN_DEV_FRACTION = 0.05
# wikigold (well-formed encyclopaedic text, closest to news) is repeated in the English train set.
EN_WIKIGOLD_REPEAT = 2
# WNUT-17 (emerging entities, different guidelines) in the English train set.
EN_USE_WNUT17 = True

# ---------------------------------------------------------------------------------------------
# Country / capital gazetteer used to make "country names are LOC" consistent in the training data.
# ---------------------------------------------------------------------------------------------
ID_COUNTRY_NAMES: tuple[str, ...] = (
    "Indonesia",
    "Amerika Serikat",
    "Amerika",
    "AS",
    "Jepang",
    "Inggris",
    "Britania Raya",
    "Tiongkok",
    "China",
    "Cina",
    "RRT",
    "RRC",
    "Korea Utara",
    "Korea Selatan",
    "Korut",
    "Korsel",
    "Korea",
    "Rusia",
    "Jerman",
    "Prancis",
    "Perancis",
    "Belanda",
    "Belgia",
    "Swiss",
    "Swedia",
    "Norwegia",
    "Denmark",
    "Finlandia",
    "Italia",
    "Spanyol",
    "Portugal",
    "Yunani",
    "Turki",
    "Mesir",
    "Arab Saudi",
    "Saudi Arabia",
    "Suriah",
    "Irak",
    "Iran",
    "Israel",
    "Palestina",
    "Yordania",
    "Lebanon",
    "Libanon",
    "Libya",
    "Tunisia",
    "Aljazair",
    "Maroko",
    "Afrika Selatan",
    "Nigeria",
    "Kenya",
    "Etiopia",
    "Ethiopia",
    "Sudan",
    "Somalia",
    "Yaman",
    "Qatar",
    "Kuwait",
    "Uni Emirat Arab",
    "UEA",
    "Oman",
    "Bahrain",
    "Afghanistan",
    "Pakistan",
    "India",
    "Bangladesh",
    "Sri Lanka",
    "Nepal",
    "Myanmar",
    "Thailand",
    "Vietnam",
    "Kamboja",
    "Laos",
    "Malaysia",
    "Singapura",
    "Filipina",
    "Brunei",
    "Brunei Darussalam",
    "Timor Leste",
    "Australia",
    "Selandia Baru",
    "Papua Nugini",
    "Kanada",
    "Meksiko",
    "Brasil",
    "Brazil",
    "Argentina",
    "Kolombia",
    "Venezuela",
    "Chili",
    "Peru",
    "Kuba",
    "Ukraina",
    "Polandia",
    "Hungaria",
    "Austria",
    "Ceko",
    "Rumania",
    "Bulgaria",
    "Serbia",
    "Kroasia",
    "Irlandia",
    "Skotlandia",
    "Taiwan",
    "Hong Kong",
    "Mongolia",
    "Kazakhstan",
    "Uzbekistan",
    "Armenia",
    "Azerbaijan",
    "Belarus",
    "Islandia",
    "Luksemburg",
    "Vatikan",
    "Uni Soviet",
)
CAPITAL_NAMES: tuple[str, ...] = (
    "Jakarta",
    "Washington",
    "Beijing",
    "Tokyo",
    "Seoul",
    "Pyongyang",
    "Moskow",
    "Moscow",
    "London",
    "Paris",
    "Berlin",
    "Roma",
    "Rome",
    "Madrid",
    "Kairo",
    "Cairo",
    "Riyadh",
    "Teheran",
    "Tehran",
    "Baghdad",
    "Bagdad",
    "Damaskus",
    "Damascus",
    "Yerusalem",
    "Jerusalem",
    "Tel Aviv",
    "Ankara",
    "Kabul",
    "Islamabad",
    "New Delhi",
    "Bangkok",
    "Hanoi",
    "Manila",
    "Kuala Lumpur",
    "Canberra",
    "Ottawa",
    "Brussel",
    "Brussels",
    "Den Haag",
    "Amsterdam",
    "Jenewa",
    "Geneva",
    "Wina",
    "Vienna",
    "Beirut",
    "Doha",
    "Abu Dhabi",
    "Kiev",
    "Kyiv",
    "Taipei",
    "Phnom Penh",
    "Yangon",
    "Naypyidaw",
    "Dhaka",
    "Colombo",
    "Wellington",
    "Athena",
    "Athens",
    "Lisabon",
    "Lisbon",
    "Stockholm",
    "Oslo",
    "Kopenhagen",
    "Copenhagen",
    "Helsinki",
    "Warsawa",
    "Warsaw",
    "Praha",
    "Prague",
    "Budapest",
    "Dili",
    "Bandar Seri Begawan",
    "Vientiane",
    "Ulan Bator",
    "Tripoli",
    "Tunis",
    "Amman",
    "Sanaa",
    "Kuwait City",
    "Manama",
    "Muskat",
    "Muscat",
    "Nairobi",
    "Addis Ababa",
    "Khartoum",
    "Mogadishu",
    "Pretoria",
    "Buenos Aires",
    "Brasilia",
    "Bogota",
    "Caracas",
    "Santiago",
    "Lima",
    "Havana",
    "Meksiko City",
    "Mexico City",
)
# Country names from pycountry that are too ambiguous to relabel (person names, common words).
GAZETTEER_EXCLUDE: frozenset[str] = frozenset(
    {
        "Chad",
        "Jordan",
        "Georgia",
        "Jersey",
        "Turkey",
        "Mali",
        "Niger",
        "Guinea",
        "Togo",
        "Dominica",
        "Timor",
        "Guernsey",
        "Man",
        "Christmas Island",
        "Cook Islands",
        "Norfolk Island",
        "Heard Island and McDonald Islands",
    }
)
# A gazetteer hit right after one of these words is left alone ("bahasa Inggris" is a language).
GAZETTEER_BLOCK_PREV: frozenset[str] = frozenset({"bahasa", "Bahasa", "berbahasa", "Berbahasa"})


def build_location_gazetteer(extra: Iterable[str] = ()) -> frozenset[tuple[str, ...]]:
    """Country (pycountry English names + Indonesian list) and capital names as token tuples."""
    names: set[str] = set(ID_COUNTRY_NAMES) | set(CAPITAL_NAMES) | set(extra)
    try:
        import pycountry

        for c in pycountry.countries:
            for attr in ("name", "common_name"):
                val = getattr(c, attr, None)
                if val and "," not in val and "(" not in val and len(val.split()) <= 3:
                    names.add(val)
    except ImportError:  # pragma: no cover - pycountry is a project dependency
        pass
    names.add("Palestine")
    return frozenset(tuple(n.split()) for n in names if n not in GAZETTEER_EXCLUDE)


def relabel_locations(
    tokens: Sequence[str], tags: Sequence[str], gazetteer: frozenset[tuple[str, ...]]
) -> tuple[list[str], int]:
    """Retag O-tagged gazetteer matches (longest first, case-sensitive) as LOC; return tags and #spans changed."""
    out = list(tags)
    max_len = max((len(g) for g in gazetteer), default=0)
    i, changed = 0, 0
    while i < len(tokens):
        hit = 0
        if out[i] == "O" and not (i > 0 and tokens[i - 1] in GAZETTEER_BLOCK_PREV):
            for n in range(min(max_len, len(tokens) - i), 0, -1):
                if tuple(tokens[i : i + n]) in gazetteer and all(t == "O" for t in out[i : i + n]):
                    # do not glue onto a following I- continuation of some other entity
                    if i + n < len(out) and out[i + n].startswith("I-"):
                        continue
                    hit = n
                    break
        if hit:
            out[i] = "B-LOC"
            for j in range(i + 1, i + hit):
                out[j] = "I-LOC"
            changed += 1
            i += hit
        else:
            i += 1
    return out, changed


# ---------------------------------------------------------------------------------------------
# Readers
# ---------------------------------------------------------------------------------------------
def split_multiword(tokens: Sequence[str], tags: Sequence[str]) -> Sentence:
    """Split tokens that contain whitespace (NERP "salah satu") into words, continuing the entity tag."""
    out_toks: list[str] = []
    out_tags: list[str] = []
    for tok, tag in zip(tokens, tags, strict=True):
        parts = tok.split()
        if not parts:
            continue
        for k, part in enumerate(parts):
            out_toks.append(part)
            if k > 0 and tag.startswith("B-"):
                out_tags.append("I-" + tag[2:])
            else:
                out_tags.append(tag)
    return out_toks, out_tags


def read_corpus(
    path: str | Path,
    label_map: Mapping[str, str],
    o_tag: str = "O",
    sep: str | None = None,
) -> list[Sentence]:
    """Read one CoNLL/TSV corpus file into (words, IOB2 tags) with `label_map`, O->`o_tag`, split multi-word tokens."""
    out: list[Sentence] = []
    for _doc, rows in iter_conll_blocks(path, sep=sep):
        tokens = [r[0] for r in rows]
        raw_tags = [r[-1] if len(r) > 1 else "O" for r in rows]
        toks, tags = split_multiword(tokens, normalize_tags(raw_tags, label_map, o_tag=o_tag))
        if toks:
            out.append((toks, normalize_tags(tags, {}, o_tag=o_tag)))
    return out


def read_documents(
    path: str | Path, label_map: Mapping[str, str], sep: str | None = None
) -> list[list[Sentence]]:
    """Read a `-DOCSTART-`-delimited file (wikigold) into documents of sentences."""
    docs: dict[int, list[Sentence]] = {}
    for doc_idx, rows in iter_conll_blocks(path, sep=sep):
        toks, tags = split_multiword(
            [r[0] for r in rows], normalize_tags([r[-1] for r in rows], label_map)
        )
        if toks:
            docs.setdefault(doc_idx, []).append((toks, tags))
    return [docs[k] for k in sorted(docs)]


def read_idner(path: str | Path) -> list[Sentence]:
    """idner-news-2k: space-separated `tok upos tag`, IOB2, CRLF."""
    return read_corpus(path, IDNER_LABELS)


def read_nerui(path: str | Path) -> list[Sentence]:
    """IndoLEM NER-UI: TAB `tok tag`, IOB2."""
    return read_corpus(path, NERUI_LABELS)


def read_nerugm(path: str | Path) -> list[Sentence]:
    """IndoLEM NER-UGM: TIME/QUANTITY dropped to O, invalid I- repaired to B-."""
    return read_corpus(path, NERUGM_LABELS)


def read_nergrit(path: str | Path) -> list[Sentence]:
    """IndoNLU NERGrit: PERSON/ORGANISATION/PLACE."""
    return read_corpus(path, NERGRIT_LABELS)


def read_nerp(path: str | Path, o_as_missing: bool = True) -> list[Sentence]:
    """IndoNLU NERP (lower-cased): PPL->PER, PLC->LOC; O and IND/EVT/FNB become missing; multi-word tokens split."""
    return read_corpus(path, NERP_LABELS, o_tag=NERP_O_TAG if o_as_missing else "O", sep="\t")


def nerp_with_teacher(
    path: str | Path, teacher: Any, batch_size: int = 256
) -> tuple[list[Sentence], dict[str, int]]:
    """NERP with O kept as O except where `teacher` (a spaCy pipeline) predicts any entity on O tokens (-> missing).

    NERP has no ORG type, so its O tokens are only trustworthy as O where a PER/ORG/LOC model sees nothing;
    this keeps negative evidence for the lower-cased domain (products, food, common words) without teaching
    "organisations are O". IND/EVT/FNB stay missing.
    """
    from workers.extract.evaluate import sentence_text_and_spans

    sents = read_corpus(path, NERP_LABELS, o_tag="O", sep="\t")
    out: list[Sentence] = []
    stats: Counter[str] = Counter()
    texts = [sentence_text_and_spans(toks, tags)[0] for toks, tags in sents]
    for (toks, tags), doc in zip(sents, teacher.pipe(texts, batch_size=batch_size), strict=True):
        starts: list[int] = []
        pos = 0
        for t in toks:
            starts.append(pos)
            pos += len(t) + 1
        new = list(tags)
        for ent in doc.ents:
            for i, st in enumerate(starts):
                if st < ent.end_char and st + len(toks[i]) > ent.start_char and new[i] == "O":
                    new[i] = MISSING
                    stats[f"o_to_missing_{ent.label_}"] += 1
        stats["o_kept"] += sum(1 for t in new if t == "O")
        out.append((toks, normalize_tags(new, {}, o_tag="O")))
    return out, dict(stats)


def read_wikigold(path: str | Path, misc: bool = False) -> list[list[Sentence]]:
    """wikigold (IOB1 -> IOB2) as documents; MISC kept only if `misc`, else missing."""
    lm = dict(WIKIGOLD_LABELS, MISC="MISC") if misc else WIKIGOLD_LABELS
    return read_documents(path, lm)


def merge_at_mentions(tokens: Sequence[str], tags: Sequence[str]) -> list[str]:
    """BTC tags "@ user" as two entities (`@`=B-X, `user`=B-X): make the user name continue the "@" entity."""
    out = list(tags)
    for i in range(len(tokens) - 1):
        if tokens[i] == "@" and out[i].startswith(("B-", "I-")) and out[i + 1] == "B-" + out[i][2:]:
            out[i + 1] = "I-" + out[i][2:]
    return out


def read_btc(path: str | Path, merge_at: bool = False) -> list[Sentence]:
    """Broad Twitter Corpus section file: PER/ORG/LOC, IOB2 (BTC's own "@"=B-X, "user"=B-X kept unless `merge_at`)."""
    sents = read_corpus(path, BTC_LABELS, sep="\t")
    return [(t, merge_at_mentions(t, g)) for t, g in sents] if merge_at else sents


def read_wnut17(path: str | Path, misc: bool = False) -> list[Sentence]:
    """WNUT-17: person/location/group/corporation mapped; product/creative-work missing (or MISC if `misc`)."""
    lm = dict(WNUT17_LABELS, product="MISC", **{"creative-work": "MISC"}) if misc else WNUT17_LABELS
    return read_corpus(path, lm, sep="\t")


# ---------------------------------------------------------------------------------------------
# Corpus assembly
# ---------------------------------------------------------------------------------------------
@dataclass
class CorpusSplit:
    """Named train/dev (and optional held-out test) sentence lists plus bookkeeping."""

    train: list[Sentence] = field(default_factory=list)
    dev: list[Sentence] = field(default_factory=list)
    heldout: list[Sentence] = field(default_factory=list)
    heldout_parts: dict[str, list[Sentence]] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)


def _count(sents: Sequence[Sentence]) -> dict[str, int]:
    c: Counter[str] = Counter()
    for toks, tags in sents:
        c["sentences"] += 1
        c["tokens"] += len(toks)
        for _s, _e, lab in iob_to_spans(tags):
            c[lab] += 1
    return dict(c)


def _relabel_all(
    sents: list[Sentence], gazetteer: frozenset[tuple[str, ...]] | None
) -> tuple[list[Sentence], int]:
    if not gazetteer:
        return sents, 0
    out: list[Sentence] = []
    total = 0
    for toks, tags in sents:
        new, n = relabel_locations(toks, tags, gazetteer)
        out.append((toks, new))
        total += n
    return out, total


def build_id_corpus(
    data_dir: Path, relabel: bool = True, nerp: bool = True, nerp_teacher: Path | str | None = None
) -> CorpusSplit:
    """Indonesian train/dev: dev = NERGrit valid + NER-UI dev.01 + NER-UGM dev.01 (idner dev is never used)."""
    d = Path(data_dir)
    gaz = build_location_gazetteer() if relabel else None
    parts_train: dict[str, list[Sentence]] = {
        "idner-news-2k/train": read_idner(d / "idner-news-2k/train.heldout-filtered.txt"),
        "indolem-nerui/train.01+test.01": read_nerui(d / "indolem-nerui/train.01.tsv")
        + read_nerui(d / "indolem-nerui/test.01.tsv"),
        "indolem-nerugm/train.01+test.01": read_nerugm(
            d / "indolem-nerugm/train.01.heldout-filtered.tsv"
        )
        + read_nerugm(d / "indolem-nerugm/test.01.heldout-filtered.tsv"),
        "indonlu-nergrit/train+test": read_nergrit(d / "indonlu-nergrit/train_preprocess.txt")
        + read_nergrit(d / "indonlu-nergrit/test_preprocess.txt"),
    }
    parts_dev: dict[str, list[Sentence]] = {
        "indonlu-nergrit/valid": read_nergrit(d / "indonlu-nergrit/valid_preprocess.txt"),
        "indolem-nerui/dev.01": read_nerui(d / "indolem-nerui/dev.01.tsv"),
        "indolem-nerugm/dev.01": read_nerugm(d / "indolem-nerugm/dev.01.heldout-filtered.tsv"),
    }
    split = CorpusSplit()
    relabelled: dict[str, int] = {}
    for name, sents in list(parts_train.items()) + list(parts_dev.items()):
        sents, n = _relabel_all(sents, gaz)
        relabelled[name] = n
        if name in parts_dev:
            split.dev.extend(sents)
        else:
            split.train.extend(
                sents * (IDNER_TRAIN_REPEAT if name.startswith("idner-news-2k") else 1)
            )
        split.stats[name] = _count(sents)
    if nerp:
        nerp_path = d / "indonlu-nerp/train_preprocess.heldout-filtered.txt"
        if nerp_teacher is not None:
            import spacy

            nerp_sents, tstats = nerp_with_teacher(nerp_path, spacy.load(nerp_teacher))
            split.stats["indonlu-nerp/train (O kept unless teacher entity)"] = dict(
                _count(nerp_sents), **tstats
            )
        else:
            nerp_sents = read_nerp(nerp_path)
            split.stats["indonlu-nerp/train (O=missing)"] = _count(nerp_sents)
        split.train.extend(nerp_sents)
    split.stats["gazetteer_relabelled_spans"] = relabelled
    return split


def english_split(
    data_dir: Path, seed: int = EN_SPLIT_SEED, misc: bool = False, wnut: bool = EN_USE_WNUT17
) -> CorpusSplit:
    """English: held-out tenth of wikigold (by document) + BTC (by tweet per section), seeded; rest trains."""
    d = Path(data_dir)
    rng = random.Random(seed)
    split = CorpusSplit()
    wg_docs = read_wikigold(d / "en-wikigold/wikigold.conll.txt", misc=misc)
    n = len(wg_docs)
    order = list(range(n))
    rng.shuffle(order)
    n_held = round(n * EN_HELDOUT_FRACTION)
    n_dev = round(n * EN_DEV_FRACTION)
    held_idx = sorted(order[:n_held])
    dev_idx = sorted(order[n_held : n_held + n_dev])
    split.stats["wikigold_heldout_docs"] = held_idx
    split.stats["wikigold_dev_docs"] = dev_idx
    for i, doc in enumerate(wg_docs):
        if i in held_idx:
            split.heldout.extend(doc)
        elif i in dev_idx:
            split.dev.extend(doc)
        else:
            split.train.extend(doc * EN_WIKIGOLD_REPEAT)
        if i in held_idx:
            split.heldout_parts.setdefault("wikigold", []).extend(doc)
    for sec in ("a", "b", "e", "f", "g", "h"):
        sents = read_btc(d / f"en-btc/{sec}.conll")
        order = list(range(len(sents)))
        rng.shuffle(order)
        nh = round(len(sents) * EN_HELDOUT_FRACTION)
        nd = round(len(sents) * EN_DEV_FRACTION)
        held = set(order[:nh])
        dev = set(order[nh : nh + nd])
        split.stats[f"btc_{sec}_heldout_sentences"] = sorted(held)
        for i, s in enumerate(sents):
            (split.heldout if i in held else split.dev if i in dev else split.train).append(s)
            if i in held:
                split.heldout_parts.setdefault("btc", []).append(s)
    if wnut:
        for fname in ("wnut17train.conll", "emerging.dev.conll", "emerging.test.annotated"):
            split.train.extend(read_wnut17(d / "en-wnut17" / fname, misc=misc))
    if misc:
        # wikigold MISC in the held-out file is ignored by the PER/ORG/LOC evaluation anyway
        pass
    split.stats["train"] = _count(split.train)
    split.stats["dev"] = _count(split.dev)
    split.stats["heldout"] = _count(split.heldout)
    return split


# ---------------------------------------------------------------------------------------------
# DocBin / CoNLL writers
# ---------------------------------------------------------------------------------------------
def sentences_to_docs(
    sentences: Iterable[Sentence], lang: str, lowercase: bool = False
) -> list[Any]:
    """Build spaCy Docs with gold words/entities (`-` -> missing annotation)."""
    import spacy
    from spacy.tokens import Doc

    vocab = spacy.blank(lang).vocab
    docs = []
    for toks, tags in sentences:
        words = [t.lower() for t in toks] if lowercase else list(toks)
        spaces = [True] * (len(words) - 1) + [False]
        ents = ["" if t == MISSING else t for t in tags]  # "" = missing annotation
        docs.append(Doc(vocab, words=words, spaces=spaces, ents=ents))
    return docs


def write_docbin(sentences: Sequence[Sentence], path: Path, lang: str) -> Path:
    """Serialise sentences as a spaCy DocBin at `path`."""
    from spacy.tokens import DocBin

    db = DocBin(store_user_data=False)
    for doc in sentences_to_docs(sentences, lang):
        db.add(doc)
    path.parent.mkdir(parents=True, exist_ok=True)
    db.to_disk(path)
    return path


def write_conll(sentences: Sequence[Sentence], path: Path) -> Path:
    """Write sentences as a TAB-separated IOB2 file readable by `evaluate.read_conll`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for toks, tags in sentences:
            for t, g in zip(toks, tags, strict=True):
                fh.write(f"{t}\t{'O' if g == MISSING else g}\n")
            fh.write("\n")
    return path


def build_docbins(
    lang: str,
    data_dir: Path,
    out_dir: Path,
    misc: bool = False,
    relabel: bool = True,
    nerp_teacher: Path | str | None = None,
) -> dict[str, Path]:
    """Convert the corpora for `lang` into train.spacy / dev.spacy (+ en held-out CoNLL) under `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if lang == "id":
        split = build_id_corpus(Path(data_dir), relabel=relabel, nerp_teacher=nerp_teacher)
    elif lang == "en":
        split = english_split(Path(data_dir), misc=misc)
    else:
        raise ValueError(f"unsupported language: {lang}")
    paths = {
        "train": write_docbin(split.train, out_dir / "train.spacy", lang),
        "dev": write_docbin(split.dev, out_dir / "dev.spacy", lang),
    }
    if split.heldout:
        paths["heldout"] = write_conll(split.heldout, out_dir / "heldout.conll")
        for part, sents in split.heldout_parts.items():
            paths[f"heldout-{part}"] = write_conll(sents, out_dir / f"heldout-{part}.conll")
    stats = dict(
        split.stats, n_train=len(split.train), n_dev=len(split.dev), n_heldout=len(split.heldout)
    )
    (out_dir / "corpus-stats.json").write_text(json.dumps(stats, indent=1), encoding="utf-8")
    return paths


# ---------------------------------------------------------------------------------------------
# Static vectors (word2vec via gensim, keyed by LOWER so cased and lower-cased text share them)
# ---------------------------------------------------------------------------------------------
def _clean_words(words: Iterable[str]) -> list[str]:
    return [w for w in ("".join(t.lower().split()) for t in words) if w]


def indosum_paragraphs(data_dir: Path) -> Iterator[list[list[str]]]:
    """IndoSum's paragraphs, each a list of tokenised sentences (unlabelled Indonesian news)."""
    with open(Path(data_dir) / "indosum/indosum_dev_union.jsonl", encoding="utf-8") as fh:
        for line in fh:
            yield from json.loads(line)["paragraphs"]


def wikinews_bodies(data_dir: Path) -> Iterator[str]:
    """The body text of every Wikinews article (unlabelled English news, CC BY 2.5)."""
    with open(Path(data_dir) / "wikinews-en/wikinews_en_tosca.jsonl", encoding="utf-8") as fh:
        for line in fh:
            yield json.loads(line)["body"]


def vector_corpus(lang: str, data_dir: Path) -> list[list[str]]:
    """Lower-cased unlabelled sentences: id = IndoSum + NER train split; en = Wikinews (CC BY 2.5) + NER train split."""
    import spacy

    d = Path(data_dir)
    sents: list[list[str]] = []
    if lang == "id":
        for para in indosum_paragraphs(d):
            sents.extend(_clean_words(s) for s in para)
        sents.extend(_clean_words(t) for t, _ in build_id_corpus(d, relabel=False).train)
    elif lang == "en":
        tok = spacy.blank("en").tokenizer
        for body in wikinews_bodies(d):
            for chunk in body.split("  "):
                if chunk.strip():
                    sents.append(_clean_words(t.text for t in tok(chunk)))
        sents.extend(_clean_words(t) for t, _ in english_split(d).train)
    else:
        raise ValueError(f"unsupported language: {lang}")
    return [s for s in sents if s]


def train_static_vectors(
    lang: str,
    data_dir: Path,
    out_dir: Path,
    dim: int = 100,
    max_words: int = 30000,
    epochs: int | None = None,
) -> Path:
    """Train skip-gram word2vec (gensim, 1 thread, seeded) and convert it to spaCy vectors keyed by LOWER."""
    from gensim.models import Word2Vec
    from spacy.cli.init_pipeline import init_vectors_cli

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sents = vector_corpus(lang, data_dir)
    model = Word2Vec(
        sents,
        vector_size=dim,
        window=5,
        min_count=3 if lang == "id" else 4,
        sg=1,
        negative=10,
        epochs=epochs if epochs is not None else (8 if lang == "id" else 5),
        workers=1,
        seed=1,
    )
    words = [w for w in model.wv.index_to_key if w.isprintable() and len(w.split()) == 1][
        :max_words
    ]
    txt = out_dir / f"{lang}_w2v_{dim}.txt"
    with open(txt, "w", encoding="utf-8") as fh:
        fh.write(f"{len(words)} {dim}\n")
        for w in words:
            fh.write(w + " " + " ".join(f"{x:.5f}" for x in model.wv[w]) + "\n")
    vec_dir = out_dir / f"{lang}_vec"
    init_vectors_cli(
        lang,
        txt,
        vec_dir,
        prune=-1,
        truncate=0,
        mode="default",
        name=f"pantau_{lang}_w2v",
        verbose=False,
        jsonl_loc=None,
        attr="LOWER",
    )
    return vec_dir


# ---------------------------------------------------------------------------------------------
# Pretraining the tok2vec (spaCy's character objective) on unlabelled news text
# ---------------------------------------------------------------------------------------------
PRETRAIN_MIN_WORDS = 5  # shorter paragraphs (datelines, captions) are left out
PRETRAIN_EPOCHS = {"en": 10, "id": 15}  # measured: en ~20 min, id ~32 min on one core each


def pretrain_paragraphs(lang: str, data_dir: Path) -> Iterable[str]:
    """Unlabelled paragraphs for `spacy pretrain`: id = IndoSum (its tokenised sentences joined
    by spaces, 1.13 M words), en = Wikinews bodies (one line each, 1.81 M words). Neither shares
    a sentence with the NER evaluation sets (checked: docs/EVALUATION-NER.md)."""
    if lang == "id":
        for para in indosum_paragraphs(data_dir):
            yield " ".join(" ".join(sentence) for sentence in para)
    elif lang == "en":
        for body in wikinews_bodies(data_dir):
            yield from body.split("\n")
    else:
        raise ValueError(f"unsupported language: {lang}")


def write_pretrain_text(lang: str, data_dir: Path, path: Path) -> Path:
    """The JSONL (`{"text": ...}` per line) that spaCy's pretraining corpus reader takes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as out:
        for para in pretrain_paragraphs(lang, data_dir):
            if len(para.split()) >= PRETRAIN_MIN_WORDS:
                out.write(json.dumps({"text": para}) + "\n")
    return path


def pretrain_tok2vec(
    lang: str,
    data_dir: Path,
    out_dir: Path,
    config_path: Path | None = None,
    epochs: int | None = None,
    vectors: Path | str | None = None,
) -> Path:
    """`spacy pretrain` of the config's tok2vec on `pretrain_paragraphs`; returns the weights of
    the last epoch, for `paths.init_tok2vec` of the NER training."""
    from spacy.training.pretrain import pretrain as spacy_pretrain
    from spacy.util import load_config

    out_dir = Path(out_dir)
    cfg = Path(config_path) if config_path else CONFIG_DIR / f"ner_{lang}.cfg"
    raw = write_pretrain_text(lang, data_dir, out_dir / "text.jsonl")
    n_epochs = epochs if epochs is not None else PRETRAIN_EPOCHS[lang]
    overrides: dict[str, Any] = {
        "paths.raw_text": str(raw),
        "pretraining.max_epochs": n_epochs,
    }
    if vectors is not None:
        overrides["paths.vectors"] = str(vectors)
    config = load_config(cfg, overrides=overrides, interpolate=False).interpolate()
    weights = out_dir / "weights"
    weights.mkdir(parents=True, exist_ok=True)
    spacy_pretrain(config, weights, use_gpu=-1, silent=False)
    return weights / f"model{n_epochs - 1}.bin"


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------
def train_ner(
    lang: str,
    data_dir: Path,
    out_dir: Path,
    config_path: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    misc: bool = False,
    ship_to: Path | None = None,
    nerp_teacher: Path | str | None = None,
    vectors: Path | str | None = None,
    relabel: bool = True,
    pretrain: bool = False,
) -> Path:
    """Convert data, train with spaCy's training API using config/spacy/ner_<lang>.cfg, return model-best dir.

    With `pretrain`, the tok2vec starts from `pretrain_tok2vec` weights (unless the overrides
    already name `paths.init_tok2vec`).
    """
    from spacy.cli.train import train as spacy_train
    from spacy.util import load_config

    out_dir = Path(out_dir)
    cfg = Path(config_path) if config_path else CONFIG_DIR / f"ner_{lang}.cfg"
    paths = build_docbins(
        lang, data_dir, out_dir / "corpus", misc=misc, relabel=relabel, nerp_teacher=nerp_teacher
    )
    ov: dict[str, Any] = {"paths.train": str(paths["train"]), "paths.dev": str(paths["dev"])}
    ov.update(overrides or {})
    embed = load_config(cfg, overrides=ov, interpolate=False)["components"]["tok2vec"]["model"][
        "embed"
    ]
    if embed.get("include_static_vectors", False) and "paths.vectors" not in ov:
        # the config wants static vectors: use the given ones or train them first (train_static_vectors)
        ov["paths.vectors"] = str(
            vectors or train_static_vectors(lang, data_dir, out_dir / "vectors")
        )
    if pretrain and not ov.get("paths.init_tok2vec"):
        ov["paths.init_tok2vec"] = str(
            pretrain_tok2vec(
                lang, data_dir, out_dir / "pretrain", cfg, vectors=ov.get("paths.vectors")
            )
        )
    t0 = time.monotonic()
    spacy_train(cfg, out_dir / "model", overrides=ov, use_gpu=-1)
    elapsed = time.monotonic() - t0
    (out_dir / "train-time.json").write_text(
        json.dumps({"seconds": elapsed, "overrides": ov}), encoding="utf-8"
    )
    best = out_dir / "model" / "model-best"
    if ship_to is not None:
        export_model(best, ship_to)
    return best


def export_model(
    model_dir: Path, dest: Path, name: str | None = None, version: str = "0.1.0"
) -> Path:
    """Save a trained pipeline (tok2vec + ner only, no training state) to `dest` via nlp.to_disk."""
    import spacy

    nlp = spacy.load(model_dir)
    keep = {"tok2vec", "ner"}
    for pipe_name in list(nlp.pipe_names):
        if pipe_name not in keep:
            nlp.remove_pipe(pipe_name)
    nlp.meta["name"] = name or f"pantau_ner_{nlp.lang}"
    nlp.meta["version"] = version
    nlp.meta["sources"] = [
        {"name": n, "licence": lic} for n, lic in (EN_SOURCES if nlp.lang == "en" else ID_SOURCES)
    ]
    dest = Path(dest)
    keep_files = (
        "README.md",
        "licenses",
    )  # hand-written docs next to the pipeline survive a re-export
    tmp = dest.parent / f".{dest.name}.keep"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for k in keep_files:
        if (dest / k).exists():
            shutil.move(str(dest / k), str(tmp / k))
    if dest.exists():
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(dest)
    for k in keep_files:
        if (tmp / k).exists():
            shutil.move(str(tmp / k), str(dest / k))
    shutil.rmtree(tmp)
    return dest


def evaluate_file(
    model: Path | str,
    path: Path,
    labels: Sequence[str] = LABELS,
    lowercase: bool = False,
    relabel_gold: bool = False,
) -> dict[str, Any]:
    """Load a pipeline and score it on one CoNLL/TSV file (optionally with gazetteer-relabelled gold)."""
    import spacy

    from workers.extract.evaluate import evaluate_ner, read_conll
    from workers.extract.pipeline import use_openblas

    nlp = use_openblas(spacy.load(model))  # as the workers load it (same entities; faster)
    sents = read_conll(path)
    if relabel_gold:
        sents, _n = _relabel_all(sents, build_location_gazetteer())
    return evaluate_ner(nlp, sents, labels=labels, lowercase=lowercase)


def measure_speed(
    model: Path | str, indosum: Path, n_docs: int = 500, batch_size: int = 64
) -> dict[str, float]:
    """Tokens/s (wall and per CPU-second) of nlp.pipe over the first `n_docs` IndoSum/Wikinews
    jsonl articles; loaded as the workers load it, with one BLAS thread (a per-core figure)."""
    import spacy

    from workers.extract.pipeline import one_blas_thread, use_openblas

    one_blas_thread()
    nlp = use_openblas(spacy.load(model))
    texts: list[str] = []
    with open(indosum, encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            if "paragraphs" in rec:  # IndoSum: pre-tokenised paragraphs
                paras = rec["paragraphs"]
                texts.append(" ".join(tok for para in paras for sent in para for tok in sent))
            else:  # Wikinews-style {"body": ...}
                texts.append(rec["body"])
            if len(texts) >= n_docs:
                break
    list(nlp.pipe(texts[:20]))  # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    n_tok = sum(len(doc) for doc in nlp.pipe(texts, batch_size=batch_size))
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    return {
        "docs": len(texts),
        "tokens": n_tok,
        "wall_s": round(dt, 3),
        "cpu_s": round(dc, 3),
        "tokens_per_wall_s": round(n_tok / dt),
        "tokens_per_cpu_s": round(n_tok / dc),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: convert + train (+ optionally ship) one language, or evaluate / time a model."""
    ap = argparse.ArgumentParser(
        prog="python -m workers.extract.training", description=__doc__.splitlines()[0]
    )
    ap.add_argument("--lang", choices=("id", "en"), required=True)
    ap.add_argument(
        "--data",
        type=Path,
        default=None,
        help="directory holding the corpora (e.g. /work/shared/data)",
    )
    ap.add_argument(
        "--out", type=Path, default=None, help="scratch output dir (DocBins, checkpoints)"
    )
    ap.add_argument(
        "--eval", type=Path, default=None, metavar="FILE", help="score --model on a CoNLL/TSV file"
    )
    ap.add_argument(
        "--speed",
        type=Path,
        default=None,
        metavar="JSONL",
        help="tokens/s of --model on IndoSum jsonl",
    )
    ap.add_argument(
        "--model",
        type=Path,
        default=None,
        help="pipeline dir for --eval/--speed (default: shipped)",
    )
    ap.add_argument("--labels", default=",".join(LABELS))
    ap.add_argument("--lowercase", action="store_true", help="--eval: lower-case the input text")
    ap.add_argument(
        "--relabel-gold",
        action="store_true",
        help="--eval: apply the country/capital LOC gazetteer to gold",
    )
    ap.add_argument("--config", type=Path, default=None)
    ap.add_argument("--convert-only", action="store_true", help="only write the DocBins")
    ap.add_argument(
        "--ship",
        type=Path,
        default=None,
        help="copy model-best here (e.g. workers/extract/models/id)",
    )
    ap.add_argument("--misc", action="store_true", help="keep MISC as a label (English)")
    ap.add_argument(
        "--vectors",
        type=Path,
        default=None,
        help="spaCy vectors dir (else trained if the config needs it)",
    )
    ap.add_argument(
        "--no-relabel",
        action="store_true",
        help="id: keep the corpora's own O tags on country/capital names (no gazetteer LOC relabelling)",
    )
    ap.add_argument(
        "--nerp-teacher",
        type=Path,
        default=None,
        help="id: pipeline whose entities mark NERP O as missing",
    )
    ap.add_argument(
        "--pretrain",
        action="store_true",
        help="start the tok2vec from `spacy pretrain` on unlabelled news text (~30 min, one core)",
    )
    ap.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="config override"
    )
    args = ap.parse_args(argv)
    from rich.console import Console

    console = Console(stderr=True)
    model = args.model or MODELS_DIR / args.lang
    if args.eval is not None:
        from workers.extract.evaluate import format_report

        res = evaluate_file(
            model, args.eval, tuple(args.labels.split(",")), args.lowercase, args.relabel_gold
        )
        print(format_report(res))
        return 0
    if args.speed is not None:
        print(json.dumps(measure_speed(model, args.speed)))
        return 0
    if args.data is None or args.out is None:
        ap.error("--data and --out are required for training")
    if args.convert_only:
        with console.status(f"converting {args.lang} corpora"):
            paths = build_docbins(
                args.lang,
                args.data,
                args.out / "corpus",
                misc=args.misc,
                relabel=not args.no_relabel,
                nerp_teacher=args.nerp_teacher,
            )
        console.print({k: str(v) for k, v in paths.items()})
        return 0
    overrides: dict[str, Any] = {}
    for kv in args.set:
        k, _, v = kv.partition("=")
        try:
            overrides[k] = json.loads(v)
        except json.JSONDecodeError:
            overrides[k] = v
    best = train_ner(
        args.lang,
        args.data,
        args.out,
        args.config,
        overrides,
        misc=args.misc,
        ship_to=args.ship,
        nerp_teacher=args.nerp_teacher,
        vectors=args.vectors,
        relabel=not args.no_relabel,
        pretrain=args.pretrain,
    )
    console.print(f"[green]model-best:[/green] {best}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
