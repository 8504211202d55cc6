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


@pytest.fixture(autouse=True)
def _publish_to_the_pipeline_under_test(request: pytest.FixtureRequest) -> None:
    """Point this process's Celery app at the session pipeline before each test that uses it.

    Other tests configure the app for their own Redis (an API they build, an outbox test that
    stops its server); a test of the shared pipeline must publish to the pipeline's broker.
    """
    if "pipeline" not in request.fixturenames:
        return
    from workers import app as celery_app

    pipeline = request.getfixturevalue("pipeline")
    celery_app.configure(pipeline.settings, pipeline.deployment.redis_url)
