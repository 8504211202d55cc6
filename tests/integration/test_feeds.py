"""Feed polling through real workers: conditional GET, new entries once, backoff on errors."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from tests.integration.conftest import Pipeline, wait_until
from workers.app import app

RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Kabar Uji</title><link>http://127.0.0.1/</link>
<item><title>Putin bertemu Choe Son Hui</title><link>http://127.0.0.1/berita/1?utm_source=rss</link>
<guid>1</guid><pubDate>Tue, 29 Oct 2024 08:00:00 GMT</pubDate>
<description>Presiden Rusia Vladimir Putin menerima Menteri Luar Negeri Korea Utara Choe Son Hui di Moskow.</description></item>
<item><title>Cuaca Jakarta</title><link>http://127.0.0.1/berita/2</link><guid>2</guid>
<description>Hujan deras diperkirakan turun di Jakarta Selatan sore ini.</description></item>
</channel></rss>"""


class FeedServer(BaseHTTPRequestHandler):
    """Serves /feed.xml with an ETag, 304 on a match; /broken answers 500."""

    hits: ClassVar[list[tuple[str, str | None]]] = []

    def do_GET(self) -> None:
        FeedServer.hits.append((self.path, self.headers.get("If-None-Match")))
        if self.path == "/broken":
            self.send_response(500)
            self.end_headers()
            return
        if self.headers.get("If-None-Match") == '"v1"':
            self.send_response(304)
            self.end_headers()
            return
        body = RSS.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("ETag", '"v1"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture(scope="module")
def feed_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FeedServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_feed_poll_ingests_entries_once_with_conditional_get(
    pipeline: Pipeline, feed_server: str
) -> None:
    url = f"{feed_server}/feed.xml"
    assert pipeline.settings.feeds is not None
    pipeline.settings.feeds.write_text(
        f"feeds:\n  - url: {url}\n    name: Kabar Uji\n    language: id\n"
    )
    alerts_before = pipeline.counter("alerts")
    ingested_before = pipeline.counter("ingested")
    app.send_task("pantau.ingest.poll_feed", args=[url])
    wait_until(lambda: pipeline.counter("ingested") == ingested_before + 2, 60, "two feed entries")
    pipeline.wait_idle()
    state = pipeline.store.feed_state(url)
    assert state["etag"] == '"v1"' and state["failures"] == "0"
    assert pipeline.counter("alerts") == alerts_before + 2  # Putin and Choe Son Hui

    app.send_task("pantau.ingest.poll_feed", args=[url])
    wait_until(lambda: pipeline.store.feed_state(url).get("last_status") == "304", 60, "a 304")
    pipeline.wait_idle()
    assert ("/feed.xml", '"v1"') in FeedServer.hits
    assert pipeline.counter("ingested") == ingested_before + 2


def test_feed_poll_errors_back_off(pipeline: Pipeline, feed_server: str) -> None:
    url = f"{feed_server}/broken"
    assert pipeline.settings.feeds is not None
    pipeline.settings.feeds.write_text(f"feeds:\n  - url: {url}\n    interval_s: 30\n")
    app.send_task("pantau.ingest.poll_feed", args=[url])
    wait_until(
        lambda: pipeline.store.feed_state(url).get("failures") == "1", 60, "a recorded failure"
    )
    state = pipeline.store.feed_state(url)
    assert "500" in state["last_error"]
    assert float(state["next_due"]) - float(state["polled_at"]) >= 30
    assert not pipeline.store.claim_feed_poll(url)  # not due yet


def test_cli_ingest_dry_run_reads_feed_urls_and_files(feed_server: str, tmp_path: Path) -> None:
    feed_file = tmp_path / "kabar.xml"
    feed_file.write_text(RSS)
    for source in (str(feed_file), f"{feed_server}/feed.xml"):
        result = subprocess.run(
            [sys.executable, "-m", "workers.cli", "ingest", "--dry-run", source],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
            env={"PATH": "/usr/bin:/bin", "PANTAU_OUTBOUND_ALLOWLIST": "127.0.0.1"},
        )
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert len(lines) == 2 and "berita/1" in lines[0] and "utm_source" not in lines[0]


def test_cli_ingest_refuses_loopback_feed_url_unless_allowlisted(
    feed_server: str, tmp_path: Path
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "workers.cli", "ingest", "--dry-run", f"{feed_server}/feed.xml"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert (
        result.returncode == 2 and "127.0.0.1" in result.stderr and "Traceback" not in result.stderr
    )
