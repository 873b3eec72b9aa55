"""The CXR bundle's DICOM path: a datalist built by walking the DICOM samples, read through the medical reader
(MONOCHROME1, JPEG 2000, 16-bit), and an SSL smoke run with the ``dicom.yaml`` overlay."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bundle_test_utils import run_python  # noqa: E402

from monai_remedis.backbones import create_backbone, load_backbone_weights  # noqa: E402
from monai_remedis.data import load_datalist  # noqa: E402
from monai_remedis.data.builders import (  # noqa: E402
    dicom_folder_datalist,
    resolve_duplicates,
    split_datalist,
    write_datalist,
)

SINGLE_FRAME_GRAYSCALE = {
    "693_UNCI.dcm",
    "CT_small.dcm",
    "MR-SIEMENS-DICOM-WithOverlays.dcm",
    "MR2_UNCI.dcm",
    "MR_small.dcm",
    "RG1_UNCI.dcm",
    "RG3_J2KI.dcm",
}


@pytest.fixture(scope="module")
def dicom_datalist(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What ``python -m monai_remedis datalist dicom SAMPLES --grayscale-only --single-frame --val 0 --test 0``
    writes (the CLI itself is tested in tests/data/test_builders.py)."""
    items, names = dicom_folder_datalist(data_dir / "dicom_samples", grayscale_only=True, single_frame_only=True)
    splits, removed = resolve_duplicates(split_datalist(items, val=0.0, test=0.0))
    return write_datalist(splits, tmp_path_factory.mktemp("dicom") / "dicom.json", names, removed)


def test_dicom_walk_keeps_single_frame_grayscale_images(dicom_datalist: Path) -> None:
    items = load_datalist(dicom_datalist, "training")
    assert {item["id"] for item in items} == SINGLE_FRAME_GRAYSCALE  # RGB US and the multi-frame MR are filtered
    assert all(item["patient_id"] and item["modality"] in {"CT", "MR", "CR"} for item in items)


def test_every_dicom_sample_loads_in_unit_range_through_the_overlay(bundle_config, dicom_datalist: Path) -> None:
    cfg = bundle_config("cxr", "ssl", "dicom", datalist_file=str(dicom_datalist), image_size=[64, 64])
    load = cfg.get_parsed_content("load_transform")
    for item in cfg.get_parsed_content("datalist#train"):
        image = load(item)["image"]
        assert image.shape == (1, 64, 64), item["id"]
        low, high = float(image.min()), float(image.max())
        assert 0.0 <= low < 0.05 and 0.95 < high <= 1.0, (item["id"], low, high)  # percentile scaling


def test_ssl_runs_on_the_dicom_datalist(dicom_datalist: Path, tmp_path: Path) -> None:
    result = run_python(
        ["-m", "monai_remedis", "run", "cxr", "ssl", "--overlay", "dicom.yaml", "--datalist_file", str(dicom_datalist),
         "--ssl_init", "$None", "--output_dir", str(tmp_path), "--max_epochs", "1", "--batch_size", "4",
         "--image_size", "[64, 64]", "--log_every", "0"]
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    history = json.loads((tmp_path / "ssl" / "history.json").read_text())
    assert history["epoch"] == [1] and math.isfinite(history["loss"][0])
    load_backbone_weights(create_backbone("bit_resnet18", in_channels=1), tmp_path / "ssl" / "backbone.pt")
