"""Fundus bundle on RetinaMNIST: RGB colour-jittered SSL views, and every stage through ``monai.bundle run``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from monai_remedis.configs import bundle_parser

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bundle_test_utils import NO_SWEEP, assert_pipeline_artefacts, monai_bundle_args, run_python  # noqa: E402


def test_retinamnist_splits_are_the_official_ones_with_rgb_images(bundle_config) -> None:
    datalist = bundle_config("fundus").get_parsed_content("checked_datalist")
    assert {k: len(v) for k, v in datalist.items()} == {"train": 1080, "val": 120, "test": 400}
    assert {item["label"] for item in datalist["train"]} == {0, 1, 2, 3, 4}
    assert datalist["train"][0]["image"].shape == (3, 28, 28)


def test_ssl_views_are_distinct_rgb_images_in_unit_range(bundle_config) -> None:
    cfg = bundle_config("fundus", limit=4)
    item = cfg.get_parsed_content("checked_datalist")["train"][0]
    transform = cfg.get_parsed_content("ssl_transform")
    transform.set_random_state(0)
    views = transform(item)
    assert views["view_0"].shape == views["view_1"].shape == (3, 28, 28)
    assert not torch.equal(views["view_0"], views["view_1"])
    for v in (views["view_0"], views["view_1"]):
        assert 0.0 <= float(v.min()) and float(v.max()) <= 1.0


def test_simulated_ood_set_changes_the_images(bundle_config) -> None:
    cfg = bundle_config("fundus", "evaluate", limit=2)
    item = cfg.get_parsed_content("checked_datalist")["test"][0]
    plain = cfg.get_parsed_content("eval_transform")(item)["image"]
    ood = cfg.get_parsed_content("ood_sets#simulated_camera_shift#transform")(item)["image"]
    assert ood.shape == plain.shape and float((ood - plain).abs().mean()) > 0.02


@pytest.mark.parametrize("sweep", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["no_sweep", "sweep"])
def test_every_stage_runs_through_monai_bundle_on_retinamnist(tmp_path: Path, sweep: bool) -> None:
    result = run_python(monai_bundle_args("fundus", tmp_path, **({} if sweep else NO_SWEEP)))
    assert result.returncode == 0, result.stderr[-3000:]
    assert_pipeline_artefacts(tmp_path, bundle_parser("fundus")["backbone"], in_channels=3, num_classes=5, sweep=sweep)
