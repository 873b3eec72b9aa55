"""The fine-tune budget is chosen on validation data: training stops once validation AUC stops improving."""

from __future__ import annotations

from pathlib import Path

import torch

from monai_remedis.backbones import create_backbone
from monai_remedis.models import Classifier
from monai_remedis.stages import OptimConfig, RuntimeConfig
from monai_remedis.stages.supervised import train_classifier


def _run(cxr_config, tmp_path: Path, patience: int) -> dict:
    cfg = cxr_config(limit=16)
    torch.manual_seed(0)
    model = Classifier(create_backbone("bit_resnet18_small", in_channels=1), 2)
    optim = OptimConfig(max_epochs=4, batch_size=16, learning_rate=0.0, patience=patience)
    return train_classifier(
        model,
        cfg.get_parsed_content("datalist#train"),
        cfg.get_parsed_content("eval_transform"),
        cfg.get_parsed_content("datalist#val"),
        cfg.get_parsed_content("eval_transform"),
        tmp_path,
        optim,
        RuntimeConfig(log_every=0, val_evaluations=4),
    )


def test_training_stops_after_patience_validations_without_improvement(cxr_config, tmp_path: Path) -> None:
    """At learning rate 0 validation AUC never improves: the first validation sets the best, the next ends the run."""
    assert _run(cxr_config, tmp_path / "stop", patience=1)["epochs"] == 2
    assert _run(cxr_config, tmp_path / "full", patience=0)["epochs"] == 4
