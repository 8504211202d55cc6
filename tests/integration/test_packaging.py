"""`pip install .` (not editable): the wheel carries config, seeds and models; pantau runs anywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT, SEED


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        timeout=600,
    )
    return next(out.glob("pantau-*.whl"))


def test_wheel_ships_config_seeds_and_models(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in (
        "workers/config/watchlist.yaml",
        "workers/config/feeds.yaml",
        "workers/config/events/id.yaml",
        "workers/config/events/en.yaml",
        f"workers/seeds/{SEED.name}",
        "workers/extract/models/id/meta.json",
        "workers/extract/models/en/meta.json",
    ):
        assert expected in names, expected
    sizes = {}
    for info in zipfile.ZipFile(wheel).infolist():
        if info.filename.startswith("workers/extract/models/"):
            lang = info.filename.split("/")[3]
            sizes[lang] = sizes.get(lang, 0) + info.file_size
    assert all(size <= 30 * 1024 * 1024 for size in sizes.values()), sizes


def test_installed_wheel_extracts_from_any_directory(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        timeout=600,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PANTAU_")},
        "PYTHONPATH": str(target),
    }
    result = subprocess.run(
        [sys.executable, "-m", "workers.cli", "extract", str(SEED)],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert {a["actor_id"] for a in record["alerts"]} >= {
        "kim-jong-un",
        "vladimir-putin",
        "choe-son-hui",
    }
    assert any(e["source"] == "model" for e in record["entities"])  # the shipped NER model ran
    code = (
        "import workers.resources as r; print(r.config_file('watchlist.yaml')); "
        "print(r.models_dir())"
    )
    paths = subprocess.run(
        [sys.executable, "-c", code],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert all(p.startswith(str(target)) for p in paths), paths
