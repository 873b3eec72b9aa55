"""The package ships its bundles and shared configs: a non-editable install runs a bundle from any folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from monai_remedis.configs import bundles_root, known_bundles, shared_configs
from monai_remedis.data.paths import PROJECT_ROOT

# A short chain: every stage once, a one-run sweep.
SHORT_CHAIN = {
    "max_epochs": "1",
    "limit": "256",
    "pretrain_epochs": "1",
    "ssl_epochs": "1",
    "min_steps": "0",
    "sweep_fractions": "[1.0]",
    "sweep_seeds": "[0]",
    "n_boot": "20",
}


def test_bundles_and_shared_configs_are_package_resources() -> None:
    assert {"cxr", "ct3d", "dermatology", "fundus", "mammography", "pathology"} <= set(known_bundles())
    assert (bundles_root() / "cxr" / "configs" / "common.yaml").is_file()
    names = {p.name for p in shared_configs().iterdir()}
    assert {"base.yaml", "pretrain.yaml", "ssl.yaml", "finetune.yaml", "evaluate.yaml", "pipeline.yaml"} <= names


def _copy_repository(dest: Path) -> Path:
    ignore = shutil.ignore_patterns(".git", "runs", "build", "dist", "*.egg-info", "__pycache__", ".*cache", ".venv")
    return Path(shutil.copytree(PROJECT_ROOT, dest, symlinks=True, ignore=ignore))


@pytest.mark.slow
def test_non_editable_install_runs_cxr_from_another_folder(tmp_path: Path, data_dir: Path) -> None:
    """Exactly: fresh venv (--system-site-packages, so torch is not reinstalled), ``pip install --no-deps
    --no-build-isolation .`` of a copy of the repository, then ``monai-remedis run cxr --max_epochs 1 --limit 256``
    (plus short-chain options) from an unrelated folder.

    The venv is made ``--without-pip``: its own pip would bring a setuptools without ``bdist_wheel`` that shadows the
    system's; the system pip (visible through --system-site-packages) installs into the venv all the same.
    """
    source = _copy_repository(tmp_path / "repo")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"REMEDIS_DATA": str(data_dir)}
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run([*pip, str(source)], check=True, env=env, cwd=tmp_path)
    shutil.rmtree(source)  # nothing may come from the source tree
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import monai_remedis; print(monai_remedis.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=elsewhere,
        check=True,
    ).stdout.strip()
    assert where.startswith(str(venv)), where  # the installed copy, not an editable checkout
    overrides = [arg for key, value in SHORT_CHAIN.items() for arg in (f"--{key}", value)]
    result = subprocess.run(
        [str(venv / "bin" / "monai-remedis"), "run", "cxr", *overrides, "--output_dir", "out"],
        capture_output=True,
        text=True,
        env=env,
        cwd=elsewhere,
        timeout=1200,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((elsewhere / "out" / "evaluate" / "metrics.json").read_text())
    assert "test (in-distribution)" in metrics["evaluations"]
    assert {r["init"] for r in metrics["records"]} == {"remedis", "baseline"}
