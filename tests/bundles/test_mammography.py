"""Mammography bundle on mini-MIAS: woman-level splits, the image filed under both labels dropped, PNG and original
PGM reading, high-resolution SSL crops, and stages through ``monai.bundle run``."""

from __future__ import annotations

import json
import math
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch
from monai.transforms import Resized

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bundle_test_utils import assert_pipeline_artefacts, monai_bundle_args, run_python  # noqa: E402

from monai_remedis.backbones import create_backbone, load_backbone_weights  # noqa: E402
from monai_remedis.data.patient_split import check_patient_disjoint  # noqa: E402


def test_both_breasts_of_a_woman_stay_in_one_split(bundle_config) -> None:
    datalist = bundle_config("mammography").get_parsed_content("checked_datalist")
    items = [item for split in datalist.values() for item in split]
    # 115 files, 114 distinct images: mdb144 is filed under benign/ and malignant/ and both copies are dropped
    assert len(items) == 113 and Counter(item["label"] for item in items) == {0: 62, 1: 51}
    assert not any("mdb144" in item["id"] for item in items)
    check_patient_disjoint(datalist)
    assert any(item["id"].endswith("mdb001.png") and item["patient_id"] == "mdb001-002" for item in items)
    for split in datalist.values():
        assert {item["label"] for item in split} == {0, 1}


def test_the_image_with_two_labels_is_refused_when_asked(bundle_config) -> None:
    with pytest.raises(RuntimeError) as err:
        bundle_config("mammography", on_label_conflict="error").get_parsed_content("checked_datalist")
    message = str(err.value.__cause__)
    assert "benign/mdb144.png, label 0" in message and "malignant/mdb144.png, label 1" in message


def test_original_pgm_and_downsampled_png_load_alike(bundle_config, data_dir: Path) -> None:
    load = bundle_config("mammography").get_parsed_content("load_transform")  # reading PGM works with any folder
    pgm = load({"image": str(data_dir / "mini_mias_abnormal" / "original_pgm" / "mdb001_benign.pgm")})["image"]
    png = load({"image": str(data_dir / "mini_mias_abnormal" / "images_512" / "benign" / "mdb001.png")})["image"]
    assert pgm.shape == png.shape == (1, 512, 512)
    assert 0.0 <= float(pgm.min()) and float(pgm.max()) <= 1.0 and float(pgm.max()) > 0.5
    assert float((pgm - png).abs().mean()) < 0.01  # the PNG is the PGM box-downsampled from 1024 px


def test_ssl_views_are_high_resolution_crops(bundle_config) -> None:
    """Each view is a crop of the image at load_size (512 px), 0.35-1.0 of each side, resized to image_size: small
    crops keep full-resolution detail instead of being cut from the network-size image."""
    cfg = bundle_config("mammography", limit=2, image_size=[128, 128], histeq_prob=0.0, elastic_prob=0.0)
    item = cfg.get_parsed_content("checked_datalist")["train"][0]
    loaded = cfg.get_parsed_content("load_transform")(item)["image"]
    assert loaded.shape == (1, 512, 512)  # load_size, not image_size
    views = cfg.get_parsed_content("ssl_transform")
    crop, resize = views.transforms[-1].view_transforms[0].transforms[:2]  # the view policy starts with the crop
    coords = torch.stack(torch.meshgrid(torch.arange(512.0), torch.arange(512.0), indexing="ij"))
    to_network = Resized("image", [128, 128], mode="area")
    low_res = to_network({"image": loaded})["image"]  # the whole image at network size
    sides = []
    for seed in range(12):
        crop.set_random_state(seed)
        view = resize(crop({"image": loaded}))["image"]
        crop.set_random_state(seed)  # the same draw on a map of pixel coordinates locates the crop
        where = crop({"image": coords})["image"]
        (x0, y0), (x1, y1) = where.amin(dim=(1, 2)).int().tolist(), (where.amax(dim=(1, 2)) + 1).int().tolist()
        sides += [x1 - x0, y1 - y0]
        assert view.shape == (1, 128, 128)
        torch.testing.assert_close(view, to_network({"image": loaded[:, x0:x1, y0:y1]})["image"])
        cut = low_res[:, x0 // 4 : -(-x1 // 4), y0 // 4 : -(-y1 // 4)]  # the same region of the low-res image
        assert float((view - to_network({"image": cut})["image"]).abs().mean()) > 1e-3
    assert 0.35 * 512 <= min(sides) < 0.6 * 512 and max(sides) <= 512
    transform = cfg.get_parsed_content("ssl_transform")
    transform.set_random_state(1)
    out = transform(item)
    assert out["view_0"].shape == out["view_1"].shape == (1, 128, 128)
    assert not torch.equal(out["view_0"], out["view_1"])


SMALL = {"load_size": [64, 64], "image_size": [32, 32], "blur_max_sigma": 0.5}


def test_ssl_stage_runs_through_monai_bundle_on_mini_mias(tmp_path: Path) -> None:
    result = run_python(monai_bundle_args("mammography", tmp_path, stage="ssl", ssl_init="$None", **SMALL))
    assert result.returncode == 0, result.stderr[-3000:]
    history = json.loads((tmp_path / "ssl" / "history.json").read_text())
    assert history["epoch"] == [1] and math.isfinite(history["loss"][0])
    load_backbone_weights(create_backbone("bit_resnet18", in_channels=1), tmp_path / "ssl" / "backbone.pt")


@pytest.mark.slow  # PGM reading and label_from are unit-tested in tests/data; this is their end-to-end run
def test_ssl_stage_runs_on_the_original_pgm_files(tmp_path: Path, data_dir: Path) -> None:
    """original_pgm/ has no class folders: the class comes from the file name (mdb001_benign.pgm)."""
    overrides = {
        **SMALL,
        "dataset_dir": str(data_dir / "mini_mias_abnormal" / "original_pgm"),
        "label_from": "_(benign|malignant)",
        "val_fraction": 0.0,
        "test_fraction": 0.0,
        "batch_size": 2,
        "ssl_init": "$None",
    }
    result = run_python(monai_bundle_args("mammography", tmp_path, stage="ssl", **overrides))
    assert result.returncode == 0, result.stderr[-3000:]
    history = json.loads((tmp_path / "ssl" / "history.json").read_text())
    assert history["epoch"] == [1] and math.isfinite(history["loss"][0])


@pytest.mark.slow
def test_every_stage_runs_through_monai_bundle_on_mini_mias(tmp_path: Path) -> None:
    result = run_python(monai_bundle_args("mammography", tmp_path, **SMALL))
    assert result.returncode == 0, result.stderr[-3000:]
    assert_pipeline_artefacts(tmp_path, "bit_resnet18", in_channels=1, num_classes=2)
