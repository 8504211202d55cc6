"""Where Pantau finds its data files: an explicit path, ./config, or the copy shipped in the package."""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
# In a wheel, config/ is shipped as workers/config/; in a source checkout it sits beside workers/.
_SHIPPED_CONFIG = (PACKAGE_DIR / "config", PACKAGE_DIR.parent / "config")


def config_file(name: str, override: Path | None = None) -> Path:
    """The file `name` under config/: the override if given, else ./config/, else the shipped copy."""
    if override is not None:
        return Path(override)
    candidates = (Path.cwd() / "config" / name, *(root / name for root in _SHIPPED_CONFIG))
    for candidate in candidates:
        if candidate.exists():
            return candidate
    return _SHIPPED_CONFIG[-1] / name


def models_dir() -> Path:
    """Where the trained spaCy pipelines ship inside the package."""
    return PACKAGE_DIR / "extract" / "models"
