"""Unit tests for the NER corpus readers and the exact-span evaluator (no training, no /work/shared)."""

from __future__ import annotations

from pathlib import Path

import pytest
import spacy
from spacy.tokens import Span

from workers.extract.evaluate import (
    evaluate_ner,
    format_report,
    iob_to_spans,
    normalize_tags,
    read_conll,
    sentence_text_and_spans,
)
from workers.extract.training import (
    build_location_gazetteer,
    nerp_with_teacher,
    pretrain_tok2vec,
    read_btc,
    read_idner,
    read_nergrit,
    read_nerp,
    read_nerugm,
    read_nerui,
    read_wikigold,
    read_wnut17,
    relabel_locations,
    sentences_to_docs,
    write_pretrain_text,
)


def _write(tmp_path: Path, name: str, text: str, newline: str = "\n") -> Path:
    p = tmp_path / name
    p.write_bytes(text.replace("\n", newline).encode("utf-8"))
    return p


def test_idner_crlf_space_separated(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        "idner.txt",
        "Kim PROPN B-PER\nJong PROPN I-PER\nUn PROPN I-PER\nke ADP O\nJakarta PROPN B-LOC\n\n"
        "Bisnis.com PROPN B-ORG\n\n",
        newline="\r\n",
    )
    sents = read_idner(p)
    assert sents == [
        (["Kim", "Jong", "Un", "ke", "Jakarta"], ["B-PER", "I-PER", "I-PER", "O", "B-LOC"]),
        (["Bisnis.com"], ["B-ORG"]),
    ]
    assert all("\r" not in t for toks, _ in sents for t in toks)


def test_nerui_and_nergrit_label_mapping(tmp_path: Path) -> None:
    ui = _write(
        tmp_path,
        "ui.tsv",
        "Joko\tB-PERSON\nWidodo\tI-PERSON\ndi\tO\nBank\tB-ORGANIZATION\nBandung\tB-LOCATION\n",
    )
    assert read_nerui(ui) == [
        (["Joko", "Widodo", "di", "Bank", "Bandung"], ["B-PER", "I-PER", "O", "B-ORG", "B-LOC"])
    ]
    grit = _write(
        tmp_path,
        "grit.txt",
        "Grit\tB-ORGANISATION\ndi\tO\nSão\tB-PLACE\nPaulo\tI-PLACE\nAni\tB-PERSON\n",
    )
    assert read_nergrit(grit)[0][1] == ["B-ORG", "O", "B-LOC", "I-LOC", "B-PER"]


def test_nerugm_drops_time_quantity_and_fixes_invalid_i(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        "ugm.tsv",
        "Senin\tB-TIME\nlalu\tI-TIME\n3\tB-QUANTITY\norang\tI-QUANTITY\ndari\tO\nSurabaya\tI-LOCATION\nTimur\tI-LOCATION\n"
        "Polri\tI-ORGANIZATION\n",
    )
    _toks, tags = read_nerugm(p)[0]
    assert tags == ["O", "O", "O", "O", "O", "B-LOC", "I-LOC", "B-ORG"]


def test_nerp_missing_tags_and_multiword_tokens(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        "nerp.txt",
        "kepala\tO\nkota\tO\nmanado\tB-PLC\namos\tB-PPL\nkenda\tI-PPL\nsalah satu\tO\nindomie\tB-IND\nbukit barisan\tB-PLC\n"
        "joko\tI-PPL\n",
    )
    toks, tags = read_nerp(p)[0]
    assert toks == [
        "kepala",
        "kota",
        "manado",
        "amos",
        "kenda",
        "salah",
        "satu",
        "indomie",
        "bukit",
        "barisan",
        "joko",
    ]
    assert tags == ["-", "-", "B-LOC", "B-PER", "I-PER", "-", "-", "-", "B-LOC", "I-LOC", "B-PER"]
    # O kept as O when asked
    assert read_nerp(p, o_as_missing=False)[0][1][:2] == ["O", "O"]
    # missing tags become unannotated tokens in the spaCy Doc
    doc = sentences_to_docs([(toks, tags)], "id")[0]
    assert [t.ent_iob_ for t in doc][:3] == ["", "", "B"]
    assert [(e.text, e.label_) for e in doc.ents] == [
        ("manado", "LOC"),
        ("amos kenda", "PER"),
        ("bukit barisan", "LOC"),
        ("joko", "PER"),
    ]


def test_wikigold_iob1_to_iob2_and_documents(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        "wg.conll",
        "-DOCSTART- O\n\nThe I-ORG\nMad I-ORG\nCapsule I-ORG\nmet O\nJohn I-PER\nSmith B-PER\nin O\nJapan I-LOC\n\nJapanese I-MISC\n.\tO\n\n"
        "-DOCSTART- O\n\nParis I-LOC\n\n",
    )
    docs = read_wikigold(p)
    assert len(docs) == 2 and len(docs[0]) == 2 and len(docs[1]) == 1
    _toks, tags = docs[0][0]
    assert tags == ["B-ORG", "I-ORG", "I-ORG", "O", "B-PER", "B-PER", "O", "B-LOC"]
    assert docs[0][1][1] == ["-", "O"]  # MISC -> missing by default
    assert read_wikigold(p, misc=True)[0][1][1] == ["B-MISC", "O"]


def test_btc_and_wnut_mapping(tmp_path: Path) -> None:
    btc = _write(
        tmp_path, "a.conll", "@BBC\tB-ORG\nin\tO\nLondon\tB-LOC\n\nTheresa\tB-PER\nMay\tI-PER\n\n"
    )
    assert [t for _, t in read_btc(btc)] == [["B-ORG", "O", "B-LOC"], ["B-PER", "I-PER"]]
    wnut = _write(
        tmp_path,
        "w.conll",
        "Empire\tB-location\nState\tI-location\nApple\tB-corporation\nfans\tB-group\niPhone\tB-product\nX\tI-product\n"
        "Bob\tB-person\nStar\tB-creative-work\n",
    )
    assert read_wnut17(wnut)[0][1] == ["B-LOC", "I-LOC", "B-ORG", "B-ORG", "-", "-", "B-PER", "-"]
    assert read_wnut17(wnut, misc=True)[0][1][4:6] == ["B-MISC", "I-MISC"]


def test_read_conll_generic_iob1_and_mapping(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        "x.txt",
        "Pak O\nBudi I-PERSON\nke O\nTIME-ish B-TIME\nAmerika B-PLC\nSerikat I-PLC\n",
        newline="\r\n",
    )
    assert read_conll(p) == [
        (
            ["Pak", "Budi", "ke", "TIME-ish", "Amerika", "Serikat"],
            ["O", "B-PER", "O", "O", "B-LOC", "I-LOC"],
        )
    ]


def test_normalize_and_spans() -> None:
    assert normalize_tags(["I-PER", "I-PER", "I-LOC", "O", "I-ORG"]) == [
        "B-PER",
        "I-PER",
        "B-LOC",
        "O",
        "B-ORG",
    ]
    assert iob_to_spans(["B-PER", "I-PER", "B-PER", "O", "B-LOC"]) == [
        (0, 2, "PER"),
        (2, 3, "PER"),
        (4, 5, "LOC"),
    ]
    text, spans = sentence_text_and_spans(
        ["Kim", "Jong", "Un", "ke", "Seoul"], ["B-PER", "I-PER", "I-PER", "O", "B-LOC"]
    )
    assert text == "Kim Jong Un ke Seoul"
    assert spans == [(0, 11, "PER"), (15, 20, "LOC")]


def test_gazetteer_relabel_only_o_tokens() -> None:
    gaz = build_location_gazetteer()
    toks = [
        "serangan",
        "Israel",
        "ke",
        "Amerika",
        "Serikat",
        "dan",
        "bahasa",
        "Inggris",
        "Bursa",
        "Efek",
        "Indonesia",
    ]
    tags = ["O", "O", "O", "O", "O", "O", "O", "O", "B-ORG", "I-ORG", "I-ORG"]
    new, n = relabel_locations(toks, tags, gaz)
    assert n == 2
    assert new == ["O", "B-LOC", "O", "B-LOC", "I-LOC", "O", "O", "O", "B-ORG", "I-ORG", "I-ORG"]


class _FixedEnts:
    """Stand-in pipeline: a blank tokenizer whose ents are set from a lookup by text."""

    def __init__(self, ents_by_text: dict[str, list[tuple[int, int, str]]]) -> None:
        self.nlp = spacy.blank("id")
        self.ents_by_text = ents_by_text

    def pipe(self, texts, batch_size: int = 256):
        for text in texts:
            doc = self.nlp.make_doc(text)
            doc.ents = [Span(doc, s, e, label=lab) for s, e, lab in self.ents_by_text.get(text, [])]
            yield doc


def test_evaluate_ner_prf() -> None:
    sents = [
        (
            ["Kim", "Jong", "Un", "tiba", "di", "Seoul"],
            ["B-PER", "I-PER", "I-PER", "O", "O", "B-LOC"],
        ),
        (["Menurut", "Yonhap", ",", "KCNA", "melapor"], ["O", "B-ORG", "O", "B-ORG", "O"]),
    ]
    pred = {
        # PER boundary wrong (Kim Jong), LOC right
        "Kim Jong Un tiba di Seoul": [(0, 2, "PER"), (5, 6, "LOC")],
        # one ORG right, one spurious PER
        "Menurut Yonhap , KCNA melapor": [(1, 2, "ORG"), (4, 5, "PER")],
    }
    res = evaluate_ner(_FixedEnts(pred), sents)
    micro = res["micro"]
    per = res["per_label"]["PER"]
    org = res["per_label"]["ORG"]
    loc = res["per_label"]["LOC"]
    assert (per["tp"], per["fp"], per["fn"]) == (0, 2, 1)
    assert (org["tp"], org["fp"], org["fn"]) == (1, 0, 1)
    assert (loc["tp"], loc["fp"], loc["fn"]) == (1, 0, 0)
    assert micro["tp"] == 2 and micro["fp"] == 2 and micro["fn"] == 2
    assert (
        micro["p"] == pytest.approx(0.5)
        and micro["r"] == pytest.approx(0.5)
        and micro["f"] == pytest.approx(0.5)
    )
    assert (
        org["r"] == pytest.approx(0.5)
        and org["p"] == pytest.approx(1.0)
        and org["f"] == pytest.approx(2 / 3)
    )
    assert "micro" in format_report(res)


def test_evaluate_ner_lowercase_and_label_filter() -> None:
    sents = [(["Ani", "ke", "Bali"], ["B-PER", "O", "B-LOC"])]
    pred = {"ani ke bali": [(0, 1, "PER"), (2, 3, "LOC")]}
    res = evaluate_ner(_FixedEnts(pred), sents, labels=("PER",), lowercase=True)
    assert res["micro"]["f"] == pytest.approx(1.0)
    assert res["micro"]["support"] == 1


def test_nerp_with_teacher_marks_teacher_entities_missing(tmp_path: Path) -> None:
    p = _write(
        tmp_path, "nerp.txt", "bank\tO\nmandiri\tO\ndi\tO\nmanado\tB-PLC\nmakan\tO\nsate\tB-FNB\n"
    )
    teacher = _FixedEnts({"bank mandiri di manado makan sate": [(0, 2, "ORG"), (3, 4, "LOC")]})
    sents, stats = nerp_with_teacher(p, teacher)
    assert sents[0][1] == ["-", "-", "O", "B-LOC", "O", "-"]
    assert stats["o_to_missing_ORG"] == 2 and stats["o_kept"] == 2


def _news_dir(tmp_path: Path) -> Path:
    """A data directory with one IndoSum article and one Wikinews article, shaped as upstream."""
    import json

    (tmp_path / "indosum").mkdir(parents=True)
    (tmp_path / "wikinews-en").mkdir()
    indosum = {
        "paragraphs": [
            [
                ["Menteri", "Luar", "Negeri", "Choe", "Son", "Hui", "tiba", "."],
                ["Dia", "bertemu", "Lavrov", "."],
            ],
            [["Jakarta", "."]],
        ]
    }
    (tmp_path / "indosum" / "indosum_dev_union.jsonl").write_text(json.dumps(indosum) + "\n")
    body = "Brazil Hu Jintao had lunch today with the President of Brazil .\nShort line .\n" + (
        "Some Brazilian ministers were also at the lunch in Brasilia . " * 3
    )
    wikinews = {"body": body}
    (tmp_path / "wikinews-en" / "wikinews_en_tosca.jsonl").write_text(json.dumps(wikinews) + "\n")
    return tmp_path


def test_pretrain_text_is_paragraphs_of_five_words_or_more(tmp_path: Path) -> None:
    import json

    data = _news_dir(tmp_path / "data")
    id_lines = write_pretrain_text("id", data, tmp_path / "id.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in id_lines] == [
        {"text": "Menteri Luar Negeri Choe Son Hui tiba . Dia bertemu Lavrov ."}
    ]
    en_lines = write_pretrain_text("en", data, tmp_path / "en.jsonl").read_text().splitlines()
    texts = [json.loads(line)["text"] for line in en_lines]
    assert texts[0] == "Brazil Hu Jintao had lunch today with the President of Brazil ."
    assert len(texts) == 2 and texts[1].startswith("Some Brazilian ministers")
    with pytest.raises(ValueError, match="unsupported language"):
        write_pretrain_text("fr", data, tmp_path / "fr.jsonl")


def test_pretrain_writes_weights_the_ner_config_can_start_from(tmp_path: Path) -> None:
    """One epoch of spaCy's pretraining on the Indonesian config; the weights load into its tok2vec."""
    from spacy.util import load_config, load_model_from_config

    from workers.extract.training import CONFIG_DIR

    data = _news_dir(tmp_path / "data")
    weights = pretrain_tok2vec("id", data, tmp_path / "pretrain", epochs=1)
    assert weights.name == "model0.bin" and weights.stat().st_size > 100_000
    config = load_config(CONFIG_DIR / "ner_id.cfg")
    nlp = load_model_from_config(config, auto_fill=True)
    nlp.initialize()
    tok2vec = nlp.get_pipe("tok2vec").model
    before = tok2vec.to_bytes()
    tok2vec.from_bytes(weights.read_bytes())
    assert tok2vec.to_bytes() != before
