"""Shared fixtures: the real datasets beside the project (``$REMEDIS_DATA`` or ``../shared/data``)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

from monai_remedis.data.paths import PROJECT_ROOT, data_root

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session", autouse=True)
def _scratch_tmpdir(tmp_path_factory: pytest.TempPathFactory):
    """Temporary files of the code under test (CLI error logs, torchrun's folders, subprocesses') go under pytest's
    base temp, which pytest prunes, instead of piling up in the system's /tmp."""
    scratch = tmp_path_factory.mktemp("scratch")
    patch = pytest.MonkeyPatch()
    patch.setenv("TMPDIR", str(scratch))
    patch.setattr(tempfile, "tempdir", str(scratch))
    yield scratch
    patch.undo()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Root of the shared real datasets; fails loudly when absent (tests rely on it, CI has it)."""
    root = data_root()
    if not root.is_dir():
        pytest.fail(f"real data not found at {root}; set REMEDIS_DATA to the shared data folder.")
    return root


@pytest.fixture(scope="session")
def pneumonia_npz(data_dir: Path) -> Path:
    return data_dir / "medmnist_pneumonia" / "pneumoniamnist.npz"


@pytest.fixture(scope="session")
def cifar_npz(data_dir: Path) -> Path:
    return data_dir / "cifar10_subset" / "cifar10_subset.npz"


def run_cli(
    args: list[str], cwd: Path = PROJECT_ROOT, timeout: float = 600, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run ``python <args>`` in the project root, returning the completed process (output captured)."""
    full_env = {**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=full_env
    )
