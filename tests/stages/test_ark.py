"""The Ark stage on real data: from the CXR bundle's overlay, losses that fall, resume, and a backbone that the
ordinary fine-tune stage loads."""

from __future__ import annotations

import json
import multiprocessing.process
from pathlib import Path

import pytest
import torch
from monai.bundle import ConfigParser

from monai_remedis.backbones import create_backbone
from monai_remedis.backbones.weights import load_backbone_weights
from monai_remedis.cli import main
from monai_remedis.configs import bundle_config_files, bundle_dir, bundle_parser
from monai_remedis.data.paths import PROJECT_ROOT
from monai_remedis.engines.handlers import latest_checkpoint
from monai_remedis.stages.ark import ArkConfig, ArkDataset, ArkStage

CONFIGS = PROJECT_ROOT / "bundles" / "cxr" / "configs"


def _ark_config(tmp_path: Path, **overrides: object) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config(bundle_config_files(bundle_dir("cxr"), "pretrain", ["ark.yaml"]))
    settings = {"output_dir": str(tmp_path), "ark_init": None, "log_every": 0, **overrides}
    for key, value in settings.items():
        parser[key] = value
    return parser


def test_ark_from_the_bundle_overlay_lowers_each_datasets_loss_and_exports_a_finetunable_backbone(
    tmp_path: Path,
) -> None:
    options = {"ark_options#batch_size": 16, "ark_options#learning_rate": 1e-3}
    parser = _ark_config(tmp_path, limit=32, ark_epochs=4, **options)
    result = parser.get_parsed_content("ark").run()
    history = json.loads((tmp_path / "ark" / "history.json").read_text())
    for name in ("breast_ultrasound", "mias_abnormality"):
        losses = history[f"loss_{name}"]
        assert len(losses) == 4 and losses[-1] < losses[0], (name, losses)
    assert history["consistency_weight"][0] < history["consistency_weight"][-1] <= 0.5
    assert set(result["val_auc"]) == {"breast_ultrasound", "mias_abnormality"}
    provenance = json.loads((tmp_path / "ark" / "provenance.json").read_text())
    assert [d["multi_label"] for d in provenance["config"]["datasets"]] == [False, True]
    # the exported backbone is the teacher's, in the stage-1/2 format the fine-tune stage loads (strictly)
    omni = torch.load(tmp_path / "ark" / "omni.pt", weights_only=True)
    backbone = torch.load(result["backbone"], weights_only=True)
    assert all(torch.equal(v, omni[f"backbone.{k}"]) for k, v in backbone.items())
    loaded = load_backbone_weights(
        create_backbone(bundle_parser("cxr")["backbone"], in_channels=1), result["backbone"], strict=True
    )
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in backbone.items())


def _tiny_sources(tmp_path: Path) -> list[ArkDataset]:
    parser = _ark_config(tmp_path, limit=8)
    return [parser.get_parsed_content(key) for key in ("ark_breast", "ark_mias")]


def _no_worker_processes(*args: object, **kwargs: object) -> None:
    raise AssertionError("num_workers is 0, yet a loader started a worker process")


def test_ark_resumes_across_the_cycle_with_student_and_teacher(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # with the default num_workers=0, neither training nor validation loaders may fork workers
    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", _no_worker_processes)
    sources = _tiny_sources(tmp_path)
    options = {"batch_size": 8, "log_every": 0, "device": "cpu"}
    first = ArkStage(create_backbone("bit_resnet18", in_channels=1), sources, tmp_path, max_epochs=1, **options).run()
    assert first["iterations"] == 2  # one batch of each dataset
    checkpoint = torch.load(latest_checkpoint(tmp_path), weights_only=False)
    assert {"network", "teacher", "optimizer", "lr_scheduler", "trainer"} <= set(checkpoint)
    # a later run with more epochs continues the schedule and the cycle where the first one stopped
    resumed = ArkStage(
        create_backbone("bit_resnet18", in_channels=1), sources, tmp_path, max_epochs=2, resume=True, **options
    ).run()
    assert resumed["epochs"] == 2 and resumed["iterations"] == 4
    history = json.loads((tmp_path / "history.json").read_text())
    assert history["epoch"] == [2]  # only epoch 2 was trained by the resumed run
    assert history["consistency_weight"][0] > 0.25  # iterations 3-4 of 4: late in the cosine ramp, not restarted


def test_ark_refuses_bad_settings(tmp_path: Path) -> None:
    sources = _tiny_sources(tmp_path)
    backbone = create_backbone("bit_resnet18", in_channels=1)
    with pytest.raises(ValueError, match="unique"):
        ArkStage(backbone, [sources[0], sources[0]], tmp_path)
    with pytest.raises(ValueError, match="Known: teacher, student"):
        ArkConfig(export="best")
    with pytest.raises(ValueError, match="at least one"):
        ArkStage(backbone, [], tmp_path)


@pytest.mark.slow
def test_ark_runs_from_the_bundle_by_name(tmp_path: Path) -> None:
    args = ["run", "cxr", "pretrain", "--overlay", "ark.yaml", "--limit", "16", "--max_epochs", "1"]
    assert main([*args, "--ark_init", "$None", "--log_every", "0", "--output_dir", str(tmp_path)]) == 0
    metrics = json.loads((tmp_path / "ark" / "metrics.json").read_text())
    assert Path(metrics["backbone"]).is_file() and metrics["epochs"] == 1
