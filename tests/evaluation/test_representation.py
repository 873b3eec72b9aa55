"""Stage diagnostics on real chest X-rays: a random backbone is high-rank; features squeezed onto a line are not."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
from monai.bundle import ConfigParser

from monai_remedis.backbones import create_backbone
from monai_remedis.configs import bundle_config_files, bundle_dir
from monai_remedis.evaluation.representation import (
    ProbedRepresentation,
    degradation_verdict,
    mean_pairwise_cosine,
    probe_change,
    probe_representation,
)


class _Line(nn.Module):
    """Every image mapped onto one direction (what a collapsed stage 1 hands SSL)."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 5.0 + self.backbone(x)[:, :1] * torch.ones(1, 512)


@pytest.fixture(scope="module")
def cxr_items() -> dict:
    """The first 96 training and validation X-rays of PneumoniaMNIST, with the cxr bundle's evaluation transform."""
    cfg = ConfigParser()
    cfg.read_config(bundle_config_files(bundle_dir("cxr"), "finetune"))
    cfg["limit"] = 96
    return {
        "train": cfg.get_parsed_content("datalist#train"),
        "val": cfg.get_parsed_content("datalist#val"),
        "transform": cfg.get_parsed_content("eval_transform"),
    }


def test_random_rgb_backbone_scores_grayscale_xrays(cxr_items: dict) -> None:
    """A 3-channel (stage-1) backbone reads grayscale X-rays repeated over its channels."""
    torch.manual_seed(0)
    scores = probe_representation(create_backbone("bit_resnet18_small", in_channels=3), **cxr_items).scores
    assert scores["n_train"] == 96 and scores["n_val"] == 96
    assert scores["feature_erank"] > 20 and 0.0 < scores["mean_cosine"] < 1.0
    assert 0.5 < scores["probe_val_auc"] <= 1.0


def test_features_on_a_line_have_rank_one(cxr_items: dict) -> None:
    torch.manual_seed(0)
    scores = probe_representation(_Line(create_backbone("bit_resnet18_small", in_channels=1)), **cxr_items).scores
    assert scores["feature_erank"] == pytest.approx(1.0, abs=0.01)
    assert scores["mean_cosine"] > 0.99


def test_mean_pairwise_cosine_ignores_self_pairs() -> None:
    assert mean_pairwise_cosine(torch.eye(4)) == pytest.approx(0.0)
    assert mean_pairwise_cosine(torch.ones(3, 2)) == pytest.approx(1.0)


def _probed(positive_score: np.ndarray, labels: np.ndarray) -> ProbedRepresentation:
    probs = np.stack([1.0 - positive_score, positive_score], axis=1)
    auc = float(np.mean(positive_score[labels == 1][:, None] > positive_score[labels == 0][None, :]))
    return ProbedRepresentation({"probe_val_auc": auc}, probs, labels)


def test_probe_change_reports_only_a_drop_beyond_the_validation_noise() -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 100)
    separating = _probed(labels + rng.normal(0.0, 0.5, 200), labels)
    ruined = _probed(rng.random(200), labels)
    drop = probe_change(separating, ruined)
    assert drop["change"] == pytest.approx(ruined.scores["probe_val_auc"] - separating.scores["probe_val_auc"])
    assert drop["ci_high"] < 0 and drop["n_val"] == 200
    assert "fell from" in degradation_verdict(drop) and "200 validation images" in degradation_verdict(drop)
    # the same representation scored twice, and a slightly noisier one, are not reported
    assert degradation_verdict(probe_change(separating, separating)) is None
    noisier = _probed(labels + rng.normal(0.0, 0.55, 200), labels)
    assert probe_change(separating, noisier)["ci_low"] < 0 < probe_change(separating, noisier)["ci_high"]
    assert degradation_verdict(probe_change(separating, noisier)) is None


def test_probe_change_refuses_probes_of_different_items() -> None:
    labels = np.repeat([0, 1], 10)
    with pytest.raises(ValueError, match="different validation items"):
        probe_change(_probed(np.linspace(0, 1, 20), labels), _probed(np.linspace(0, 1, 20), labels[::-1].copy()))
