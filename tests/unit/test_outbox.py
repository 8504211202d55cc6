"""The outbox: spooled batches go out oldest first, survive a drainer's death, never block."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from workers.domain import Article, RawArticle
from workers.ingest.normalise import normalise
from workers.outbox import Outbox


def _articles(*texts: str) -> list[Article]:
    return [normalise(RawArticle(text=t), max_chars=10_000) for t in texts]


def _dead_pid() -> int:
    """The id of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_drain_sends_oldest_first_and_stops_at_the_first_failure(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path, max_bytes=1_000_000)
    assert outbox.spool(_articles("Satu."))
    assert outbox.spool(_articles("Dua.", "Tiga."))
    sent: list[list[str]] = []

    def broken(batch: list[Article]) -> None:
        raise ConnectionError("broker down")

    assert outbox.drain(broken) == 0
    assert outbox.pending() == 3  # nothing lost, claims put back
    assert outbox.drain(lambda batch: sent.append([a.text for a in batch])) == 3
    assert sent == [["Satu."], ["Dua.", "Tiga."]]
    assert outbox.pending() == 0 and not list(tmp_path.iterdir())


def test_spool_refuses_above_the_limit(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path, max_bytes=200)
    assert not outbox.spool(_articles("x" * 500))
    assert outbox.pending() == 0


def test_a_claim_left_by_a_dead_drainer_is_sent_again(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path, max_bytes=1_000_000)
    assert outbox.spool(_articles("Ditinggal."))
    (batch,) = tmp_path.glob("*.jsonl")
    orphan = batch.with_suffix(f".sending-{_dead_pid()}")
    batch.rename(orphan)  # a drainer claimed it, then died before sending
    assert outbox.pending() == 0
    sent: list[str] = []
    assert outbox.drain(lambda b: sent.extend(a.text for a in b)) == 1
    assert sent == ["Ditinggal."]


def test_a_claim_of_a_live_drainer_is_left_alone(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path, max_bytes=1_000_000)
    assert outbox.spool(_articles("Sedang dikirim."))
    (batch,) = tmp_path.glob("*.jsonl")
    batch.rename(batch.with_suffix(".sending-1"))  # pid 1 always runs
    assert outbox.reclaim() == 0
    assert outbox.drain(lambda b: None) == 0


def test_a_damaged_batch_is_set_aside_and_the_rest_still_go(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path, max_bytes=1_000_000)
    (tmp_path / "00000000000000000001-1.jsonl").write_bytes(b'{"not": "an article"\n\xff\n')
    assert outbox.spool(_articles("Utuh."))
    sent: list[str] = []
    assert outbox.drain(lambda b: sent.extend(a.text for a in b)) == 1
    assert sent == ["Utuh."]
    assert [p.name for p in tmp_path.iterdir()] == ["00000000000000000001-1.bad"]
