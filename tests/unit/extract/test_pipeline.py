"""The extractor on the seed article: language, country names, watched actors, short forms."""

from __future__ import annotations

import pytest

from tests.conftest import TEST_WATCHLIST
from workers.alert.watchlist import load_watchlist
from workers.domain import Article
from workers.extract.pipeline import Extractor


def _article(text: str, language: str | None = None) -> Article:
    return Article(
        id="t", text=text, language=language, content_hash="h", ingested_at="2024-10-29T00:00:00Z"
    )


@pytest.fixture(scope="module")
def extractor() -> Extractor:
    return Extractor(load_watchlist(TEST_WATCHLIST))


def test_extract_seed_links_watched_actors_and_countries(
    extractor: Extractor, seed_text: str
) -> None:
    result = extractor.extract_many([_article(seed_text)])[0]
    assert result.language == "id"
    actors = {e.actor_id for e in result.entities if e.actor_id}
    assert {"kim-jong-un", "vladimir-putin", "choe-son-hui"} <= actors
    assert "xi-jinping" not in actors and "kim-yo-jong" not in actors
    canonicals = {e.canonical for e in result.entities if e.label == "LOC"}
    assert {"KP", "KR", "RU", "UA", "US"} <= canonicals
    for ent in result.entities:
        assert result.text[ent.start : ent.end] == ent.text


def test_extract_short_forms_link_only_after_the_full_name(extractor: Extractor) -> None:
    named = extractor.extract_many([_article("Kim Jong Un tiba di Moskow. Kim bertemu Putin.")])[0]
    bare = extractor.extract_many([_article("Kim bertemu pejabat di Seoul kemarin.")])[0]
    assert [e.actor_id for e in named.entities if e.text == "Kim"] == ["kim-jong-un"]
    assert not any(e.actor_id for e in bare.entities)


def test_extract_shared_short_form_links_neither(extractor: Extractor) -> None:
    text = "Kim Jong Un dan Kim Yo Jong tiba. Kim berbicara."
    result = extractor.extract_many([_article(text)])[0]
    assert {e.actor_id for e in result.entities if e.text == "Kim"} <= {None}


def test_extract_routes_malay_to_indonesian_and_other_languages_to_ruler(
    extractor: Extractor,
) -> None:
    malay = _article(
        "Kerajaan Malaysia telah mengumumkan bahawa sekolah akan dibuka semula minggu depan."
    )
    french = _article("Le président Vladimir Putin a rencontré Kim Jong Un à Moscou mardi dernier.")
    results = extractor.extract_many([malay, french])
    assert results[0].language == "ms" and extractor.route(malay)[1] == "id"
    assert results[1].language == "fr" and extractor.route(french)[1] == "xx"
    assert {"vladimir-putin", "kim-jong-un"} <= {e.actor_id for e in results[1].entities}


@pytest.mark.parametrize(
    "text",
    [
        "KOREA UTARA KIRIM PASUKAN KE RUSIA, KATA YOON",
        "korea utara kirim pasukan ke rusia kata putin",
        "<p>Putin&nbsp;tiba</p> 🇷🇺 di\u200b Moskow\r\nKim Jong\u0301 Un",
        "Putin " * 20_000,
    ],
)
def test_extract_odd_text_keeps_offsets_exact(extractor: Extractor, text: str) -> None:
    from workers.domain import RawArticle
    from workers.ingest.normalise import normalise

    article = normalise(RawArticle(text=text), max_chars=50_000)
    result = extractor.extract_many([article])[0]
    for ent in result.entities:
        assert result.text[ent.start : ent.end] == ent.text


def test_extract_seed_events_with_the_shipped_pipeline(
    extractor: Extractor, seed_text: str
) -> None:
    """The seed's key events, found from the model's and gazetteer's entities (not gold ones)."""
    result = extractor.extract_many([_article(seed_text)])[0]

    def found(kind: str, source: set[str], target: set[str], context: str | None = None) -> bool:
        for event in result.events:
            src = event.source.canonical if event.source else None
            tgt = event.target.canonical if event.target else None
            if (
                event.type == kind
                and src in source
                and tgt in target
                and (context is None or event.context == context)
            ):
                return True
        return False

    north_korea = {"KP", "kim-jong-un", "choe-son-hui"}
    russia = {"RU", "vladimir-putin"}
    assert found("CONSULT", north_korea, russia)
    assert any(
        e.type == "MOBILIZE"
        and e.source
        and e.source.canonical == "KP"
        and e.target
        and e.target.text == "Kursk"
        for e in result.events
    )
    assert found("AGREE", {"vladimir-putin"}, {"kim-jong-un"}, "historical")
    assert found("ACCUSE", {"US", "KR"}, north_korea)
    assert found("AID", north_korea, russia, "reported")
    for event in result.events:
        assert result.text[event.trigger.start : event.trigger.end] == event.trigger.text


def test_extract_stops_growing_the_vocabulary_after_learning(extractor: Extractor) -> None:
    """A long-running worker sees new words all day: past its first articles (which teach the
    vocabulary and the tokenizer cache) they must not stay in the StringStore."""
    strings = extractor.nlp("id").vocab.strings
    saved = extractor.learn_articles
    try:
        extractor.learn_articles = extractor._seen["id"] + 1  # exactly one more article learns
        learnt = extractor.extract_many([_article("Pemanasan: Qzvb7 tiba di Surabaya.")])
        assert learnt and "Qzvb7" in strings
        before = len(strings)
        novel = " ".join(f"Zqxw{i}vbk" for i in range(300))
        text = f"Presiden Rusia Vladimir Putin berkata {novel}."
        result = extractor.extract_many([_article(text, language="id")])[0]
    finally:
        extractor.learn_articles = saved
    assert result.language == "id" and any(e.actor_id == "vladimir-putin" for e in result.entities)
    assert len(strings) == before
    assert "Zqxw7vbk" not in strings


def test_pipelines_multiply_with_openblas_on_one_thread() -> None:
    """Every layer of a shipped pipeline uses numpy's ops (OpenBLAS matrix multiplies, ~3x
    BLIS's speed here), and a warmed-up extractor keeps BLAS to one thread per process."""
    from thinc.api import NumpyOps
    from threadpoolctl import threadpool_info, threadpool_limits

    extractor = Extractor(load_watchlist(TEST_WATCHLIST))
    with threadpool_limits(2, user_api="blas"):  # restored afterwards for the other tests
        extractor.warm_up(languages=("id", "en"))
        blas = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
    assert blas and set(blas) == {1}
    for language in ("id", "en"):
        nlp = extractor.nlp(language)
        assert nlp.pipe_names, language
        for _name, component in nlp.pipeline:
            model = getattr(component, "model", None)
            if model is None:
                continue
            for layer in model.walk():
                assert isinstance(layer.ops, NumpyOps) and not layer.ops.use_blis, (
                    language,
                    layer.name,
                )


def test_pipe_batches_cap_articles_and_characters() -> None:
    from workers.extract.pipeline import pipe_batches

    texts = ["a" * 10, "b" * 10, "c" * 10, "d" * 35, "e" * 5, "f" * 5, "g" * 5, "h" * 5]
    groups = list(pipe_batches(texts, size=3, chars=30))
    # In order, every text once; a 35-character text alone; never more than 3 or 30 characters
    # unless alone.
    assert groups == [[0, 1, 2], [3], [4, 5, 6], [7]]
    assert list(pipe_batches([], size=3, chars=30)) == []


def test_extract_many_splits_long_batches_and_keeps_order(extractor: Extractor) -> None:
    """Articles of a message go through nlp.pipe in several groups when they are long: each
    result still belongs to its article and equals extracting that article alone."""
    from workers.extract import pipeline

    filler = " Pasar saham ditutup menguat pada perdagangan hari ini." * 60
    texts = [
        f"Presiden Rusia Vladimir Putin tiba di Jakarta.{filler}",
        "President Vladimir Putin met Kim Jong Un in Pyongyang on Tuesday.",
        f"Menteri Luar Negeri Korea Utara Choe Son Hui tiba di Moskow.{filler}",
        "Prabowo Subianto berbicara di Surabaya.",
    ]
    articles = [
        Article(
            id=f"a{i}",
            text=text,
            language="en" if i == 1 else "id",
            content_hash=f"h{i}",
            ingested_at="2024-10-29T00:00:00Z",
        )
        for i, text in enumerate(texts)
    ]
    alone = [extractor.extract_many([a])[0] for a in articles]
    saved = pipeline.PIPE_CHARS
    try:
        pipeline.PIPE_CHARS = len(texts[2]) + 50  # room for one long and one short article
        indonesian = [texts[0], texts[2], texts[3]]  # the English one goes its own way
        assert list(pipeline.pipe_batches(indonesian, 8, pipeline.PIPE_CHARS)) == [[0], [1, 2]]
        together = extractor.extract_many(articles)
    finally:
        pipeline.PIPE_CHARS = saved
    assert [r.article_id for r in together] == ["a0", "a1", "a2", "a3"]
    for one, many in zip(alone, together, strict=True):
        assert one.entities == many.entities and one.events == many.events
    assert [r.language for r in together] == ["id", "en", "id", "id"]
    assert any(e.actor_id == "vladimir-putin" for e in together[0].entities)
    assert any(e.actor_id == "kim-jong-un" for e in together[1].entities)


def test_extract_until_stops_between_pipe_batches_and_returns_what_is_left(
    extractor: Extractor,
) -> None:
    """`stop` is asked after each pipe batch with the number of articles left; where it says
    yes, the extractions so far come back with the articles not yet extracted, both in input
    order, the Indonesian pipeline's articles first as they are extracted."""
    articles = [
        Article(
            id=f"a{i}",
            text=f"Presiden Rusia Vladimir Putin menerima delegasi ke-{i} di Moskow.",
            language="en" if i == 3 else "id",
            content_hash=f"h{i}",
            ingested_at="2024-10-29T00:00:00Z",
        )
        for i in range(5)
    ]
    asked: list[int] = []

    def stop(left: int) -> bool:
        asked.append(left)
        return len(asked) == 2

    done, left = extractor.extract_until(articles, stop, batch_size=2)
    # Indonesian a0 a1 | a2 a4, then English a3: stopped after the second batch, 1 left.
    assert asked == [3, 1]
    assert [e.article_id for e in done] == ["a0", "a1", "a2", "a4"]
    assert [a.id for a in left] == ["a3"]
    assert all(any(x.actor_id == "vladimir-putin" for x in e.entities) for e in done)
    never = extractor.extract_until(articles, lambda _left: False, batch_size=2)
    assert [e.article_id for e in never[0]] == ["a0", "a1", "a2", "a3", "a4"] and never[1] == []
    rest, nothing = extractor.extract_until(left, stop, batch_size=2)
    assert [e.article_id for e in rest] == ["a3"] and nothing == []
    assert asked == [3, 1]  # nothing is left after the last batch: stop is not asked
