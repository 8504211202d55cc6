"""Person titles before and inside name spans; offsets index the text."""

from __future__ import annotations

from pathlib import Path

import pytest

from workers.extract.titles import split_title, title_before

SEED = Path(__file__).parents[3] / "seeds" / "000_f95ec22700e1a343.txt"


def _split(text: str, language: str) -> tuple[str, str | None]:
    start, end, title = split_title(text, 0, len(text), language)
    return text[start:end], title


@pytest.mark.parametrize(
    ("text", "language", "name", "title"),
    [
        ("Presiden Rusia Vladimir Putin", "id", "Vladimir Putin", "Presiden Rusia"),
        ("Menteri Luar Negeri Choe Son Hui", "id", "Choe Son Hui", "Menteri Luar Negeri"),
        (
            "Menteri Luar Negeri Korea Utara Choe Son Hui",
            "id",
            "Choe Son Hui",
            "Menteri Luar Negeri Korea Utara",
        ),
        ("pemimpin Korea Utara Kim Jong Un", "id", "Kim Jong Un", "pemimpin Korea Utara"),
        ("Prof. Dr. Budi Santoso", "id", "Budi Santoso", "Prof. Dr."),
        ("President Joe Biden", "en", "Joe Biden", "President"),
        ("Russian President Vladimir Putin", "en", "Vladimir Putin", "Russian President"),
        (
            "former U.S. Secretary of State Antony Blinken",
            "en",
            "Antony Blinken",
            "former U.S. Secretary of State",
        ),
    ],
)
def test_split_title_separates_leading_title(
    text: str, language: str, name: str, title: str
) -> None:
    assert _split(text, language) == (name, title)


@pytest.mark.parametrize(
    "text", ["Vladimir Putin", "Presiden Rusia", "Korea Utara Kim Jong Un", "Presiden\nRusia Putin"]
)
def test_split_title_leaves_spans_without_a_title(text: str) -> None:
    assert split_title(text, 0, len(text), "id") == (0, len(text), None)


def test_split_title_offsets_index_the_text() -> None:
    text = "Kata Presiden Rusia Vladimir Putin kemarin."
    start = text.index("Presiden")
    end = text.index(" kemarin")
    name_start, name_end, title = split_title(text, start, end, "id")
    assert (text[name_start:name_end], title) == ("Vladimir Putin", "Presiden Rusia")


@pytest.mark.parametrize(
    ("name", "title"),
    [
        ("Choe Son Hui meninggalkan", "Menteri Luar Negeri"),
        ("Kim Jong Un ke Moskow", "pemimpin Korea Utara"),
        ("Vladimir Putin dan", "Presiden Rusia"),
        ("Yoon Suk Yeol", "Presiden Korea Selatan"),
        ("Matthew Miller", "juru bicara Departemen Luar Negeri AS"),
        ("Putin dalam", "Presiden"),
    ],
)
def test_title_before_in_seed_article(name: str, title: str) -> None:
    text = SEED.read_text(encoding="utf-8")
    start = text.index(name)
    found = title_before(text, start, "id")
    assert found is not None
    title_start, title_text = found
    assert title_text == title
    assert text[title_start : title_start + len(title_text)] == title_text


@pytest.mark.parametrize(
    ("text", "name", "title"),
    [
        ("said President Joe Biden.", "Joe", "President"),
        ("North Korean leader Kim Jong Un said", "Kim", "North Korean leader"),
        (
            "State Department spokesperson Matthew Miller said",
            "Matthew",
            "State Department spokesperson",
        ),
        ("UN Secretary-General Antonio Guterres", "Antonio", "UN Secretary-General"),
    ],
)
def test_title_before_in_english(text: str, name: str, title: str) -> None:
    found = title_before(text, text.index(name), "en")
    assert found is not None
    assert found[1] == title
    assert text[found[0] :].startswith(title)


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Presiden Rusia Vladimir Putin", "Putin"),  # "Vladimir" is part of the name
        ("Presiden Rusia\nVladimir Putin", "Vladimir"),  # a line break ends a title
        ("Hal itu dikatakan Vladimir Putin", "Vladimir"),
        ("Vladimir Putin", "Vladimir"),
        ("kata Presiden. Putin", "Putin"),
        ("Bapak-bapak, Putin", "Putin"),
    ],
)
def test_title_before_none_without_adjacent_title(text: str, name: str) -> None:
    assert title_before(text, text.index(name), "id") is None


def test_titles_are_case_sensitive() -> None:
    text = "bapak Budi dan Bapak Budi"
    assert title_before(text, text.index("Budi"), "id") is None
    assert title_before(text, text.rindex("Budi"), "id") == (text.index("Bapak"), "Bapak")
