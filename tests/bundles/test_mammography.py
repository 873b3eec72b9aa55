"""Mammography bundle on mini-MIAS: woman-level splits, PNG and original PGM reading, high-resolution SSL crops,
and every stage through ``monai.bundle run``."""

from __future__ import annotations

import json
import math
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bundle_test_utils import assert_pipeline_artefacts, monai_bundle_args, run_python  # noqa: E402

from monai_remedis.backbones import create_backbone, load_backbone_weights  # noqa: E402
from monai_remedis.data.patient_split import check_patient_disjoint  # noqa: E402


def test_both_breasts_of_a_woman_stay_in_one_split(bundle_config) -> None:
    datalist = bundle_config("mammography").get_parsed_content("datalist")
    items = [item for split in datalist.values() for item in split]
    assert len(items) == 115 and Counter(item["label"] for item in items) == {0: 63, 1: 52}
    check_patient_disjoint(datalist)
    assert any(item["id"].endswith("mdb001.png") and item["patient_id"] == "mdb001-002" for item in items)
    for split in datalist.values():
        assert {item["label"] for item in split} == {0, 1}


def test_original_pgm_and_downsampled_png_load_alike(bundle_config, data_dir: Path) -> None:
    load = bundle_config("mammography").get_parsed_content("load_transform")
    pgm = load({"image": str(data_dir / "mini_mias_abnormal" / "original_pgm" / "mdb001_benign.pgm")})["image"]
    png = load({"image": str(data_dir / "mini_mias_abnormal" / "images_512" / "benign" / "mdb001.png")})["image"]
    assert pgm.shape == png.shape == (1, 512, 512)
    assert 0.0 <= float(pgm.min()) and float(pgm.max()) <= 1.0 and float(pgm.max()) > 0.5
    assert float((pgm - png).abs().mean()) < 0.01  # the PNG is the PGM box-downsampled from 1024 px


def test_ssl_views_are_high_resolution_crops(bundle_config) -> None:
    cfg = bundle_config("mammography", limit=2, image_size=[128, 128], histeq_prob=0.0, elastic_prob=0.0)
    item = cfg.get_parsed_content("datalist#train")[0]
    transform = cfg.get_parsed_content("ssl_transform")
    transform.set_random_state(1)
    views = transform(item)
    assert views["view_0"].shape == views["view_1"].shape == (1, 128, 128)
    assert not torch.equal(views["view_0"], views["view_1"])


SMALL = {"load_size": [64, 64], "image_size": [32, 32], "blur_max_sigma": 0.5}


def test_ssl_stage_runs_through_monai_bundle_on_mini_mias(tmp_path: Path) -> None:
    result = run_python(monai_bundle_args("mammography", tmp_path, stage="ssl", ssl_init="$None", **SMALL))
    assert result.returncode == 0, result.stderr[-3000:]
    history = json.loads((tmp_path / "ssl" / "history.json").read_text())
    assert history["epoch"] == [1] and math.isfinite(history["loss"][0])
    load_backbone_weights(create_backbone("bit_resnet18", in_channels=1), tmp_path / "ssl" / "backbone.pt")


@pytest.mark.slow
def test_every_stage_runs_through_monai_bundle_on_mini_mias(tmp_path: Path) -> None:
    result = run_python(monai_bundle_args("mammography", tmp_path, **SMALL))
    assert result.returncode == 0, result.stderr[-3000:]
    assert_pipeline_artefacts(tmp_path, "bit_resnet18", in_channels=1, num_classes=2)
