"""Shared fixtures: paths to the seed and test data."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "seeds" / "000_f95ec22700e1a343.txt"
TEST_WATCHLIST = ROOT / "tests" / "data" / "watchlist.yaml"
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def seed_text() -> str:
    """The seed article's text, as on disk."""
    return SEED.read_text(encoding="utf-8")
