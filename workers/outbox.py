"""The ingest outbox: a bounded local spool for articles accepted while Redis is unreachable.

`pantau ingest` and the push API publish through it: when the broker does not answer, the batch
is written here (one JSONL file per batch, written atomically) and sent, oldest first, once the
broker is back. Nothing accepted is dropped; above `max_bytes` the spool refuses new batches and
the caller says so (the API with 503).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path

from pydantic import ValidationError

from workers.domain import Article

log = logging.getLogger(__name__)


def _alive(pid: int) -> bool:
    """Whether a process with this id exists (on this host)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        pass
    return True


class Outbox:
    """Spooled batches in a directory; safe for several processes to spool and drain at once."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes

    def _batches(self) -> list[Path]:
        if not self.directory.exists():
            return []
        return sorted(self.directory.glob("*.jsonl"))

    def size_bytes(self) -> int:
        """Bytes waiting in the spool."""
        return sum(p.stat().st_size for p in self._batches() if p.exists())

    def pending(self) -> int:
        """Articles waiting in the spool."""
        total = 0
        for path in self._batches():
            try:
                total += sum(1 for line in path.open(encoding="utf-8") if line.strip())
            except OSError:
                continue
        return total

    def spool(self, articles: Sequence[Article]) -> bool:
        """Keep a batch for later; False (nothing written) when the spool is full."""
        payload = "".join(a.model_dump_json() + "\n" for a in articles).encode()
        if self.size_bytes() + len(payload) > self.max_bytes:
            return False
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{os.getpid()}"
        temporary = self.directory / f".{name}.tmp"
        temporary.write_bytes(payload)
        os.replace(temporary, self.directory / f"{name}.jsonl")
        return True

    def reclaim(self) -> int:
        """Put back batches claimed by a drainer that died mid-send (its process is gone).

        A claim is `NAME.sending-PID`; while PID runs, the batch is its drainer's. Returns how
        many batches went back to the spool.
        """
        if not self.directory.exists():
            return 0
        back = 0
        for claimed in self.directory.glob("*.sending-*"):
            pid = claimed.suffix.removeprefix(".sending-")
            if pid.isdigit() and not _alive(int(pid)):
                with suppress(FileNotFoundError):  # another drainer reclaimed it first
                    os.replace(claimed, claimed.with_suffix(".jsonl"))
                    back += 1
                    log.warning("outbox: %s put back (its drainer %s is gone)", claimed.name, pid)
        return back

    def drain(self, send: Callable[[list[Article]], None]) -> int:
        """Send spooled batches oldest first; stop at the first failure. Returns articles sent.

        An unreadable batch (a damaged file) is renamed `*.bad`, logged, and skipped.
        """
        self.reclaim()
        sent = 0
        for path in self._batches():
            claimed = path.with_suffix(f".sending-{os.getpid()}")
            try:
                os.replace(path, claimed)  # another drainer got it first: skip
            except FileNotFoundError:
                continue
            try:
                lines = claimed.read_text(encoding="utf-8").splitlines()
                articles = [Article.model_validate_json(line) for line in lines if line.strip()]
            except (OSError, UnicodeDecodeError, ValidationError) as error:
                bad = claimed.with_suffix(".bad")
                os.replace(claimed, bad)
                log.error("outbox: %s is unreadable and was set aside as %s: %s", path, bad, error)
                continue
            try:
                send(articles)
            except Exception as error:
                os.replace(claimed, path)
                log.warning("outbox: broker still unreachable (%s); %s kept", error, path.name)
                break
            claimed.unlink()
            sent += len(articles)
        return sent
