"""extract_page on handwritten HTML: main text without boilerplate, title, author, date, canonical URL."""

from __future__ import annotations

from workers.ingest.fulltext import extract_page

PAGE = b"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Floods close port of Semarang | Example News</title>
<link rel="canonical" href="/world/2024/10/29/floods-semarang?utm_source=rss">
<meta property="og:title" content="Floods close port of Semarang">
<meta name="author" content="Jane Reporter">
<meta property="article:published_time" content="2024-10-29T08:15:00+07:00">
<meta property="og:site_name" content="Example News">
<script>window.analytics = {track: function () {}};</script>
</head><body>
<header><nav><ul><li><a href="/">Home</a></li><li><a href="/world">World</a></li>
<li><a href="/sport">Sport</a></li><li><a href="/login">Sign in</a></li></ul></nav></header>
<div class="cookie-banner">We use cookies to improve your experience. Accept all cookies.</div>
<main><article>
<h1>Floods close port of Semarang</h1>
<p class="byline">By Jane Reporter</p>
<p>Heavy rain flooded the port of Tanjung Emas in Semarang on Tuesday, forcing the harbour master
to halt all loading operations for at least two days, officials said.</p>
<p>The Central Java disaster agency said more than 3,000 households in the northern districts of the
city had been affected and that water levels were still rising in the afternoon.</p>
<p>"We are moving families to the mosques and schools on higher ground," a spokesman for the agency
told reporters at the scene, adding that no deaths had been reported so far.</p>
</article></main>
<aside><h3>Most read</h3><ul><li><a href="/a">Celebrity wedding pictures</a></li>
<li><a href="/b">Ten best beaches</a></li></ul></aside>
<footer><p>&copy; 2024 Example News. All rights reserved. Privacy policy. Terms of use.</p></footer>
</body></html>"""


def test_main_text_title_and_canonical_url() -> None:
    article = extract_page(
        PAGE, "https://news.example.com/world/floods-semarang?utm_source=rss#top"
    )
    assert article is not None
    assert article.title == "Floods close port of Semarang"
    assert article.url == "https://news.example.com/world/2024/10/29/floods-semarang"
    lines = article.text.split("\n")
    assert len(lines) == 3
    assert lines[0].startswith("Heavy rain flooded the port of Tanjung Emas")
    assert lines[2].endswith("no deaths had been reported so far.")
    for boilerplate in (
        "Sign in",
        "cookies",
        "Celebrity wedding",
        "All rights reserved",
        "Most read",
        "analytics",
    ):
        assert boilerplate not in article.text
    assert article.author == "Jane Reporter"
    assert article.published_at == "2024-10-29T01:15:00Z"
    assert article.language == "en"
    assert article.source == "Example News"


def test_page_url_is_used_without_a_canonical_link() -> None:
    page = PAGE.replace(
        b'<link rel="canonical" href="/world/2024/10/29/floods-semarang?utm_source=rss">', b""
    )
    article = extract_page(page, "https://News.Example.com/world/floods-semarang/?utm_medium=x")
    assert article is not None
    assert article.url == "https://news.example.com/world/floods-semarang"


def test_no_article_gives_none() -> None:
    assert extract_page(b"", "https://x.example/") is None
    assert (
        extract_page(
            b"<html><body><nav><a href='/'>Home</a></nav></body></html>", "https://x.example/"
        )
        is None
    )
    assert extract_page(b"\x00\xff\xfe not html at all", "https://x.example/") is None


def test_a_day_only_date_stays_a_date() -> None:
    page = PAGE.replace(b'content="2024-10-29T08:15:00+07:00"', b'content="2024-10-29"').replace(
        b'property="article:published_time"', b'name="date"'
    )
    article = extract_page(page, "https://news.example.com/world/floods-semarang")
    assert article is not None
    assert article.published_at == "2024-10-29"
