"""The report's section on the inits' backbones: read from the stages' metrics.json only when it is this backbone's."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from monai_remedis.engines.fingerprint import file_digest
from monai_remedis.stages.evaluate.backbones import init_backbone_health

CHANGE = {"probe_val_auc_before": 0.98, "probe_val_auc_after": 0.79, "change": -0.19, "ci_low": -0.23,
          "ci_high": -0.15, "n_val": 512}  # fmt: skip
DROP = "SSL barlow_twins made the representation worse than its init: the frozen linear probe's AUC fell"


def stage_output(folder: Path, ssl: bool, value: float = 0.0) -> Path:
    """A backbone.pt and the metrics.json its stage writes beside it."""
    folder.mkdir(parents=True)
    path = folder / "backbone.pt"
    torch.save({"w": torch.full((4,), value)}, path)
    metrics = {"backbone_sha256": file_digest(path), "representation": {"probe_val_auc": 0.79, "feature_erank": 4.2}}
    if ssl:
        metrics.update(collapse_warning=None, representation_change=CHANGE, representation_warning=DROP)
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return path


def test_health_is_read_only_from_the_metrics_of_the_same_backbone(tmp_path: Path) -> None:
    ssl = stage_output(tmp_path / "ssl", ssl=True)
    pretrain = stage_output(tmp_path / "pretrain", ssl=False)
    bare = tmp_path / "bare" / "backbone.pt"
    bare.parent.mkdir()
    torch.save({}, bare)
    health = init_backbone_health({"remedis": ssl, "baseline": pretrain, "other": bare, "scratch": None})
    assert health["remedis"]["stage"] == "ssl" and health["remedis"]["representation_warning"] == DROP
    assert health["remedis"]["representation_change"] == CHANGE and health["remedis"]["collapse_warning"] is None
    assert health["baseline"]["stage"] == "pretrain" and "representation_change" not in health["baseline"]
    assert health["other"]["note"] == "no metrics.json beside backbone.pt"
    assert health["scratch"] == {"checkpoint": None, "note": "random init"}
    # a later run rewrote the checkpoint without rewriting metrics.json: the old numbers are not shown as its own
    torch.save({"w": torch.ones(4)}, ssl)
    stale = init_backbone_health({"remedis": ssl})["remedis"]
    assert "describes another backbone" in stale["note"] and "representation" not in stale
