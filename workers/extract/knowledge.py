"""The gazetteer's world knowledge: countries, capitals, cities, news organisations, institutions.

Canonical ids:

- a country is its ISO 3166-1 alpha-2 code (``"KP"``);
- a capital is linked to its country's code too, label LOC: news uses capitals as metonyms for
  their governments ("Pyongyang menuduh Seoul ...", "Moscow denied ..."), so for actor linking a
  capital *is* the country. The same holds for the seat of a government used as a metonym
  (Kremlin, Gedung Putih / White House), which keeps the label ORG;
- a city that is not a capital gets its own id ``city:<cc>:<slug>`` (``"city:ru:kursk"``), label
  LOC: "pasukan Ukraina di Kursk" places troops in Russia, it does not make Russia an actor, so a
  city must not link to its country's actor; the country is still in the id (``country_of``);
- an international organisation is ``org:<slug>`` (``"org:nato"``); one country's institution is
  ``org:<cc>:<slug>`` (``"org:us:pentagon"``, ``"org:id:kpk"``), label ORG;
- a news organisation is ``media:<slug>`` (``"media:reuters"``), label ORG.

The same place or body has the same id in every language. The names themselves are plain
constants in ``lang/<code>/``.
"""

from __future__ import annotations

import gettext
import importlib
import re
import unicodedata
from functools import cache
from types import ModuleType

import pycountry

from workers.extract.gazetteer import Entry, is_case_sensitive

LANGUAGES = ("id", "en")
_ISO_CODE = re.compile(r"[A-Z]{2}")


def language_data(language: str) -> ModuleType:
    """The `lang/<code>/` module for a language; English for any other (the "xx" pipeline)."""
    code = language if language in LANGUAGES else "en"
    return importlib.import_module(f"workers.extract.lang.{code}")


def slug(name: str) -> str:
    """A lower-case ASCII slug: "São Paulo" -> "sao-paulo"."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")


def country_of(canonical: str | None) -> str | None:
    """The ISO alpha-2 code a canonical id belongs to: "KP" -> "KP", "city:ru:kursk" -> "RU"."""
    if not canonical:
        return None
    if _ISO_CODE.fullmatch(canonical):
        return canonical
    parts = canonical.split(":")
    if len(parts) == 3 and len(parts[1]) == 2:
        return parts[1].upper()
    return None


@cache
def cased_aliases(language: str) -> frozenset[str]:
    """Aliases that are also everyday lower-case words: valid only as written ("Turkey", "Medan")."""
    return frozenset(language_data(language).CASED_ONLY)


def _keep(alias: str, language: str, cased: bool) -> bool:
    return cased or alias not in cased_aliases(language)


def _pycountry_names(language: str) -> set[tuple[str, str]]:
    translation = None
    if language != "en":
        try:
            translation = gettext.translation(
                "iso3166-1", pycountry.LOCALES_DIR, languages=[language]
            )
        except OSError:
            translation = None
    names: set[tuple[str, str]] = set()
    for country in pycountry.countries:
        english = {country.name, getattr(country, "common_name", country.name)}
        local = {translation.gettext(name) for name in english} if translation else set()
        for name in english | local:
            if "," not in name and "(" not in name:
                names.add((name, country.alpha_2))
    return names


def country_entries(language: str, *, cased: bool = False) -> list[tuple[str, Entry]]:
    """Country names (label LOC, canonical ISO code): lang/<code>/ first, then pycountry.

    The other pipeline language's names are added too (newsrooms mix them: "North Korea" in an
    Indonesian text), except its short all-caps forms, which are ordinary words here ("AS").
    With `cased=False` aliases in CASED_ONLY are left out; pass `cased=True` only together
    with `AliasMatcher(..., case_sensitive=cased_aliases(language))`.
    """
    own = language_data(language)
    entries: list[tuple[str, Entry]] = []
    for alpha_2, names in own.COUNTRY_NAMES.items():
        entries.extend((name, Entry("LOC", canonical=alpha_2)) for name in names)
    for name, alpha_2 in sorted(_pycountry_names(language)):
        entries.append((name, Entry("LOC", canonical=alpha_2)))
    for code in LANGUAGES:
        other = language_data(code)
        if other is own:
            continue
        for alpha_2, names in other.COUNTRY_NAMES.items():
            entries.extend(
                (name, Entry("LOC", canonical=alpha_2))
                for name in names
                if not is_case_sensitive(name) and name not in other.CASED_ONLY
            )
    return [(alias, entry) for alias, entry in entries if _keep(alias, language, cased)]


def capital_entries(language: str, *, cased: bool = False) -> list[tuple[str, Entry]]:
    """Capitals (label LOC) linked to their country's code: a capital stands for its government."""
    return [
        (name, Entry("LOC", canonical=alpha_2))
        for alpha_2, names in language_data(language).CAPITALS.items()
        for name in names
        if _keep(name, language, cased)
    ]


def city_entries(language: str, *, cased: bool = False) -> list[tuple[str, Entry]]:
    """Other cities (label LOC) with their own id, `city:<cc>:<slug of the English name>`."""
    data = language_data(language)
    same_as: dict[str, str] = getattr(data, "CITY_SAME_AS", {})
    return [
        (name, Entry("LOC", canonical=f"city:{alpha_2.lower()}:{slug(same_as.get(name, name))}"))
        for name, alpha_2 in data.CITIES.items()
        if _keep(name, language, cased)
    ]


def _named_entries(
    table: dict[str, list[str]], language: str, cased: bool
) -> list[tuple[str, Entry]]:
    return [
        (name, Entry("ORG", canonical=canonical))
        for canonical, names in table.items()
        for name in names
        if _keep(name, language, cased)
    ]


def agency_entries(language: str, *, cased: bool = False) -> list[tuple[str, Entry]]:
    """News agencies and outlets (label ORG, canonical `media:<slug>`)."""
    return _named_entries(language_data(language).NEWS_AGENCIES, language, cased)


def organisation_entries(language: str, *, cased: bool = False) -> list[tuple[str, Entry]]:
    """Organisations and institutions (label ORG, canonical `org:...` or a country's code)."""
    return _named_entries(language_data(language).ORGANISATIONS, language, cased)


def demonym_entries(language: str, *, cased: bool = False) -> list[tuple[str, Entry]]:
    """Demonyms and "warga X" phrases (label NORP, canonical ISO code), kept out of LOC.

    Not part of `knowledge_entries`: a demonym names people of a country, not the country, so
    it is only fit for linking country-level actors ("Russian troops", "warga Rusia").
    """
    return [
        (name, Entry("NORP", canonical=alpha_2))
        for name, alpha_2 in language_data(language).DEMONYMS.items()
        if _keep(name, language, cased)
    ]


def knowledge_entries(language: str, *, cased: bool = False) -> list[tuple[str, Entry]]:
    """Every gazetteer entry for a language, for `AliasMatcher`.

    Order matters where two entries share an alias (the first wins): organisations, news
    organisations, countries, capitals, cities. With the default `cased=False` the result is
    safe for a plain `AliasMatcher`: aliases that are everyday lower-case words ("Turkey",
    "Tempo", "Medan") are left out. With `cased=True` they are included, and
    the matcher must get `case_sensitive=cased_aliases(language)`.
    """
    return [
        *organisation_entries(language, cased=cased),
        *agency_entries(language, cased=cased),
        *country_entries(language, cased=cased),
        *capital_entries(language, cased=cased),
        *city_entries(language, cased=cased),
    ]
