"""URL canonicalisation and the SSRF guard (no network: literal addresses, localhost, a fake resolver)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workers.errors import InputError
from workers.ingest.urls import TRACKING_PARAMS, OutboundPolicy, canonical_url, check_outbound_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTP://Example.COM/a/b/", "http://example.com/a/b"),
        ("http://example.com:80/x", "http://example.com/x"),
        ("https://example.com:443/x", "https://example.com/x"),
        ("https://example.com:8443/x", "https://example.com:8443/x"),
        ("http://example.com/x#section-2", "http://example.com/x"),
        ("http://example.com", "http://example.com/"),
        ("http://example.com/", "http://example.com/"),
        ("http://example.com//", "http://example.com/"),
        ("http://example.com/a?b=2&a=1", "http://example.com/a?a=1&b=2"),
        (
            "https://news.example/story?utm_source=rss&utm_medium=feed&id=7&fbclid=abc&gclid=x&ref=tw",
            "https://news.example/story?id=7",
        ),
        (
            "https://news.example/s?mc_cid=1&mc_eid=2&UTM_Campaign=z&page=2",
            "https://news.example/s?page=2",
        ),
        ("https://bücher.example/ä", "https://xn--bcher-kva.example/ä"),
        ("https://EXAMPLE.com./x", "https://example.com/x"),
        ("http://[2001:DB8::1]:80/x/", "http://[2001:db8::1]/x"),
        ("http://user@Example.com/x", "http://user@example.com/x"),
        ("http://example.com/a%2fb", "http://example.com/a%2Fb"),
        ("  http://example.com/x  ", "http://example.com/x"),
        ("http://example.com/?", "http://example.com/"),
        ("http://example.com/x?a=&&b=1", "http://example.com/x?a=&b=1"),
    ],
)
def test_canonical_url_cases(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


def test_tracking_params_constant_covers_the_usual_suspects() -> None:
    assert {"fbclid", "gclid", "mc_cid", "mc_eid", "ref"} <= TRACKING_PARAMS


def test_canonical_url_leaves_non_urls_alone() -> None:
    assert canonical_url("not a url") == "not a url"
    assert canonical_url("") == ""
    assert canonical_url("http://[::1") == "http://[::1"


URL_ALPHABET = st.characters(blacklist_categories=("Cs",))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=URL_ALPHABET, max_size=80))
def test_canonical_url_never_raises_and_is_idempotent_on_text(text: str) -> None:
    once = canonical_url(text)
    assert isinstance(once, str)
    assert canonical_url(once) == once


@settings(max_examples=300, deadline=None)
@given(
    scheme=st.sampled_from(["http", "https", "HTTP", "Https"]),
    host=st.from_regex(
        r"[A-Za-z0-9][A-Za-z0-9-]{0,10}(\.[A-Za-zäöü0-9]{1,8}){0,3}", fullmatch=True
    ),
    port=st.sampled_from(["", ":80", ":443", ":8080"]),
    path=st.lists(st.text(alphabet="abc/%2F-_.~", max_size=6), max_size=4).map("/".join),
    params=st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "utm_source", "fbclid", "ref", "Q", "z"]),
            st.text("xyz%20+", max_size=4),
        ),
        max_size=5,
    ),
    fragment=st.text(alphabet="abc#?", max_size=5),
)
def test_canonical_url_idempotent_on_url_shaped_input(
    scheme: str, host: str, port: str, path: str, params: list[tuple[str, str]], fragment: str
) -> None:
    query = "&".join(f"{k}={v}" for k, v in params)
    url = (
        f"{scheme}://{host}{port}/{path}"
        + (f"?{query}" if query else "")
        + (f"#{fragment}" if fragment else "")
    )
    once = canonical_url(url)
    assert canonical_url(once) == once
    assert "#" not in once
    assert "utm_source=" not in once and "fbclid=" not in once
    assert once.startswith(scheme.lower() + "://")


# ------------------------------------------------------------------------------ SSRF guard


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/feed",
        "http://127.8.9.1:8080/",
        "http://10.1.2.3/",
        "http://172.16.0.5/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[fd00:ec2::254]/",
        "http://[fe80::1]/",
        "http://0.0.0.0/",
        "http://224.0.0.1/",
        "http://100.64.0.1/",
        "http://2130706433/",
        "http://127。0。0。1/",
        "http://[2002:7f00:1::]/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://localhost/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "file:///etc/passwd",
        "ftp://example.com/feed",
        "gopher://127.0.0.1:6379/_INFO",
        "javascript:alert(1)",
        "http:///nohost",
    ],
)
def test_refused_targets(url: str) -> None:
    with pytest.raises(InputError) as info:
        check_outbound_url(url, "")
    assert info.value.source == url
    assert info.value.problem


def test_refusal_names_the_reason() -> None:
    with pytest.raises(InputError, match="metadata"):
        check_outbound_url("http://169.254.169.254/", "")
    with pytest.raises(InputError, match="loopback"):
        check_outbound_url("http://127.0.0.1/", "")
    with pytest.raises(InputError, match="scheme"):
        check_outbound_url("file:///etc/passwd", "")


def test_allow_listed_loopback_and_ranges_are_allowed() -> None:
    check_outbound_url("http://127.0.0.1:8123/feed.xml", "127.0.0.1")
    check_outbound_url("http://127.0.0.1:8123/feed.xml", "127.0.0.0/8")
    check_outbound_url("http://10.20.30.40/", "127.0.0.1,10.0.0.0/8,feeds.example")
    check_outbound_url("http://[::1]:9000/", "::1")
    check_outbound_url("http://localhost:9000/", "localhost")
    with pytest.raises(InputError):
        check_outbound_url("http://10.20.30.40/", "127.0.0.1")
    with pytest.raises(InputError):
        check_outbound_url("http://169.254.169.254/", "127.0.0.1,10.0.0.0/8")


def fake_resolver(table: dict[str, list[str]]):
    def resolve(host: str, port: int) -> list[str]:
        return table[host]

    return resolve


def test_host_names_are_checked_by_every_resolved_address() -> None:
    table = {
        "public.example": ["93.184.216.34"],
        "internal.example": ["10.0.0.7"],
        "mixed.example": ["93.184.216.34", "127.0.0.1"],
        "feeds.example": ["10.9.9.9"],
        "a.corp.example": ["192.168.4.4"],
    }
    policy = OutboundPolicy.from_setting(
        "feeds.example,*.corp.example", resolver=fake_resolver(table)
    )
    policy.check("https://public.example/rss")
    policy.check("https://feeds.example/rss")  # allow-listed by name
    policy.check("https://a.corp.example/rss")  # allow-listed by wildcard
    with pytest.raises(InputError, match=r"10\.0\.0\.7"):
        policy.check("https://internal.example/rss")
    with pytest.raises(InputError, match=r"127\.0\.0\.1"):
        policy.check("https://mixed.example/rss")


def test_public_literal_address_is_allowed_and_bad_allowlist_refused() -> None:
    check_outbound_url("http://93.184.216.34/", "")
    with pytest.raises(InputError):
        OutboundPolicy.from_setting("not a host!")
