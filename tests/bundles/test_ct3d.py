"""3D bundle on AdrenalMNIST3D: 3D views, a 3D backbone in every stage, stage 1 skipped without published 3D
weights (scratch baseline) or importing them, and every stage through ``python -m monai.bundle run``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bundle_test_utils import assert_pipeline_artefacts, monai_bundle_args, run_python  # noqa: E402

from monai_remedis.backbones import create_backbone  # noqa: E402


def test_volumes_keep_the_official_splits(bundle_config) -> None:
    datalist = bundle_config("ct3d").get_parsed_content("checked_datalist")
    assert {k: len(v) for k, v in datalist.items()} == {"train": 1188, "val": 98, "test": 298}
    assert datalist["train"][0]["image"].shape == (1, 28, 28, 28)


def test_ssl_views_are_distinct_volumes(bundle_config) -> None:
    cfg = bundle_config("ct3d", limit=2)
    transform = cfg.get_parsed_content("ssl_transform")
    transform.set_random_state(0)
    views = transform(cfg.get_parsed_content("checked_datalist")["train"][0])
    assert views["view_0"].shape == views["view_1"].shape == (1, 28, 28, 28)
    assert not torch.equal(views["view_0"], views["view_1"])


def test_stage1_is_skipped_without_weights_and_imports_them_when_given(bundle_config, tmp_path: Path) -> None:
    alone = bundle_config("ct3d", "pretrain", output_dir=str(tmp_path))
    assert alone.get_parsed_content("run") == [None]  # `run ct3d pretrain` logs the skip and writes nothing
    assert not (tmp_path / "pretrain").exists()
    cfg = bundle_config("ct3d", "pretrain", "ssl", "evaluate", output_dir=str(tmp_path))
    assert cfg.get_parsed_content("pretrain") is None
    assert cfg.get_parsed_content("ssl_init") is None and cfg.get_parsed_content("sweep_inits#baseline") is None
    weights = tmp_path / "published.pt"
    source = create_backbone("resnet10_3d", in_channels=1, spatial_dims=3)
    torch.save(source.state_dict(), weights)
    cfg = bundle_config("ct3d", "pretrain", "ssl", output_dir=str(tmp_path), pretrain_weights=str(weights))
    exported = Path(cfg.get_parsed_content("pretrain").run()["backbone"])
    assert cfg.get_parsed_content("ssl_init") == str(exported)
    state = torch.load(exported, weights_only=True)
    assert all(torch.equal(state[k], v) for k, v in source.state_dict().items())


def test_every_stage_runs_in_3d_through_monai_bundle(tmp_path: Path) -> None:
    result = run_python(monai_bundle_args("ct3d", tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "stage 1 skipped" in result.stdout + result.stderr
    assert not (tmp_path / "pretrain").exists()
    assert_pipeline_artefacts(tmp_path, "resnet10_3d", in_channels=1, num_classes=2, spatial_dims=3, pretrained=False)
    classifier = torch.load(tmp_path / "finetune" / "classifier.pt", weights_only=True)
    assert classifier["backbone.conv1.weight"].ndim == 5  # a 3D stem: (out, in, d, h, w)
    baseline = json.loads((tmp_path / "evaluate" / "sweep" / "baseline" / "f1_s0" / "metrics.json").read_text())
    assert baseline["init_weights"] == ""  # the baseline trains from scratch
