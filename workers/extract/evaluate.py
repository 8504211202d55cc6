"""NER evaluation: CoNLL/TSV reader and exact-span precision/recall/F1 for spaCy pipelines.

Pure functions only (no printing); `format_report` renders a result as a text table.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

# Map every corpus label seen in /work/shared/data to the common scheme. Labels that map to
# "O" are dropped (token becomes O); labels that map to "-" become *missing* (unknown) tokens.
DEFAULT_LABEL_MAP: dict[str, str] = {
    "PER": "PER",
    "PERSON": "PER",
    "PPL": "PER",
    "person": "PER",
    "ORG": "ORG",
    "ORGANIZATION": "ORG",
    "ORGANISATION": "ORG",
    "group": "ORG",
    "corporation": "ORG",
    "LOC": "LOC",
    "LOCATION": "LOC",
    "PLACE": "LOC",
    "PLC": "LOC",
    "location": "LOC",
    "GPE": "LOC",
    "MISC": "MISC",
    "product": "MISC",
    "creative-work": "MISC",
    "IND": "MISC",
    "FNB": "MISC",
    "EVT": "MISC",
    "TIME": "O",
    "QUANTITY": "O",
}

MISSING = "-"

Sentence = tuple[list[str], list[str]]


def iter_conll_blocks(
    path: str | Path, sep: str | None = None
) -> Iterator[tuple[int, list[list[str]]]]:
    """Yield (document index, rows) per sentence of a CoNLL/TSV file; `-DOCSTART-` starts a new document."""
    doc_idx = 0
    seen_in_doc = False
    rows: list[list[str]] = []
    with open(path, encoding="utf-8", newline="") as fh:
        for raw in fh:
            line = raw.rstrip("\r\n")
            if not line.strip():
                if rows:
                    yield doc_idx, rows
                    seen_in_doc = True
                    rows = []
                continue
            if sep is not None:
                cols = line.split(sep)
            elif "\t" in line:
                cols = line.split("\t")
            else:
                cols = line.split()
            if cols[0] == "-DOCSTART-":
                if rows:
                    yield doc_idx, rows
                    rows = []
                    seen_in_doc = True
                if seen_in_doc:
                    doc_idx += 1
                    seen_in_doc = False
                continue
            rows.append(cols)
    if rows:
        yield doc_idx, rows


def normalize_tags(
    tags: Sequence[str],
    label_map: Mapping[str, str] | None = None,
    o_tag: str = "O",
) -> list[str]:
    """Map labels through `label_map` and repair IOB1 / invalid IOB2 into valid IOB2 (`-` = missing kept)."""
    lm = DEFAULT_LABEL_MAP if label_map is None else label_map
    mapped: list[str] = []
    for tag in tags:
        tag = tag.strip()
        if tag in ("O", ""):
            mapped.append(o_tag)
            continue
        if tag == MISSING:
            mapped.append(MISSING)
            continue
        if len(tag) > 2 and tag[1] == "-" and tag[0] in "BIES":
            prefix, label = tag[0], tag[2:]
        else:
            prefix, label = "I", tag
        new = lm.get(label, label)
        if new == "O":
            mapped.append(o_tag)
        elif new == MISSING:
            mapped.append(MISSING)
        else:
            prefix = {"S": "B", "E": "I"}.get(prefix, prefix)
            mapped.append(f"{prefix}-{new}")
    out: list[str] = []
    prev = "O"
    for tag in mapped:
        if tag.startswith("I-") and not (prev[:2] in ("B-", "I-") and prev[2:] == tag[2:]):
            tag = "B-" + tag[2:]
        out.append(tag)
        prev = tag
    return out


def read_conll(
    path: str | Path,
    label_map: Mapping[str, str] | None = None,
    sep: str | None = None,
    token_col: int = 0,
    tag_col: int = -1,
) -> list[Sentence]:
    """Read an IOB1/IOB2 CoNLL or TSV file into (tokens, IOB2 tags) with labels mapped to PER/ORG/LOC/MISC."""
    out: list[Sentence] = []
    for _doc, rows in iter_conll_blocks(path, sep=sep):
        tokens = [r[token_col] for r in rows]
        tags = normalize_tags([r[tag_col] if len(r) > 1 else "O" for r in rows], label_map)
        out.append((tokens, tags))
    return out


def iob_to_spans(tags: Sequence[str]) -> list[tuple[int, int, str]]:
    """Convert IOB2 tags into (start token, end token exclusive, label) spans."""
    spans: list[tuple[int, int, str]] = []
    start, label = -1, ""
    for i, tag in enumerate([*tags, "O"]):
        if tag.startswith("I-") and start >= 0 and tag[2:] == label:
            continue
        if start >= 0:
            spans.append((start, i, label))
            start, label = -1, ""
        if tag.startswith(("B-", "I-")):
            start, label = i, tag[2:]
    return spans


def sentence_text_and_spans(
    tokens: Sequence[str], tags: Sequence[str]
) -> tuple[str, list[tuple[int, int, str]]]:
    """Join tokens with single spaces and return the text plus gold character spans."""
    offsets: list[tuple[int, int]] = []
    pos = 0
    for tok in tokens:
        offsets.append((pos, pos + len(tok)))
        pos += len(tok) + 1
    text = " ".join(tokens)
    spans = [(offsets[s][0], offsets[e - 1][1], lab) for s, e, lab in iob_to_spans(tags)]
    return text, spans


def _prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"p": p, "r": r, "f": f, "tp": tp, "fp": fp, "fn": fn, "support": tp + fn}


def evaluate_ner(
    nlp: Any,
    sentences: Iterable[Sentence],
    labels: Sequence[str] = ("PER", "ORG", "LOC"),
    lowercase: bool = False,
    batch_size: int = 256,
) -> dict[str, Any]:
    """Exact-span per-label and micro P/R/F1 of `nlp`'s doc.ents against gold IOB sentences."""
    label_set = set(labels)
    texts: list[str] = []
    golds: list[set[tuple[int, int, str]]] = []
    n_tokens = 0
    for tokens, tags in sentences:
        text, spans = sentence_text_and_spans(tokens, tags)
        texts.append(text.lower() if lowercase else text)
        golds.append({s for s in spans if s[2] in label_set})
        n_tokens += len(tokens)
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for doc, gold in zip(nlp.pipe(texts, batch_size=batch_size), golds, strict=True):
        pred = {(e.start_char, e.end_char, e.label_) for e in doc.ents if e.label_ in label_set}
        for s in pred & gold:
            tp[s[2]] += 1
        for s in pred - gold:
            fp[s[2]] += 1
        for s in gold - pred:
            fn[s[2]] += 1
    per_label = {lab: _prf(tp[lab], fp[lab], fn[lab]) for lab in labels}
    micro = _prf(sum(tp.values()), sum(fp.values()), sum(fn.values()))
    return {
        "labels": list(labels),
        "per_label": per_label,
        "micro": micro,
        "n_sentences": len(texts),
        "n_tokens": n_tokens,
        "lowercase": lowercase,
    }


def format_report(result: Mapping[str, Any]) -> str:
    """Render an `evaluate_ner` result as a fixed-width text table."""
    lines = [f"{'label':<8}{'P':>8}{'R':>8}{'F1':>8}{'TP':>7}{'FP':>7}{'FN':>7}{'gold':>7}"]
    rows = [(lab, result["per_label"][lab]) for lab in result["labels"]] + [
        ("micro", result["micro"])
    ]
    for name, m in rows:
        lines.append(
            f"{name:<8}{m['p']:>8.4f}{m['r']:>8.4f}{m['f']:>8.4f}{m['tp']:>7}{m['fp']:>7}{m['fn']:>7}{m['support']:>7}"
        )
    lines.append(
        f"({result['n_sentences']} sentences, {result['n_tokens']} tokens"
        f"{', lower-cased input' if result.get('lowercase') else ''})"
    )
    return "\n".join(lines)
