"""Unit tests of the rule-based PLOVER event coder (workers/extract/events.py).

A blank spaCy pipeline with a sentencizer and hand-given entities: no model, no services.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import spacy

from workers.domain import Entity, Event
from workers.extract.events import (
    PLOVER_TYPES,
    EventLexicon,
    code_events,
    code_gold_line,
    evaluate_events,
    evaluate_gold_file,
    format_event_report,
    indonesian_candidates,
    load_gold,
)

ROOT = Path(__file__).resolve().parents[3]
SEED = ROOT / "seeds" / "000_f95ec22700e1a343.txt"
GOLD_DIR = ROOT / "tests" / "data" / "events"
CONTEXTS = {"asserted", "future", "hypothetical", "historical", "reported"}


@pytest.fixture(scope="module")
def nlp_id():
    nlp = spacy.blank("id")
    nlp.add_pipe("sentencizer")
    return nlp


@pytest.fixture(scope="module")
def nlp_en():
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    return nlp


@pytest.fixture(scope="module")
def lex_id():
    return EventLexicon.for_language("id")


@pytest.fixture(scope="module")
def lex_en():
    return EventLexicon.for_language("en")


def ents_for(text: str, names: dict[str, str]) -> list[Entity]:
    """Entities for every whole-word occurrence of the names (longest first, no overlaps)."""
    spans: list[tuple[int, int, str]] = []
    for name, label in sorted(names.items(), key=lambda kv: -len(kv[0])):
        for m in re.finditer(r"(?<!\w)" + re.escape(name) + r"(?!\w)", text):
            if any(s < m.end() and m.start() < e for s, e, _ in spans):
                continue
            spans.append((m.start(), m.end(), label))
    return [Entity(text=text[s:e], start=s, end=e, label=lab) for s, e, lab in sorted(spans)]


def code(nlp, lex, text: str, names: dict[str, str]) -> list[Event]:
    return code_events(nlp(text), ents_for(text, names), lex)


def only(events: list[Event], typ: str) -> list[Event]:
    return [e for e in events if e.type == typ]


COUNTRIES_ID = {
    "Korea Utara": "LOC", "Korea Selatan": "LOC", "Rusia": "LOC", "Ukraina": "LOC",
    "Jepang": "LOC", "Indonesia": "LOC", "Malaysia": "LOC", "Amerika Serikat": "LOC",
    "Reuters": "ORG", "Israel": "LOC", "Hamas": "ORG",
}  # fmt: skip
COUNTRIES_EN = {
    "Russia": "LOC", "Ukraine": "LOC", "Kyiv": "LOC", "China": "LOC", "Japan": "LOC",
    "Reuters": "ORG", "Israel": "LOC", "Hamas": "ORG", "North Korea": "LOC",
}  # fmt: skip


# --------------------------------------------------------------------------- lexicon


@pytest.mark.parametrize("lang", ["id", "en"])
def test_lexicon_covers_all_plover_types_with_cameo_roots(lang):
    lex = EventLexicon.for_language(lang)
    assert set(lex.types) == set(PLOVER_TYPES)
    for typ, code_ in lex.types.items():
        assert code_ and re.fullmatch(r"\d\d", code_), (typ, code_)
    assert lex.negation and lex.future.cues and lex.hypothetical.cues


def test_lexicon_load_by_path_equals_for_language():
    path = ROOT / "config" / "events" / "id.yaml"
    a = EventLexicon.load(path)
    b = EventLexicon.for_language("id")
    assert a.types == b.types and len(a.entries) == len(b.entries)


# --------------------------------------------------------------------------- morphology


@pytest.mark.parametrize(
    ("word", "root"),
    [
        ("mengirim", "kirim"), ("dikirim", "kirim"), ("pengiriman", "kirim"), ("kiriman", "kirim"),
        ("memberikan", "beri"), ("menuduh", "tuduh"), ("menyerang", "serang"),
        ("diserang", "serang"), ("serangan", "serang"), ("pertemuan", "temu"),
        ("kesepakatan", "sepakat"), ("disepakati", "sepakat"), ("perundingan", "runding"),
        ("memperingatkan", "peringat"), ("menewaskan", "tewas"), ("bantuannya", "bantu"),
    ],
)  # fmt: skip
def test_indonesian_affix_stripping(word, root):
    assert root in indonesian_candidates(word)


@pytest.mark.parametrize(
    "sentence",
    [
        "Korea Utara mengirim senjata ke Rusia.",
        "Senjata dikirim Korea Utara ke Rusia.",
        "Pengiriman senjata dari Korea Utara ke Rusia terus berlanjut.",
        "Kiriman senjata Korea Utara untuk Rusia tiba pekan ini.",
    ],
)
def test_kirim_forms_give_the_same_type(nlp_id, lex_id, sentence):
    events = code(nlp_id, lex_id, sentence, COUNTRIES_ID)
    assert [e.type for e in events] == ["AID"], events
    ev = events[0]
    assert ev.cameo_root == "07"
    assert {ev.source.text if ev.source else None, ev.target.text if ev.target else None} & {
        "Korea Utara",
        "Rusia",
    }


def test_kirim_is_disambiguated_by_its_object(nlp_id, lex_id):
    troops = code(nlp_id, lex_id, "Korea Utara mengirim pasukan ke Rusia.", COUNTRIES_ID)
    envoy = code(
        nlp_id, lex_id, "Korea Utara mengirim menteri luar negerinya ke Rusia.", COUNTRIES_ID
    )
    message = code(nlp_id, lex_id, "Korea Utara mengirim pesan kepada Rusia.", COUNTRIES_ID)
    assert [e.type for e in troops] == ["MOBILIZE"]
    assert [e.type for e in envoy] == ["CONSULT"]
    assert message == []


def test_english_lemmas(nlp_en, lex_en):
    for s in (
        "Russia attacked Ukraine.",
        "Russia attacks Ukraine.",
        "Russia is attacking Ukraine.",
    ):
        events = code(nlp_en, lex_en, s, COUNTRIES_EN)
        assert [e.type for e in events] == ["ASSAULT"], s
        assert events[0].source.text == "Russia" and events[0].target.text == "Ukraine"


# --------------------------------------------------------------------------- roles


def test_active_roles(nlp_id, lex_id):
    (ev,) = code(
        nlp_id,
        lex_id,
        "Korea Utara menyerang Korea Selatan pada Selasa (29/10/2024).",
        COUNTRIES_ID,
    )
    assert ev.type == "ASSAULT"
    assert ev.source.text == "Korea Utara" and ev.target.text == "Korea Selatan"
    assert ev.date == "Selasa (29/10/2024)"
    text = "Korea Utara menyerang Korea Selatan pada Selasa (29/10/2024)."
    assert text[ev.trigger.start : ev.trigger.end] == ev.trigger.text == "menyerang"
    assert ev.sentence == {"start": 0, "end": len(text)}


def test_passive_swaps_roles_indonesian(nlp_id, lex_id):
    (ev,) = code(nlp_id, lex_id, "Korea Selatan diserang oleh Korea Utara.", COUNTRIES_ID)
    assert ev.type == "ASSAULT"
    assert ev.source.text == "Korea Utara" and ev.target.text == "Korea Selatan"


def test_passive_swaps_roles_english(nlp_en, lex_en):
    (ev,) = code(nlp_en, lex_en, "Kyiv was attacked by Russia on Monday.", COUNTRIES_EN)
    assert ev.type == "ASSAULT"
    assert ev.source.text == "Russia" and ev.target.text == "Kyiv"
    assert ev.date == "on Monday"


def test_light_noun_makes_a_country_level_actor(nlp_id, lex_id):
    text = "Pasukan Korea Utara menyerang Ukraina."
    ents = [
        Entity(text="Pasukan Korea Utara", start=0, end=19, label="ORG"),
        Entity(text="Ukraina", start=30, end=37, label="LOC"),
    ]
    (ev,) = code_events(nlp_id(text), ents, lex_id)
    assert ev.source.text == "Korea Utara" and ev.source.canonical == "Korea Utara"
    assert text[ev.source.start : ev.source.end] == "Korea Utara"


def test_location_after_di(nlp_id, lex_id):
    names = {**COUNTRIES_ID, "Kursk": "LOC"}
    (ev,) = code(nlp_id, lex_id, "Rusia menyerang Ukraina di Kursk.", names)
    assert ev.location is not None and ev.location.text == "Kursk"


def test_noun_triggers_need_an_anchor(nlp_id, nlp_en, lex_id, lex_en):
    # a re-mention is not a new event; a noun with participants is
    assert code(nlp_id, lex_id, "Serangan itu mengejutkan banyak pihak.", {}) == []
    (ev,) = code(nlp_id, lex_id, "Serangan Rusia terhadap Ukraina berlanjut.", COUNTRIES_ID)
    assert ev.type == "ASSAULT" and ev.source.text == "Rusia" and ev.target.text == "Ukraina"
    (ev,) = code(nlp_id, lex_id, "Amerika Serikat menjatuhkan sanksi kepada Rusia.", COUNTRIES_ID)
    assert (
        ev.type == "SANCTION" and ev.source.text == "Amerika Serikat" and ev.target.text == "Rusia"
    )
    (ev,) = code(nlp_en, lex_en, "Israel has rejected the charge.", COUNTRIES_EN)
    assert ev.type == "REJECT"  # "the charge" is the object of the rejection, not an ACCUSE


def test_multiword_and_disambiguated_triggers(nlp_id, nlp_en, lex_id, lex_en):
    names = {"Mattis": "PER", "Ryamizard": "PER"}
    (ev,) = code(nlp_id, lex_id, "Mattis meminta maaf kepada Ryamizard.", names)
    assert ev.type == "CONCEDE" and ev.trigger.text == "meminta maaf"
    assert ev.source.text == "Mattis" and ev.target.text == "Ryamizard"
    names = {"Iran": "LOC", "IAEA": "ORG"}
    (ev,) = code(nlp_en, lex_en, "Iran will limit its cooperation with the IAEA.", names)
    assert ev.type == "SANCTION" and ev.context == "future"


def test_content_of_an_agreement_is_not_a_separate_event(nlp_id, lex_id):
    names = {"Putin": "PER", "Kim": "PER"}
    text = "Putin dan Kim sepakat untuk segera memberikan bantuan militer jika salah satu diserang."
    events = code(nlp_id, lex_id, text, names)
    assert [e.type for e in events] == ["AGREE"]
    assert events[0].source.text == "Putin" and events[0].target.text == "Kim"


def test_apposition_and_possessor_are_not_the_subject(nlp_en, lex_en):
    names = {"Javier Correa": "PER", "SINALTRAINAL": "ORG", "Coca Cola": "ORG"}
    text = "Javier Correa, president of SINALTRAINAL, denounced Coca Cola."
    (ev,) = code(nlp_en, lex_en, text, names)
    assert ev.type == "ACCUSE" and ev.source.text == "Javier Correa"
    assert ev.target.text == "Coca Cola"


# --------------------------------------------------------------------------- negation, context


def test_negation(nlp_id, nlp_en, lex_id, lex_en):
    (ev,) = code(nlp_id, lex_id, "Indonesia tidak sepakat dengan Malaysia.", COUNTRIES_ID)
    assert ev.type == "AGREE" and ev.negated
    (ev,) = code(nlp_id, lex_id, "Indonesia sepakat dengan Malaysia.", COUNTRIES_ID)
    assert not ev.negated
    (ev,) = code(nlp_en, lex_en, "Russia did not attack Ukraine.", COUNTRIES_EN)
    assert ev.type == "ASSAULT" and ev.negated
    # a negation in another clause does not count
    (ev,) = code(nlp_id, lex_id, "Tak cuma itu, Amerika Serikat menuduh Rusia.", COUNTRIES_ID)
    assert ev.type == "ACCUSE" and not ev.negated


@pytest.mark.parametrize(
    ("sentence", "context"),
    [
        ("Rusia menyerang Ukraina.", "asserted"),
        ("Jepang akan menjatuhkan sanksi terhadap Korea Utara.", "future"),
        ("Korea Utara bisa menyerang Jepang.", "hypothetical"),
        ("Jika Korea Utara menyerang Jepang, perang akan meluas.", "hypothetical"),
        ("Pada Juni lalu, Rusia menyerang Ukraina.", "historical"),
        ("Menurut Reuters, Rusia menyerang Ukraina.", "reported"),
        ("Reuters melaporkan bahwa Rusia menyerang Ukraina.", "reported"),
    ],
)
def test_context_indonesian(nlp_id, lex_id, sentence, context):
    events = code(nlp_id, lex_id, sentence, COUNTRIES_ID)
    assert events, sentence
    assert events[0].context == context, (sentence, events[0])


@pytest.mark.parametrize(
    ("sentence", "context"),
    [
        ("Russia attacked Ukraine.", "asserted"),
        ("Japan will impose sanctions on North Korea.", "future"),
        ("North Korea could attack Japan.", "hypothetical"),
        ("If Russia attacks Ukraine, the war will spread.", "hypothetical"),
        ("Last June, Russia attacked Ukraine.", "historical"),
        ("According to Reuters, Russia attacked Ukraine.", "reported"),
    ],
)
def test_context_english(nlp_en, lex_en, sentence, context):
    events = code(nlp_en, lex_en, sentence, COUNTRIES_EN)
    assert events, sentence
    assert events[0].context == context, (sentence, events[0])


# --------------------------------------------------------------------------- robustness


def test_no_event_from_a_noun_list(nlp_id, nlp_en, lex_id, lex_en):
    assert (
        code(nlp_id, lex_id, "Korea Utara, Rusia, Ukraina, Jepang dan Indonesia.", COUNTRIES_ID)
        == []
    )
    assert code(nlp_id, lex_id, "Serangan, bantuan, sanksi, kunjungan, ancaman.", {}) == []
    assert code(nlp_en, lex_en, "Attacks, sanctions, talks, threats and aid.", {}) == []
    assert (
        code(nlp_id, lex_id, "Cuaca di Jakarta cerah pada hari Minggu.", {"Jakarta": "LOC"}) == []
    )


def test_all_caps_headline_and_empty_inputs(nlp_id, lex_id):
    text = "KOREA UTARA KIRIM PASUKAN KE RUSIA"
    events = code(nlp_id, lex_id, text, {"KOREA UTARA": "LOC", "RUSIA": "LOC"})
    assert all(isinstance(e, Event) for e in events)
    assert code_events(nlp_id(""), [], lex_id) == []
    assert code_events(nlp_id("   "), [], lex_id) == []
    # entities outside the text are ignored
    assert (
        code_events(nlp_id("Rusia."), [Entity(text="x", start=50, end=51, label="LOC")], lex_id)
        == []
    )


def test_long_sentence_does_not_crash_and_is_fast(nlp_id, lex_id):
    chunk = (
        "Korea Utara menyerang Rusia dan bantuan dikirim ke Ukraina serta pasukan tiba di Kursk , "
    )
    text = chunk * 30 + "selesai."
    doc = nlp_id(text)
    assert len(doc) > 400
    ents = ents_for(text, {**COUNTRIES_ID, "Kursk": "LOC"})
    t0 = time.perf_counter()
    events = code_events(doc, ents, lex_id)
    elapsed = time.perf_counter() - t0
    assert events and elapsed < 2.0
    for ev in events:
        assert text[ev.trigger.start : ev.trigger.end] == ev.trigger.text


def test_doc_without_sentence_boundaries_is_segmented(lex_id):
    nlp = spacy.blank("id")  # no sentencizer
    text = "Rusia menyerang Ukraina. Jepang mengecam Rusia."
    events = code_events(nlp(text), ents_for(text, {**COUNTRIES_ID}), lex_id)
    assert [e.type for e in events] == ["ASSAULT", "ACCUSE"]
    assert events[0].sentence["end"] <= events[1].sentence["start"]


# --------------------------------------------------------------------------- seed article

SEED_NAMES = {
    "Korea Utara": "LOC", "Korea Selatan": "LOC", "Rusia": "LOC", "Ukraina": "LOC",
    "Kursk": "LOC", "Pyongyang": "LOC", "Moskow": "LOC", "Seoul": "LOC", "AS": "LOC",
    "JAKARTA": "LOC", "Bisnis.com": "ORG", "KCNA": "ORG", "Yonhap": "ORG", "Bloomberg": "ORG",
    "Kremlin": "ORG", "Departemen Luar Negeri AS": "ORG", "Choe Son Hui": "PER", "Choe": "PER",
    "Kim Jong Un": "PER", "Kim": "PER", "Vladimir Putin": "PER", "Putin": "PER",
    "Yoon Suk Yeol": "PER", "Yoon": "PER", "Matthew Miller": "PER",
}  # fmt: skip


@pytest.fixture(scope="module")
def seed_events(nlp_id, lex_id):
    text = SEED.read_text(encoding="utf-8")
    ents = ents_for(text, SEED_NAMES)
    # the offsets are real offsets into the article
    for e in ents:
        assert text[e.start : e.end] == e.text
    events = code_events(nlp_id(text), ents, lex_id)
    for ev in events:
        assert text[ev.trigger.start : ev.trigger.end] == ev.trigger.text
        assert ev.sentence["start"] <= ev.trigger.start < ev.trigger.end <= ev.sentence["end"]
        for ref in (ev.source, ev.target, ev.location):
            if ref is not None:
                assert text[ref.start : ref.end] == ref.text
    return text, events


def _name(ref) -> str | None:
    return None if ref is None else (ref.canonical or ref.text)


def _has(events, typ, sources, targets, context=None):
    for ev in events:
        if ev.type != typ:
            continue
        roles_ok = _name(ev.source) in sources and _name(ev.target) in targets
        if roles_ok and (context is None or ev.context == context):
            return True
    return False


def test_seed_consult_official_visit(seed_events):
    _, events = seed_events
    assert _has(events, "CONSULT", {"Choe Son Hui", "Choe", "Korea Utara"}, {"Rusia"})


def test_seed_mobilize_troops_to_kursk(seed_events):
    _, events = seed_events
    assert _has(events, "MOBILIZE", {"Korea Utara", "Pyongyang"}, {"Kursk", "Rusia"})


def test_seed_agree_military_aid_if_attacked_is_historical(seed_events):
    _, events = seed_events
    assert _has(events, "AGREE", {"Vladimir Putin", "Putin"}, {"Kim Jong Un", "Kim"}, "historical")


def test_seed_accuse_us_and_south_korea(seed_events):
    _, events = seed_events
    assert _has(events, "ACCUSE", {"AS", "Korea Selatan"}, {"Kim", "Kim Jong Un", "Korea Utara"})


def test_seed_aid_artillery_shells_is_reported(seed_events):
    _, events = seed_events
    assert _has(
        events, "AID", {"Korea Utara", "Kim", "Kim Jong Un"}, {"Rusia", "Putin"}, "reported"
    )


def test_seed_events_are_json_records(seed_events):
    _, events = seed_events
    for ev in events:
        data = json.loads(ev.model_dump_json())
        assert Event.model_validate(data) == ev
        assert ev.type in PLOVER_TYPES and ev.context in CONTEXTS
        assert 0.0 < ev.confidence <= 1.0


# --------------------------------------------------------------------------- gold files


@pytest.mark.parametrize(("lang", "minimum"), [("id", 150), ("en", 100)])
def test_gold_file_format(lang, minimum):
    rows = load_gold(GOLD_DIR / f"{lang}.jsonl")
    assert len(rows) >= minimum
    ids = set()
    n_empty = 0
    for row in rows:
        assert set(row) >= {"id", "source", "lang", "text", "entities", "events", "split"}
        assert row["lang"] == lang and row["id"] not in ids and row["split"] in {"dev", "test"}
        assert re.match(r"^(indosum:.+|wikinews:.+|seed)$", row["source"])
        ids.add(row["id"])
        text = row["text"]
        for ent in row["entities"]:
            assert text[ent["start"] : ent["end"]] == ent["text"]
            assert ent["label"] in {"PER", "ORG", "LOC"}
        surfaces = {e["text"] for e in row["entities"]}
        for ev in row["events"]:
            assert set(ev) == {"type", "trigger", "source", "target", "negated", "context"}
            assert ev["type"] in PLOVER_TYPES and ev["context"] in CONTEXTS
            assert isinstance(ev["negated"], bool)
            assert ev["trigger"] in text
            for role in ("source", "target"):
                assert ev[role] is None or ev[role] in surfaces
        n_empty += not row["events"]
    # sentences without events are there so that precision is measured
    assert n_empty / len(rows) >= 0.2
    # the split was fixed before tuning: every third line is test
    assert [r["split"] for r in rows] == ["test" if i % 3 == 2 else "dev" for i in range(len(rows))]


@pytest.mark.parametrize("lang", ["id", "en"])
def test_coder_runs_over_gold_files(lang):
    lex = EventLexicon.for_language(lang)
    rows = load_gold(GOLD_DIR / f"{lang}.jsonl")
    preds = [code_gold_line(r, lex) for r in rows]
    assert len(preds) == len(rows)
    for row, events in zip(rows, preds, strict=True):
        for ev in events:
            assert row["text"][ev.trigger.start : ev.trigger.end] == ev.trigger.text
    result = evaluate_gold_file(GOLD_DIR / f"{lang}.jsonl", lang)
    assert result["sentences"] == len(rows)
    report = format_event_report(result)
    assert "micro" in report


def test_evaluate_events_counts():
    gold = [
        {"id": "a", "events": [{"type": "ASSAULT", "source": "Rusia", "target": "Ukraina", "negated": False, "context": "asserted"}]},
        {"id": "b", "events": []},
        {"id": "c", "events": [{"type": "AID", "source": None, "target": "Ukraina", "negated": False, "context": "asserted"}]},
    ]  # fmt: skip
    nlp = spacy.blank("id")
    nlp.add_pipe("sentencizer")
    lex = EventLexicon.for_language("id")
    pred = [
        code(nlp, lex, "Rusia menyerang Ukraina.", COUNTRIES_ID),
        code(nlp, lex, "Rusia mengecam Jepang.", COUNTRIES_ID),
        [],
    ]
    res = evaluate_events(gold, pred)
    assert res["micro"]["tp"] == 1 and res["micro"]["fp"] == 1 and res["micro"]["fn"] == 1
    assert res["source_accuracy"] == 1.0 and res["target_accuracy"] == 1.0
    assert res["per_type"]["ASSAULT"]["f1"] == 1.0
