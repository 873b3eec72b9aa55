"""Fixtures for the MONAI Label app (``apps/monailabel``): real images in a datastore folder, a REMEDIS-shaped encoder.

Tests that need the real ``monailabel`` package are marked ``monailabel`` and skip cleanly without it; run them with
the app's venv: ``.venv/monailabel/bin/python -m pytest -m monailabel tests/apps/monailabel`` (docs/monailabel.md).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from monai_remedis.backbones import create_backbone
from monai_remedis.configs import bundle_parser
from monai_remedis.data.paths import PROJECT_ROOT

APP_DIR = PROJECT_ROOT / "apps" / "monailabel"
if str(APP_DIR) not in sys.path:
    sys.path.insert(0, str(APP_DIR))  # `remedis_label`, as MONAI Label imports it beside main.py

CXR_CLASSES = ["normal", "pneumonia"]


def write_pneumonia_pngs(npz: Path, folder: Path, count: int, split: str = "test") -> dict[str, int]:
    """Write the first ``count`` PneumoniaMNIST ``split`` images, alternating classes, as PNGs; returns id -> label.

    Temporary copies for a datastore folder (MONAI Label writes its ``datastore_v2.json`` and labels beside them).
    """
    data = np.load(npz)
    images, labels = data[f"{split}_images"], data[f"{split}_labels"][:, 0]
    per_class = [np.flatnonzero(labels == c) for c in (0, 1)]
    order = [int(i) for pair in zip(*per_class, strict=False) for i in pair][:count]
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for index in order:
        image_id = f"pneumonia_{split}_{index:04d}"
        Image.fromarray(images[index]).save(folder / f"{image_id}.png")
        out[image_id] = int(labels[index])
    return out


@pytest.fixture
def cxr_studies(tmp_path: Path, pneumonia_npz: Path) -> tuple[Path, dict[str, int]]:
    """A datastore folder of 24 real chest X-ray PNGs (12 per class) and their true labels."""
    folder = tmp_path / "studies"
    return folder, write_pneumonia_pngs(pneumonia_npz, folder, 24)


@pytest.fixture
def cxr_encoder(tmp_path: Path) -> Path:
    """A stage-2-shaped ``backbone.pt`` for the cxr bundle (its backbone, 1 channel; mechanics, not accuracy)."""
    torch.manual_seed(0)
    path = tmp_path / "encoder" / "backbone.pt"
    path.parent.mkdir()
    torch.save(create_backbone(bundle_parser("cxr")["backbone"], in_channels=1).state_dict(), path)
    return path


@pytest.fixture
def app_copy(tmp_path: Path) -> Path:
    """The app code in a temporary folder: MONAI Label writes model/, logs/, lib/, bin/ beside main.py."""
    app = tmp_path / "app"
    shutil.copytree(APP_DIR, app, ignore=shutil.ignore_patterns("model", "logs", "lib", "bin", "__pycache__"))
    return app


@pytest.fixture
def fundus_studies(tmp_path: Path, data_dir: Path) -> tuple[Path, dict[str, int]]:
    """A datastore folder linking 10 real APTOS fundus photographs (128 px PNGs, two of each grade)."""
    import csv

    source = data_dir / "aptos2019_dr"
    with (source / "labels.csv").open() as f:
        rows = [(r["id_code"], int(r["diagnosis"])) for r in csv.DictReader(f)]
    folder, truth = tmp_path / "fundus_studies", {}
    folder.mkdir()
    for grade in range(5):
        for image_id, _ in [r for r in rows if r[1] == grade][:2]:
            (folder / f"{image_id}.png").symlink_to(source / "images_128" / f"{image_id}.png")
            truth[image_id] = grade
    return folder, truth


@pytest.fixture
def fundus_encoder(tmp_path: Path) -> Path:
    """A stage-2-shaped ``backbone.pt`` for the fundus bundle (its backbone, 3 channels)."""
    torch.manual_seed(0)
    path = tmp_path / "fundus_encoder" / "backbone.pt"
    path.parent.mkdir()
    torch.save(create_backbone(bundle_parser("fundus")["backbone"], in_channels=3).state_dict(), path)
    return path
