"""Make plugin distributions discoverable in a subprocess without installing them."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VICREG_SRC = REPO / "plugins" / "remedis-vicreg" / "src"


def write_dist_info(site: Path, name: str, version: str, entry_points: dict[str, str]) -> Path:
    """Write a minimal ``<name>-<version>.dist-info`` whose ``monai_remedis`` entry points are ``entry_points``.

    A folder holding it on ``sys.path`` is what ``importlib.metadata`` (and so the plugin manager) scans.
    """
    dist_info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    dist_info.mkdir(parents=True, exist_ok=True)
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = ["[monai_remedis]", *(f"{k} = {v}" for k, v in entry_points.items())]
    (dist_info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return dist_info


def vicreg_installed() -> bool:
    """Whether ``remedis-vicreg`` is installed (``pip install ./plugins/remedis-vicreg``).

    Metadata that a build left in the source tree (``src/remedis_vicreg.egg-info``) does not count.
    """
    roots = {Path(str(d.locate_file(""))).resolve() for d in metadata.distributions(name="remedis-vicreg")}
    return bool(roots - {VICREG_SRC.resolve()})


def subprocess_env(*paths: Path, **extra: str) -> dict[str, str]:
    """This environment with ``paths`` prepended to ``PYTHONPATH`` and ``extra`` variables set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONAI_REMEDIS_")}
    env["PYTHONPATH"] = os.pathsep.join([*map(str, paths), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PYTHONWARNINGS"] = "default::RuntimeWarning"
    return env | extra


def vicreg_env(tmp_path: Path) -> dict[str, str]:
    """An environment where the VICReg plugin is discoverable: the installed one, else the source tree."""
    if vicreg_installed():
        return subprocess_env()
    site = tmp_path / "site"
    write_dist_info(site, "remedis-vicreg", "0.1.0", {"vicreg": "remedis_vicreg.plugin"})
    return subprocess_env(site, VICREG_SRC)


def run_python(code: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``python -c code`` from the repository root."""
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO, timeout=timeout
    )
