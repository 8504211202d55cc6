"""The watchlist a process uses: the YAML file, overlaid by actors put or deleted through the API.

Re-read without a restart: the file when its mtime changes, the overrides when their version
counter in Redis moves. A bad edit of the file keeps the last good watchlist.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from workers.alert.watchlist import Actor, Watchlist, load_watchlist
from workers.errors import InputError
from workers.resources import config_file
from workers.settings import Settings

if TYPE_CHECKING:
    from workers.store import Store

log = logging.getLogger(__name__)
CHECK_EVERY_S = 1.0


def merged(base: Watchlist, overrides: dict[str, Actor | None]) -> Watchlist:
    """The file's actors with API overrides applied (None = deleted)."""
    actors = {actor.id: actor for actor in base.actors}
    for actor_id, actor in overrides.items():
        if actor is None:
            actors.pop(actor_id, None)
        else:
            actors[actor_id] = actor
    return Watchlist(actors=list(actors.values()))


class WatchlistSource:
    """Holds the current Watchlist; checks for changes at most every CHECK_EVERY_S seconds."""

    def __init__(
        self, path: Path, store: Store | None = None, check_every_s: float = CHECK_EVERY_S
    ) -> None:
        self.path = path
        self.check_every_s = check_every_s
        self.store = store
        self._file = load_watchlist(path)
        self._mtime = self._stat()
        self._version = -1
        self._watchlist = self._file
        self._checked = 0.0
        self.current()

    @classmethod
    def from_settings(
        cls, settings: Settings, store: Store | None = None, check_every_s: float = CHECK_EVERY_S
    ) -> WatchlistSource:
        """The watchlist file named by settings, ./config/watchlist.yaml, or the shipped one."""
        return cls(config_file("watchlist.yaml", settings.watchlist), store, check_every_s)

    def _stat(self) -> float:
        try:
            return self.path.stat().st_mtime
        except OSError:
            return 0.0

    def current(self) -> Watchlist:
        """The watchlist, rebuilt if the file or the API overrides changed."""
        now = time.monotonic()
        if now - self._checked < self.check_every_s and self._checked:
            return self._watchlist
        self._checked = now
        changed = False
        mtime = self._stat()
        if mtime != self._mtime:
            self._mtime = mtime
            try:
                self._file = load_watchlist(self.path)
                changed = True
                log.info("watchlist file reloaded from %s", self.path)
            except InputError as err:
                log.error("watchlist file not reloaded, keeping the previous one: %s", err)
        if self.store is not None:
            version = self.store.version("watchlist")
            if version != self._version:
                self._version = version
                changed = True
        if changed or self._watchlist is None:
            overrides = self.store.watchlist_overrides() if self.store is not None else {}
            self._watchlist = merged(self._file, overrides)
        return self._watchlist
