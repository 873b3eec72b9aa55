"""Dermatology bundle on the HAM10000 subset: lesion-level splits from the CSV, colour-jittered views, and every
stage through ``python -m monai.bundle run``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bundle_test_utils import TINY, assert_pipeline_artefacts, monai_bundle_args, run_python  # noqa: E402

from monai_remedis.data.color import RandColorJitterd  # noqa: E402
from monai_remedis.data.patient_split import check_patient_disjoint  # noqa: E402


def test_splits_are_lesion_level_stratified_and_cover_all_1487_images(bundle_config) -> None:
    datalist = bundle_config("dermatology").get_parsed_content("checked_datalist")
    sizes = {k: len(v) for k, v in datalist.items()}
    assert sum(sizes.values()) == 1487 and 200 <= sizes["val"] <= 250 and 200 <= sizes["test"] <= 250, sizes
    check_patient_disjoint(datalist)  # lesion_id is the grouping key (HAM10000 has no patient id)
    for items in datalist.values():
        assert {item["label"] for item in items} == set(range(7))
    assert datalist["train"][0]["image"].endswith(".jpg") and Path(datalist["train"][0]["image"]).is_file()


def _ssl_views(bundle_config, **overrides: object) -> tuple[dict, RandColorJitterd]:
    """SSL views of one image (seed fixed, so crops/flips/rotations are the same for every call) and the colour
    jitter of the view policy, holding the draw of the last view."""
    settings = {"limit": 2, "image_size": [64, 64], "grayscale_prob": 0.0, "blur_max_sigma": 0.1, **overrides}
    cfg = bundle_config("dermatology", **settings)
    item = cfg.get_parsed_content("checked_datalist")["train"][0]
    transform = cfg.get_parsed_content("ssl_transform")
    transform.set_random_state(3)
    views = transform(item)
    view_policy = transform.transforms[-1].view_transforms[0]
    return views, next(t for t in view_policy.transforms if isinstance(t, RandColorJitterd))


def test_ssl_views_are_rgb_at_the_requested_size_and_differ_in_colour(bundle_config) -> None:
    views, jitter = _ssl_views(bundle_config)
    v0, v1 = views["view_0"], views["view_1"]
    assert v0.shape == v1.shape == (3, 64, 64)
    assert 0.0 <= float(torch.minimum(v0.min(), v1.min())) and float(torch.maximum(v0.max(), v1.max())) <= 1.0
    # the same views without colour jitter: same geometry, and the colour jitter accounts for the whole difference
    plain, _ = _ssl_views(bundle_config, color_strength=0.0, hue_strength=0.0)
    assert jitter.transform._do_transform and len(jitter.transform.factors) == 4  # brightness ... hue drawn
    torch.testing.assert_close(v1, jitter.transform(plain["view_1"], randomize=False), atol=1e-4, rtol=0)
    assert float((v1 - plain["view_1"]).abs().mean()) > 0.01
    assert not torch.allclose(v1.mean(dim=(1, 2)), plain["view_1"].mean(dim=(1, 2)), atol=1e-3)  # mean colour moved


def test_finetune_stage_runs_through_monai_bundle_on_ham10000_jpegs(tmp_path: Path) -> None:
    overrides = {"image_size": [32, 32], "blur_max_sigma": 0.5, "finetune_init": "$None"}
    result = run_python(monai_bundle_args("dermatology", tmp_path, stage="finetune", **overrides))
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "finetune" / "metrics.json").read_text())
    assert metrics["num_labels"] == TINY["limit"] and metrics["init_weights"] == ""
    classifier = torch.load(tmp_path / "finetune" / "classifier.pt", weights_only=True)
    assert classifier["head.1.weight"].shape == (7, 512) and torch.isfinite(classifier["head.1.weight"]).all()


@pytest.mark.slow
def test_every_stage_runs_through_monai_bundle_on_ham10000(tmp_path: Path) -> None:
    result = run_python(monai_bundle_args("dermatology", tmp_path, image_size=[32, 32], blur_max_sigma=0.5))
    assert result.returncode == 0, result.stderr[-3000:]
    assert_pipeline_artefacts(tmp_path, "bit_resnet18", in_channels=3, num_classes=7)
