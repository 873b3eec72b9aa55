"""Where the real data lives: ``$REMEDIS_DATA``, else ``../shared/data`` beside the project."""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "REMEDIS_DATA"
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def data_root() -> Path:
    """Root folder of the shared datasets (``$REMEDIS_DATA`` or ``<project>/../shared/data``)."""
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser() if env else (PROJECT_ROOT.parent / "shared" / "data")


def data_path(*parts: str) -> Path:
    """A path inside :func:`data_root`, e.g. ``data_path("medmnist_pneumonia", "pneumoniamnist.npz")``."""
    return data_root().joinpath(*parts)
