"""parse_feed over the shared fixture folders and hand-made feeds; feed config; poll backoff."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workers.errors import InputError
from workers.ingest.feeds import (
    EXPAT_HARDENED,
    EXPAT_VERSION,
    FeedConfig,
    FeedParseResult,
    html_to_text,
    load_feeds,
    next_poll_delay,
    parse_feed,
)

SHARED = Path(__file__).resolve().parents[4] / "shared" / "data"
FIXTURE_DIRS = [SHARED / "feedparser-tests", SHARED / "feed-rs-fixtures"]


def _fixture_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and p.name != "SOURCE.md" and not p.name.endswith(".serde.json")
    )


@pytest.mark.parametrize("folder", FIXTURE_DIRS, ids=lambda p: p.name)
def test_every_fixture_file_parses_or_reports(folder: Path) -> None:
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    files = _fixture_files(folder)
    assert files
    with_entries = 0
    started = time.monotonic()
    for path in files:
        t0 = time.monotonic()
        result = parse_feed(path.read_bytes(), feed_url="http://example.com/feed.xml")
        took = time.monotonic() - t0
        assert isinstance(result, FeedParseResult), path
        assert took < 2.0, f"{path} took {took:.2f} s"
        if result.error is not None:
            assert "\n" not in result.error and result.error, path
        for entry in result.entries:
            assert entry.text or entry.title, path
            assert entry.published_at is None or entry.published_at.endswith("Z"), path
        with_entries += bool(result.entries)
    assert with_entries > 0
    assert time.monotonic() - started < 60


def test_real_world_captures_yield_entries() -> None:
    folder = SHARED / "feed-rs-fixtures"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    results = {
        p.name: parse_feed(p.read_bytes(), feed_url="https://example.com/")
        for p in _fixture_files(folder)
    }
    nbc = results["rss_2.0_nbcny.xml"]
    assert nbc.entries and nbc.entries[0].language == "en_US"
    assert nbc.entries[0].published_at == "2023-12-16T02:02:33Z"
    assert results["rss_2.0_invalid_1.xml"].error.startswith("not a feed:")
    assert results["jsonfeed_elastic_1.1.json"].entries


RSS20 = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>
<title>Example Wire</title><link>https://wire.example/</link><language>en-gb</language>
<item>
  <title>Port closed by &lt;b&gt;floods&lt;/b&gt;</title>
  <link>https://wire.example/news/port-closed/?utm_source=rss&amp;id=4</link>
  <description>&lt;p&gt;Heavy rain flooded the port.&lt;/p&gt;&lt;p&gt;Officials said &lt;a href="/x"&gt;more&lt;/a&gt; rain is due.&lt;/p&gt;&lt;script&gt;evil()&lt;/script&gt;</description>
  <pubDate>Tue, 29 Oct 2024 10:00:00 +0700</pubDate>
  <dc:creator>Jane Reporter</dc:creator>
</item>
<item><title>Headline only</title><link>/relative/path</link></item>
<item><description></description></item>
</channel></rss>"""

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="id">
  <title>Berita Contoh</title>
  <entry>
    <title>Banjir di Semarang</title>
    <link href="https://berita.example/banjir"/>
    <id>tag:berita.example,2024:1</id>
    <updated>2024-10-29T03:00:00Z</updated>
    <author><name>Budi</name></author>
    <content type="html">&lt;p&gt;Hujan deras.&lt;/p&gt;&lt;p&gt;Pelabuhan ditutup.&lt;/p&gt;</content>
  </entry>
</feed>"""

RSS10 = b"""<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
         xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel rdf:about="https://rdf.example/"><title>RDF Site</title><link>https://rdf.example/</link>
    <description>d</description><dc:language>de</dc:language></channel>
  <item rdf:about="https://rdf.example/a"><title>Eins</title><link>https://rdf.example/a</link>
    <description>Erster Artikel.</description><dc:date>2024-01-02T03:04:05+01:00</dc:date></item>
</rdf:RDF>"""

JSON_FEED = json.dumps(
    {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "JSON Wire",
        "language": "en",
        "authors": [{"name": "Desk"}],
        "items": [
            {
                "id": "1",
                "url": "https://json.example/1#top",
                "title": "First",
                "content_html": "<p>One.</p><p>Two.</p>",
                "date_published": "2024-10-29T10:00:00+07:00",
            },
            {"id": "2", "content_text": "Plain body.", "date_published": "not a date"},
            {"id": "3"},
            "not an item",
        ],
    }
).encode()

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE rss [
  <!ENTITY lol "lol">
  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<rss version="2.0"><channel><title>&lol9;</title><item><title>&lol9;</title></item></channel></rss>"""

XXE = b"""<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE foo [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<rss version="2.0"><channel><title>t</title><item><title>&xxe;</title><description>x</description></item></channel></rss>"""


def test_rss20() -> None:
    result = parse_feed(RSS20, feed_url="https://wire.example/feed.xml")
    assert result.error is None and not result.bozo
    assert result.feed_title == "Example Wire"
    assert result.skipped == 1  # the empty item
    first, second = result.entries
    assert first.title == "Port closed by floods"
    assert first.text == "Heavy rain flooded the port.\nOfficials said more rain is due."
    assert first.url == "https://wire.example/news/port-closed?id=4"
    assert first.published_at == "2024-10-29T03:00:00Z"
    assert first.source == "Example Wire"
    assert first.language == "en-gb"
    assert first.author == "Jane Reporter"
    assert second.title == "Headline only" and second.text == ""
    assert second.url == "https://wire.example/relative/path"


def test_feed_name_and_language_hint_win() -> None:
    result = parse_feed(
        RSS20, feed_url="https://wire.example/feed.xml", feed_name="Wire", language="id"
    )
    assert {e.source for e in result.entries} == {"Wire"}
    assert {e.language for e in result.entries} == {"id"}


def test_atom() -> None:
    result = parse_feed(ATOM, feed_url="https://berita.example/atom")
    assert result.error is None
    (entry,) = result.entries
    assert entry.title == "Banjir di Semarang"
    assert entry.text == "Hujan deras.\nPelabuhan ditutup."
    assert entry.url == "https://berita.example/banjir"
    assert entry.published_at == "2024-10-29T03:00:00Z"
    assert entry.author == "Budi"
    assert entry.language == "id"
    assert entry.source == "Berita Contoh"


def test_rss10_rdf() -> None:
    result = parse_feed(RSS10, feed_url="https://rdf.example/rss")
    (entry,) = result.entries
    assert entry.title == "Eins" and entry.text == "Erster Artikel."
    assert entry.published_at == "2024-01-02T02:04:05Z"
    assert entry.language == "de"


def test_json_feed() -> None:
    result = parse_feed(JSON_FEED, feed_url="https://json.example/feed.json")
    assert result.error is None
    assert result.feed_title == "JSON Wire"
    assert result.skipped == 2
    first, second = result.entries
    assert first.url == "https://json.example/1"
    assert first.text == "One.\nTwo."
    assert first.published_at == "2024-10-29T03:00:00Z"
    assert first.author == "Desk" and first.language == "en" and first.source == "JSON Wire"
    assert second.title is None and second.text == "Plain body." and second.published_at is None


def test_json_feed_version_1_and_not_a_json_feed() -> None:
    v1 = {"version": "https://jsonfeed.org/version/1", "title": "t", "author": {"name": "A"},
          "items": [{"id": "x", "summary": "s", "external_url": "https://e.example/x"}]}  # fmt: skip
    result = parse_feed(json.dumps(v1).encode(), feed_url="https://e.example/f.json")
    assert result.entries[0].author == "A" and result.entries[0].url == "https://e.example/x"
    other = parse_feed(b'{"hello": "world"}', feed_url="https://e.example/f.json")
    assert not other.entries and other.error and other.error.startswith("not a feed:")


@pytest.mark.parametrize("body", [BILLION_LAUGHS, XXE], ids=["billion-laughs", "xxe"])
def test_entity_declarations_refused(body: bytes) -> None:
    started = time.monotonic()
    result = parse_feed(body, feed_url="https://evil.example/")
    assert result.entries == []
    assert result.error is not None and result.error.startswith("refused:")
    assert time.monotonic() - started < 1.0


def test_entity_declarations_refused_in_utf16() -> None:
    body = BILLION_LAUGHS.replace(
        b'<?xml version="1.0"?>', b'<?xml version="1.0" encoding="utf-16"?>'
    )
    result = parse_feed(body.decode().encode("utf-16"), feed_url="https://evil.example/")
    assert result.error is not None and result.error.startswith("refused:")


def test_external_dtd_without_entities_is_fine() -> None:
    body = RSS20.replace(
        b"<rss ",
        b'<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" '
        b'"http://my.netscape.com/publish/formats/rss-0.91.dtd">\n<rss ',
        1,
    )
    assert len(parse_feed(body, feed_url="https://wire.example/").entries) == 2


@pytest.mark.parametrize(
    "body",
    [b"", b"   ", b"<html><body>Not a feed</body></html>", b"\x00\xff\xfe garbage", b"/etc/passwd",
     b"http://169.254.169.254/latest", b"{", b"[1, 2]", b"<rss><channel><item><title>x"],
)  # fmt: skip
def test_junk_never_raises(body: bytes) -> None:
    result = parse_feed(body, feed_url="https://x.example/")
    assert isinstance(result, FeedParseResult)
    if not result.entries:
        assert result.error is None or result.error.startswith(("not a feed:", "refused:"))


def test_a_path_is_not_opened() -> None:
    result = parse_feed(b"/etc/hostname", feed_url="")
    assert result.entries == []


@settings(max_examples=150, deadline=None)
@given(
    st.binary(max_size=300)
    | st.text(max_size=200).map(lambda t: f"<rss><channel><item>{t}".encode())
)
def test_never_raises_on_any_bytes(body: bytes) -> None:
    assert isinstance(parse_feed(body, feed_url="https://x.example/"), FeedParseResult)


def test_expat_version_recorded() -> None:
    assert len(EXPAT_VERSION) == 3
    assert (EXPAT_VERSION >= (2, 6)) == EXPAT_HARDENED


def test_html_to_text_keeps_paragraphs_and_drops_scripts() -> None:
    markup = "<div><h2>Head</h2><p>One\n two</p><ul><li>a</li><li>b</li></ul><style>x{}</style>end<br>line</div>"
    assert html_to_text(markup) == "Head\nOne two\na\nb\nend\nline"
    assert html_to_text("plain &amp; simple") == "plain & simple"
    assert html_to_text("") == ""


# ------------------------------------------------------------------------------ config


def test_load_feeds(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text(
        "feeds:\n"
        "  - url: https://wire.example/rss\n    name: Wire\n    language: en\n"
        "  - url: https://berita.example/atom\n    interval_s: 60\n    full_text: true\n",
        encoding="utf-8",
    )
    feeds = load_feeds(path)
    assert feeds == [
        FeedConfig(url="https://wire.example/rss", name="Wire", language="en"),
        FeedConfig(url="https://berita.example/atom", interval_s=60, full_text=True),
    ]
    assert feeds[0].interval_s == 300 and feeds[0].full_text is False


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("feeds:\n  - url: https://a.example/\n    interval_s: 5\n", "feeds[0].interval_s"),
        ("feeds:\n  - name: x\n", "feeds[0].url"),
        ("feeds:\n  - url: ftp://a.example/\n", "feeds[0].url"),
        ("feeds:\n  - url: https://a.example/\n    colour: red\n", "feeds[0].colour"),
        ("feeds:\n  - url: https://a.example/\n  - url: HTTPS://A.example\n", "feeds[1].url"),
        ("feeds: [unclosed\n", "invalid YAML"),
        ("feeds: 3\n", "feeds"),
        ("other: []\n", "feeds"),
        ("feeds:\n  - just-a-string\n", "feeds[0]"),
    ],
)
def test_load_feeds_errors_name_file_and_field(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_feeds(path)
    assert info.value.source == str(path)
    assert field in info.value.problem


def test_load_feeds_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        load_feeds(tmp_path / "absent.yaml")


def test_next_poll_delay() -> None:
    rng = random.Random(1)
    assert next_poll_delay(0, 300) == 300
    for failures in range(1, 12):
        delay = next_poll_delay(failures, 300, rng=rng)
        base = min(3600, 300 * 2**failures)
        assert max(300, base / 2) <= delay <= base
    assert next_poll_delay(50, 300, rng=rng) <= 3600
    assert next_poll_delay(3, 7200, max_s=3600, rng=rng) == 7200  # never below the interval
    delays = {next_poll_delay(4, 60) for _ in range(20)}
    assert len(delays) > 1  # jittered
