"""Watchlist validation: clear errors naming the file and the field."""

from __future__ import annotations

import pytest

from workers.alert.watchlist import parse_watchlist
from workers.errors import InputError


def test_watchlist_parses_and_includes_name_as_alias() -> None:
    watchlist = parse_watchlist(
        "actors: [{id: a, name: Ann Lee, type: PER, aliases: [Lee]}]", "w.yaml"
    )
    assert watchlist.get("a").all_names == ["Ann Lee", "Lee"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("actors: [{id: a, name: A, type: PER", "invalid YAML"),
        ("- just a list", "expected a mapping"),
        ("actors: [{id: a, name: A, type: PER, colour: red}]", "colour"),
        ("actors: [{id: a, name: A, type: PER, aliases: ['  ']}]", "alias is empty"),
        ("actors: [{id: a, name: A, type: CAT}]", "type"),
        ("actors: [{id: 'Bad Id!', name: A, type: PER}]", "id"),
        ("actors: [{id: a, name: A, type: PER}, {id: a, name: B, type: PER}]", "appears twice"),
    ],
)
def test_watchlist_bad_input_names_the_problem(text: str, problem: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_watchlist(text, "w.yaml")
    assert caught.value.source == "w.yaml" and problem in caught.value.problem


def test_watchlist_refuses_non_utf8_and_too_many_aliases() -> None:
    with pytest.raises(InputError, match="not UTF-8"):
        parse_watchlist(b"actors: [{id: a, name: \xff}]", "w.yaml")
    many = "actors: [{id: a, name: A, type: PER, aliases: [" + ",".join(["x"] * 1001) + "]}]"
    with pytest.raises(InputError, match="aliases"):
        parse_watchlist(many, "w.yaml")


def test_watchlist_regex_metacharacters_are_plain_text() -> None:
    watchlist = parse_watchlist("actors: [{id: a, name: 'A.*(B', type: ORG}]", "w.yaml")
    assert watchlist.get("a").all_names == ["A.*(B"]
