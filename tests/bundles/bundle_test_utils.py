"""Helpers for bundle tests: run a bundle's stages as ``monai.bundle`` subprocesses with tiny settings, and check
the artefacts each stage promises."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from monai_remedis.backbones import create_backbone, load_backbone_weights
from monai_remedis.config_check import sibling_keys
from monai_remedis.configs import bundle_config_files, bundle_dir, bundle_logging_file
from monai_remedis.data.paths import PROJECT_ROOT
from monai_remedis.models.classifier import Classifier

BUNDLES = PROJECT_ROOT / "bundles"

# One optimiser step per stage on a handful of items: a smoke run of every stage that fits the test budget.
# NO_SWEEP skips the evaluate stage's data-efficiency sweep (two more fine-tunes); the slow lane runs it.
NO_SWEEP = {"sweep_inits": "${}"}
TINY: dict[str, Any] = {
    "max_epochs": 1,
    "pretrain_epochs": 1,  # stage 1 and SSL default to multiples of max_epochs
    "ssl_epochs": 1,
    "epoch_length": 1,
    "batch_size": 8,
    "finetune_batch_size": 8,
    "sweep_batch_size": 8,
    "min_steps": 0,
    "sweep_fractions": [1.0],
    "sweep_seeds": [0],
    "n_boot": 20,
    "log_every": 0,
    "limit": 12,
}


def run_python(args: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``python <args>`` in the project root (output captured, warnings silenced)."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=timeout, env=env
    )


def stage_files(bundle: str, stage: str = "pipeline", overlays: tuple[str, ...] = ()) -> list[str]:
    """Config files of a bundle stage, in the order ``python -m monai_remedis run`` uses."""
    return bundle_config_files(bundle_dir(bundle), stage, list(overlays))


def monai_bundle_args(
    bundle: str, out: Path, stage: str = "pipeline", overlays: tuple[str, ...] = (), **overrides: Any
) -> list[str]:
    """``python -m monai.bundle run`` arguments for a stage (plus overlay configs such as ``dicom.yaml``) with the
    TINY settings (overrides win)."""
    configs = BUNDLES / bundle / "configs"
    args = [
        "-m",
        "monai.bundle",
        "run",
        "--config_file",
        str(stage_files(bundle, stage, overlays)),
        "--meta_file",
        str(configs / "metadata.json"),
        "--logging_file",
        str(bundle_logging_file(bundle_dir(bundle))),
        "--output_dir",
        str(out),
    ]
    known = sibling_keys(stage_files(bundle, "pipeline", overlays))  # TINY keys a bundle lacks would be refused
    for key, value in {**{k: v for k, v in TINY.items() if k in known}, **overrides}.items():
        args += [f"--{key}", json.dumps(value) if not isinstance(value, str) else value]
    return args


def assert_pipeline_artefacts(
    out: Path,
    backbone: str,
    in_channels: int,
    num_classes: int,
    spatial_dims: int = 2,
    pretrained: bool = True,
    sweep: bool = True,
) -> dict[str, Any]:
    """Every stage left what the next one reads, and the evaluation reports ID, OOD and sweep metrics.

    Returns:
        the evaluate stage's ``metrics.json``.
    """
    if pretrained:
        load_backbone_weights(create_backbone(backbone, in_channels, spatial_dims), out / "pretrain" / "backbone.pt")
    ssl_history = json.loads((out / "ssl" / "history.json").read_text())
    assert ssl_history["epoch"] == [1] and math.isfinite(ssl_history["loss"][0]), ssl_history
    encoder = load_backbone_weights(create_backbone(backbone, in_channels, spatial_dims), out / "ssl" / "backbone.pt")
    assert all(torch.isfinite(p).all() for p in encoder.parameters())
    classifier = Classifier(create_backbone(backbone, in_channels, spatial_dims), num_classes)
    state = torch.load(out / "finetune" / "classifier.pt", weights_only=True)
    classifier.load_state_dict(state)
    exported = torch.load(out / "models" / "model.pt", weights_only=True)  # the bundle model MONAI's tools load
    assert exported.keys() == state.keys() and all(torch.equal(exported[k], state[k]) for k in state)
    x = torch.rand(2, in_channels, *([32] * spatial_dims))
    assert classifier.eval()(x).shape == (2, num_classes)
    metrics = json.loads((out / "evaluate" / "metrics.json").read_text())
    evaluations = metrics["evaluations"]
    assert "test (in-distribution)" in evaluations
    assert any(name.endswith("(zero-shot)") for name in evaluations), list(evaluations)
    for result in evaluations.values():
        assert result["metrics"]["n_classes"] == num_classes
        assert 0.0 <= result["metrics"]["accuracy"] <= 1.0
    assert (out / "evaluate" / "report.md").is_file()
    if sweep:
        assert {r["init"] for r in metrics["records"]} == {"remedis", "baseline"}
        assert all(0.0 <= r["auc"] <= 1.0 for r in metrics["records"])
        for name in ("sweep.csv", "data_efficiency.png"):
            assert (out / "evaluate" / name).is_file(), name
    return metrics
