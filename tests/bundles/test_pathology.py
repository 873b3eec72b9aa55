"""Pathology bundle on the colorectal H&E TIFF tiles (33 tiles: a smoke run, not an evaluation): slide-level
splits, native-magnification crops, HED stain jitter, and every stage through ``monai.bundle run``."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bundle_test_utils import NO_SWEEP, assert_pipeline_artefacts, monai_bundle_args, run_python  # noqa: E402

from monai_remedis.data.patient_split import check_patient_disjoint  # noqa: E402
from monai_remedis.data.stain import RandHEDJitterd, hed_adjust  # noqa: E402


def test_tiles_are_split_by_slide_and_ssl_adds_only_unlabelled_tiles(bundle_config) -> None:
    cfg = bundle_config("pathology", "ssl")
    datalist = dict(cfg.get_parsed_content("checked_datalist"))
    assert len(datalist.pop("unlabelled")) == 9  # checked against the labelled splits like any split
    assert sum(len(v) for v in datalist.values()) == 24
    assert all(item["patient_id"].startswith("CRC-Prim-HE-") for items in datalist.values() for item in items)
    check_patient_disjoint(datalist)
    ssl_images = {item["image"] for item in cfg.get_parsed_content("ssl_datalist")}
    assert ssl_images >= {item["image"] for item in datalist["train"]}
    assert not ssl_images & {item["image"] for item in datalist["val"] + datalist["test"]}
    assert sum("nct_crc_he_224px" in image for image in ssl_images) == 9


def test_evaluation_crops_at_native_magnification(bundle_config) -> None:
    cfg = bundle_config("pathology", image_size=[64, 64])
    item = cfg.get_parsed_content("checked_datalist")["test"][0]
    crop = cfg.get_parsed_content("eval_transform")(item)["image"]
    raw = tifffile.imread(item["image"]).astype(np.float32) / 255.0  # (rows, cols, 3)
    start = (raw.shape[0] - 64) // 2
    # the reader's arrays are (C, x, y): the same pixels, columns first, never resampled
    expected = np.moveaxis(raw[start : start + 64, start : start + 64], -1, 0).transpose(0, 2, 1)
    np.testing.assert_allclose(crop.numpy(), expected, atol=1e-6)


def _ssl_views(bundle_config, **overrides: object) -> tuple[dict, RandHEDJitterd]:
    """SSL views of one tile with colour jitter and blur off (seed fixed: crops/flips/rotations are the same for every
    call) and the stain jitter of the view policy, holding the draw of the last view."""
    settings = {"image_size": [64, 64], "color_strength": 0.0, "hue_strength": 0.0, "blur_max_sigma": 0.1}
    cfg = bundle_config("pathology", **{**settings, **overrides})
    item = cfg.get_parsed_content("checked_datalist")["train"][0]
    transform = cfg.get_parsed_content("ssl_transform")
    transform.set_random_state(0)
    views = transform(item)
    view_policy = transform.transforms[-1].view_transforms[0]
    return views, next(t for t in view_policy.transforms if isinstance(t, RandHEDJitterd))


def test_ssl_views_carry_stain_jitter(bundle_config) -> None:
    """The stain jitter alone turns the unjittered view into the jittered one: a change in HED optical density."""
    views, stain = _ssl_views(bundle_config)
    plain, _ = _ssl_views(bundle_config, stain_sigma=0.0, stain_bias=0.0)
    jitter = stain.jitter
    assert jitter._do_transform and not np.allclose(jitter.alpha, 1.0) and not np.allclose(jitter.beta, 0.0)
    expected = hed_adjust(plain["view_1"], jitter.alpha, jitter.beta)
    torch.testing.assert_close(views["view_1"], torch.as_tensor(expected), atol=2e-4, rtol=0)
    assert float((views["view_1"] - plain["view_1"]).abs().mean()) > 0.005


@pytest.mark.parametrize("sweep", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["no_sweep", "sweep"])
def test_every_stage_runs_through_monai_bundle_on_tiff_tiles(tmp_path: Path, sweep: bool) -> None:
    overrides = {"image_size": [32, 32], "blur_max_sigma": 0.5, **({} if sweep else NO_SWEEP)}
    result = run_python(monai_bundle_args("pathology", tmp_path, **overrides))
    assert result.returncode == 0, result.stderr[-3000:]
    assert_pipeline_artefacts(tmp_path, "bit_resnet18", in_channels=3, num_classes=8, sweep=sweep)
