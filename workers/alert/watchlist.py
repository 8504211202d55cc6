"""The watchlist: actors to watch, with their aliases in any language, validated on load."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from workers.errors import InputError

MAX_ALIASES = 1000


class Actor(BaseModel):
    """A watched person, organisation or place."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    name: str = Field(min_length=1, max_length=200)
    type: Literal["PER", "ORG", "LOC"]
    aliases: list[str] = Field(default_factory=list, max_length=MAX_ALIASES)

    @field_validator("aliases")
    @classmethod
    def _aliases_are_names(cls, aliases: list[str]) -> list[str]:
        cleaned = [alias.strip() for alias in aliases]
        for alias in cleaned:
            if not alias:
                raise ValueError("an alias is empty")
            if len(alias) > 200:
                raise ValueError(f"alias {alias[:40]!r}... is longer than 200 characters")
        return cleaned

    @property
    def all_names(self) -> list[str]:
        """The name and every alias, without repeats."""
        return list(dict.fromkeys([self.name, *self.aliases]))


class Watchlist(BaseModel):
    """Every watched actor, by id."""

    model_config = ConfigDict(extra="forbid")

    actors: list[Actor] = Field(default_factory=list)

    @model_validator(mode="after")
    def _ids_unique(self) -> Watchlist:
        seen: set[str] = set()
        for actor in self.actors:
            if actor.id in seen:
                raise ValueError(f"actor id {actor.id!r} appears twice")
            seen.add(actor.id)
        return self

    def __contains__(self, actor_id: object) -> bool:
        return any(actor.id == actor_id for actor in self.actors)

    def get(self, actor_id: str) -> Actor | None:
        """The actor with this id, if watched."""
        return next((actor for actor in self.actors if actor.id == actor_id), None)


def parse_watchlist(text: str | bytes, source: str) -> Watchlist:
    """A Watchlist from YAML text; InputError naming the source, the field and the problem."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            raise InputError(source, f"not UTF-8 (byte {err.start})") from err
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise InputError(source, f"invalid YAML: {str(err).splitlines()[0]}") from err
    if data is None:
        data = {"actors": []}
    if not isinstance(data, dict):
        raise InputError(source, "expected a mapping with an 'actors' list")
    try:
        return Watchlist.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "watchlist"
        raise InputError(source, f"{loc}: {first['msg']}") from err


def load_watchlist(path: Path) -> Watchlist:
    """Read and validate a watchlist file."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise InputError(str(path), err.strerror or str(err)) from err
    return parse_watchlist(data, str(path))
