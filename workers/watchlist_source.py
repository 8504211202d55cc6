"""The watchlist a worker uses, re-read when its file changes (no restart needed)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from workers.alert.watchlist import Watchlist, load_watchlist
from workers.errors import InputError
from workers.resources import config_file
from workers.settings import Settings

log = logging.getLogger(__name__)
CHECK_EVERY_S = 2.0


class WatchlistSource:
    """Holds the current Watchlist; checks the file's mtime at most every CHECK_EVERY_S seconds."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._watchlist = load_watchlist(path)
        self._mtime = self._stat()
        self._checked = time.monotonic()

    @classmethod
    def from_settings(cls, settings: Settings) -> WatchlistSource:
        """The watchlist file named by settings, ./config/watchlist.yaml, or the shipped one."""
        return cls(config_file("watchlist.yaml", settings.watchlist))

    def _stat(self) -> float:
        try:
            return self.path.stat().st_mtime
        except OSError:
            return 0.0

    def current(self) -> Watchlist:
        """The watchlist, reloaded if the file changed; a bad edit keeps the last good one."""
        now = time.monotonic()
        if now - self._checked >= CHECK_EVERY_S:
            self._checked = now
            mtime = self._stat()
            if mtime != self._mtime:
                self._mtime = mtime
                try:
                    self._watchlist = load_watchlist(self.path)
                    log.info("watchlist reloaded from %s", self.path)
                except InputError as err:
                    log.error("watchlist not reloaded, keeping the previous one: %s", err)
        return self._watchlist
