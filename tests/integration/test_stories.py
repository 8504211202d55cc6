"""Story assignment against a real Redis: revisions join their story within a batch and across
batches; unrelated articles open their own; a redelivery keeps the story it was given."""

from __future__ import annotations

import uuid
from pathlib import Path

from tests.integration.conftest import make_settings
from workers.domain import Article, RawArticle
from workers.ingest.normalise import normalise
from workers.ingest.tasks import assign_stories
from workers.store import Store

BASE = (
    "Menteri Luar Negeri Korea Utara Choe Son Hui bertolak ke Moskow untuk bertemu Sergei "
    "Lavrov. Kunjungan itu terjadi ketika pasukan Korea Utara dilaporkan tiba di Kursk. "
    "Para analis menilai kerja sama militer kedua negara semakin erat sejak perjanjian tahun lalu."
)
OTHER = (
    "Harga beras di pasar induk Cipinang naik tiga persen pekan ini karena pasokan dari Jawa "
    "Tengah berkurang setelah banjir merendam ribuan hektare sawah menjelang masa panen raya."
)


def _article(text: str) -> Article:
    return normalise(RawArticle(id=uuid.uuid4().hex[:12], text=text), max_chars=10_000)


def test_assign_stories_within_and_across_batches(redis_url: str, tmp_path: Path) -> None:
    store = Store.connect(redis_url, make_settings(redis_url, tmp_path))
    try:
        first, revision, other = (
            _article(BASE),
            _article(BASE + " Pertemuan berlangsung dua jam."),
            _article(OTHER),
        )
        stories = assign_stories(store, [first, revision, other])
        assert stories == [first.id, first.id, other.id]

        later = _article("Moskow (ANTARA) - " + BASE)
        unrelated = _article(
            "Timnas Indonesia menang dua gol tanpa balas atas Vietnam di Stadion Gelora Bung Karno "
            "pada laga kualifikasi Piala Dunia, Selasa malam, di hadapan enam puluh ribu penonton."
        )
        kept = first.model_copy(update={"id": "redelivered", "story_id": "given-before"})
        stories = assign_stories(store, [later, kept, unrelated])
        assert stories[0] == first.id
        assert stories[1] == "given-before"
        assert stories[2] == unrelated.id
        assert assign_stories(store, []) == []
    finally:
        store.drop_namespace()
