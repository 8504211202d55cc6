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
from pathlib import Path

from workers.domain import Article

log = logging.getLogger(__name__)


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

    def drain(self, send: Callable[[list[Article]], None]) -> int:
        """Send spooled batches oldest first; stop at the first failure. Returns articles sent."""
        sent = 0
        for path in self._batches():
            claimed = path.with_suffix(f".sending-{os.getpid()}")
            try:
                os.replace(path, claimed)  # another drainer got it first: skip
            except FileNotFoundError:
                continue
            lines = claimed.read_text(encoding="utf-8").splitlines()
            articles = [Article.model_validate_json(line) for line in lines if line.strip()]
            try:
                send(articles)
            except Exception as error:
                os.replace(claimed, path)
                log.warning("outbox: broker still unreachable (%s); %s kept", error, path.name)
                break
            claimed.unlink()
            sent += len(articles)
        return sent
