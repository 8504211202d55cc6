"""Reading inputs: formats, and a clear one-line problem for every bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workers.errors import InputError
from workers.ingest.sources import parse_bytes, read_file


def test_parse_text_dateline_names_outlet() -> None:
    result = parse_bytes("Bisnis.com, JAKARTA — Korea Utara mengirim menteri.".encode(), "seed.txt")
    assert result.records[0].source == "Bisnis.com"
    assert result.records[0].text.startswith("Bisnis.com, JAKARTA")


def test_parse_json_object_and_array() -> None:
    one = parse_bytes(b'{"text": "Putin tiba di Jakarta.", "url": "https://x.id/a"}', "a.json")
    many = parse_bytes(json.dumps([{"text": "a"}, {"text": "b"}]).encode(), "b.json")
    assert one.records[0].url == "https://x.id/a"
    assert [r.text for r in many.records] == ["a", "b"]


def test_parse_jsonl_reports_bad_lines_and_keeps_good_ones() -> None:
    data = b'{"text": "first"}\nnot json\n{"title": "no text"}\n\n{"text": "last"}\n'
    result = parse_bytes(data, "feed.jsonl", kind="jsonl")
    assert [r.text for r in result.records] == ["first", "last"]
    assert len(result.problems) == 2
    assert result.problems[0].startswith("feed.jsonl:2: invalid JSON")
    assert "feed.jsonl:3" in result.problems[1] and "text" in result.problems[1]


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "empty input"),
        (b"   \n\t ", "empty input"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        (b'{"text": "unterminated', "invalid JSON"),
        (b"[" * 5000 + b"]" * 5000, "nested deeper"),
    ],
)
def test_parse_bad_input_names_the_problem(data: bytes, problem: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_bytes(data, "input.bin")
    assert caught.value.source == "input.bin"
    assert problem in caught.value.problem
    assert "\n" not in str(caught.value)


def test_parse_latin1_decodes_with_a_warning() -> None:
    result = parse_bytes("Pertemuan di Café Jakarta".encode("latin-1"), "old.txt")
    assert result.records[0].text == "Pertemuan di Café Jakarta"
    assert result.warnings and "not UTF-8" in result.warnings[0]


def test_parse_bom_is_dropped() -> None:
    result = parse_bytes("\ufeffKorea Utara".encode(), "bom.txt")
    assert result.records[0].text == "Korea Utara"
    assert not result.warnings


def test_read_file_refuses_oversized_file(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_bytes(b"a " * 600_000)
    with pytest.raises(InputError, match="above the 1 MB limit"):
        read_file(big, max_bytes=1_000_000)
