"""`pantau bench --rate --webhook` as a user runs it: a short, slow run end to end."""

from __future__ import annotations

import json
import random
from pathlib import Path

from tests.integration.test_cli import _run

_WORDS = [
    "anggaran", "pendidikan", "jalan", "tol", "pasar", "beras", "impor", "pelabuhan", "bandara",
    "kereta", "listrik", "air", "bersih", "rumah", "sakit", "sekolah", "desa", "nelayan", "petani",
    "harga", "cabai", "banjir", "gempa", "pajak", "daerah", "investasi", "asing", "lapangan",
    "kerja", "pemuda", "olahraga", "budaya", "wisata", "hutan", "tambang",
]  # fmt: skip


def _corpus(path: Path, n: int) -> Path:
    """n distinct Indonesian news-like articles; most name Jokowi or the KPK."""
    rng = random.Random(6)
    subjects = ["Presiden Joko Widodo", "Ketua KPK", "Gubernur Jawa Barat", "Jokowi"]
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            words = " ".join(rng.sample(_WORDS, 12))
            text = (
                f"{subjects[i % len(subjects)]} membahas {words} di Jakarta pada Senin. "
                f"Rencana nomor {i} itu menyangkut {' '.join(rng.sample(_WORDS, 10))}."
            )
            out.write(json.dumps({"id": f"bench-{i:03d}", "text": text, "language": "id"}) + "\n")
    return path


def test_bench_rate_delivers_every_alert_to_the_local_receiver_and_times_it(
    tmp_path: Path,
) -> None:
    corpus = _corpus(tmp_path / "corpus.jsonl", 60)
    result = _run(
        [
            "bench",
            "--corpus",
            str(corpus),
            "--rate",
            "4",
            "--duration",
            "10",
            "--warmup",
            "5",
            "--webhook",
            "--json",
        ],
        tmp_path,
        timeout=400,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["mode"] == "rate"
    assert report["articles_sent"] == 40
    assert report["articles_completed"] == 40
    assert 3.5 <= report["rate_achieved"] <= 4.5
    assert report["pipeline_latency_ms"]["p50"] > 0
    assert report["alerts_recorded"] >= 10
    assert report["alerts_delivered"] == report["alerts_recorded"]
    assert report["missing_alerts"] == 0
    assert report["raw_duplicates"] == 0
    assert report["bad_signatures"] == 0
    hook = report["webhook_latency_ms"]
    assert hook["count"] == report["alerts_delivered"]
    assert 0 < hook["p50"] <= hook["p99"] <= hook["max"] < 30_000
    assert set(report["webhook_stages_ms"]) == {
        "ingest_to_extracted",
        "extracted_to_alerted",
        "alerted_to_received",
    }
    assert set(report["rss_mb"]) == {"ingest", "extract", "alert"}
