"""A real Prometheus (Debian's package) scrapes a running pipeline during a replay."""

from __future__ import annotations

import random
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import make_settings, wait_until
from workers import app as celery_app
from workers.domain import RawArticle
from workers.ingest.normalise import normalise
from workers.ingest.tasks import send_articles
from workers.metrics import children_up
from workers.runtime import Deployment, free_port
from workers.settings import WORKER_KINDS
from workers.store import Store

PROMETHEUS = shutil.which("prometheus")
WORDS = [
    "berbicara",
    "tentang",
    "ekonomi",
    "minyak",
    "gandum",
    "sanksi",
    "perang",
    "damai",
    "ukraina",
    "pasar",
    "rubel",
    "dolar",
    "nuklir",
    "rudal",
    "latihan",
    "militer",
    "cuaca",
    "sepak",
    "bola",
    "pemilu",
]
pytestmark = pytest.mark.skipif(
    PROMETHEUS is None,
    reason="needs Debian's prometheus package (.ci/run installs it: apt-get install prometheus)",
)


@pytest.fixture
def scraped_pipeline(redis_url: str, tmp_path: Path) -> Iterator[tuple[Store, str]]:
    ports = {kind: free_port() for kind in ("ingest", "extract", "alert")}
    settings = make_settings(
        redis_url, tmp_path / "var", **{f"metrics_port_{k}": p for k, p in ports.items()}
    )
    running = Deployment(settings)
    running.redis_url = redis_url
    store = Store.connect(redis_url, settings)
    celery_app.configure(settings, redis_url)
    prom_port = free_port()
    config = tmp_path / "prometheus.yml"
    targets = ", ".join(f"'127.0.0.1:{p}'" for p in ports.values())
    config.write_text(
        f"global: {{scrape_interval: 1s}}\nscrape_configs:\n"
        f"  - job_name: pantau\n    static_configs: [{{targets: [{targets}]}}]\n"
    )
    prometheus = subprocess.Popen(
        [
            str(PROMETHEUS),
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        running.start_workers()
        running.wait_ready(store, timeout_s=180)
        yield store, f"http://127.0.0.1:{prom_port}"
    finally:
        prometheus.terminate()
        prometheus.wait(timeout=30)
        running.stop()
        store.drop_namespace()


def _distinct_text(n: int) -> str:
    """Articles that are not near-duplicates of each other (each would be its own story)."""
    words = random.Random(n).sample(WORDS, 12)
    return f"Vladimir Putin {' '.join(words)} nomor {n}."


def _query(prom: str, expr: str) -> list[dict]:
    response = httpx.get(f"{prom}/api/v1/query", params={"query": expr}, timeout=10)
    response.raise_for_status()
    return response.json()["data"]["result"]


def test_prometheus_scrapes_rates_and_latency_quantiles(
    scraped_pipeline: tuple[Store, str],
) -> None:
    store, prom = scraped_pipeline
    # wait_ready returned only once every pool child was up, i.e. ready for tasks (an extract
    # child has loaded its models by then)
    for kind in WORKER_KINDS:
        assert children_up(str(store.settings.metrics_dir / kind)) == 1, kind
    wait_until(lambda: len(_query(prom, "up == 1")) == 3, 60, "Prometheus to see the three workers")
    deadline = time.monotonic() + 20
    sent = 0
    while time.monotonic() < deadline:  # ~3 articles/s for 20 s, every one mentioning Putin
        batch = [
            normalise(RawArticle(text=_distinct_text(sent + i)), max_chars=1000) for i in range(3)
        ]
        send_articles(batch)
        sent += len(batch)
        time.sleep(1)
    wait_until(lambda: store.counters()["completed"] >= sent, 120, "the replay to complete")
    time.sleep(3)  # one more scrape after the last article
    rate = _query(prom, 'sum(rate(pantau_articles_total{stage="alert",outcome="ok"}[30s]))')
    assert rate and float(rate[0]["value"][1]) > 0
    for histogram in ("pantau_ingest_to_alert_seconds", "pantau_pipeline_seconds"):
        p95 = _query(prom, f"histogram_quantile(0.95, sum by (le) (rate({histogram}_bucket[1m])))")
        assert p95 and 0 < float(p95[0]["value"][1]) < 60, (histogram, p95)
    depth = _query(prom, "pantau_queue_depth")
    assert {series["metric"]["queue"] for series in depth} == {"ingest", "extract", "alert"}
    up = _query(prom, "sum by (kind) (pantau_worker_up)")
    assert {series["metric"]["kind"] for series in up} == {"ingest", "extract", "alert"}
