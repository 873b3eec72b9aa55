"""The CXR bundle's DICOM path: a datalist built by walking the DICOM samples, read through the medical reader
(MONOCHROME1, JPEG 2000, 16-bit), colour and multi-frame files refused by name, a train/test leak in the JSON
refused, and an SSL smoke run with the ``dicom.yaml`` overlay through ``python -m monai.bundle run``."""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

import pydicom
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bundle_test_utils import monai_bundle_args, run_python  # noqa: E402

from monai_remedis.backbones import create_backbone, load_backbone_weights  # noqa: E402
from monai_remedis.configs import bundle_parser  # noqa: E402
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
COLOUR_AND_MULTIFRAME = {"US1_UNCI.dcm": (3, 640, 480), "emri_small.dcm": (1, 64, 64, 10)}  # the other 2 samples


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


def test_single_frame_grayscale_samples_load_in_unit_range_through_the_overlay(bundle_config, dicom_datalist) -> None:
    cfg = bundle_config("cxr", "ssl", "dicom", datalist_file=str(dicom_datalist), image_size=[64, 64])
    load = cfg.get_parsed_content("load_transform")
    items = cfg.get_parsed_content("checked_datalist")["train"]
    assert {item["id"] for item in items} == SINGLE_FRAME_GRAYSCALE
    for item in items:
        image = load(item)["image"]
        assert image.shape == (1, 64, 64), item["id"]
        low, high = float(image.min()), float(image.max())
        assert 0.0 <= low < 0.05 and 0.95 < high <= 1.0, (item["id"], low, high)  # percentile scaling


@pytest.mark.parametrize("name", sorted(COLOUR_AND_MULTIFRAME))
def test_colour_and_multiframe_samples_are_refused_by_the_overlay_naming_the_file(
    bundle_config, dicom_datalist: Path, data_dir: Path, name: str
) -> None:
    """A 1-channel 2D bundle cannot take RGB ultrasound or a multi-frame MR: a clear error, not a conv shape error
    (the datalist walk keeps them out with --grayscale-only --single-frame)."""
    load = bundle_config("cxr", "ssl", "dicom", datalist_file=str(dicom_datalist)).get_parsed_content("load_transform")
    with pytest.raises(RuntimeError) as err:  # Compose names the failing transform, the cause names the file
        load({"image": str(data_dir / "dicom_samples" / name), "id": name})
    assert isinstance(err.value.__cause__, ValueError)
    shape = re.escape(str(COLOUR_AND_MULTIFRAME[name]))
    assert re.search(rf"{re.escape(name)}.*shape {shape}", str(err.value.__cause__))


def test_a_train_test_leak_in_the_json_datalist_is_refused_naming_both_entries(
    bundle_config, data_dir: Path, tmp_path: Path
) -> None:
    """The overlay's JSON goes through the same pixel check as every bundle datalist: a re-exported copy of a
    training radiograph (new UID, new name) in the test split is refused."""
    samples = data_dir / "dicom_samples"
    ds = pydicom.dcmread(samples / "RG1_UNCI.dcm")
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.save_as(tmp_path / "re_exported.dcm")
    splits = {
        "training": [{"image": str(samples / n), "id": n} for n in ("RG1_UNCI.dcm", "CT_small.dcm")],
        "validation": [],
        "test": [{"image": str(tmp_path / "re_exported.dcm"), "id": "re_exported.dcm"}],
    }
    # in its own folder: MONAI's JSON loader turns ids that name a file beside the JSON into paths
    leak = write_datalist(splits, tmp_path / "lists" / "leak.json")
    cfg = bundle_config("cxr", "ssl", "dicom", datalist_file=str(leak))
    with pytest.raises(RuntimeError) as err:
        cfg.get_parsed_content("ssl")
    assert "train[0] (RG1_UNCI.dcm) has the same pixels as test[0] (re_exported.dcm)" in str(err.value.__cause__)


@pytest.mark.slow  # the overlay's loading and refusals are tested in-process above; this is its end-to-end run
def test_ssl_runs_on_the_dicom_datalist_through_monai_bundle(dicom_datalist: Path, tmp_path: Path) -> None:
    overrides = {
        "datalist_file": str(dicom_datalist),
        "ssl_init": "$None",
        "ssl_epochs": 1,
        "batch_size": 4,
        "image_size": [64, 64],
    }
    result = run_python(monai_bundle_args("cxr", tmp_path, stage="ssl", overlays=("dicom.yaml",), **overrides))
    assert result.returncode == 0, result.stderr[-3000:]
    history = json.loads((tmp_path / "ssl" / "history.json").read_text())
    assert history["epoch"] == [1] and math.isfinite(history["loss"][0])
    load_backbone_weights(
        create_backbone(bundle_parser("cxr")["backbone"], in_channels=1), tmp_path / "ssl" / "backbone.pt"
    )
