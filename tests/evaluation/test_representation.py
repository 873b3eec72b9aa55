"""Stage diagnostics on real chest X-rays: a random backbone is high-rank; features squeezed onto a line are not."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from monai.bundle import ConfigParser

from monai_remedis.backbones import create_backbone
from monai_remedis.configs import bundle_config_files, bundle_dir
from monai_remedis.evaluation.representation import mean_pairwise_cosine, representation_diagnostics


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
    scores = representation_diagnostics(create_backbone("bit_resnet18_small", in_channels=3), **cxr_items)
    assert scores["n_train"] == 96 and scores["n_val"] == 96
    assert scores["feature_erank"] > 20 and 0.0 < scores["mean_cosine"] < 1.0
    assert 0.5 < scores["probe_val_auc"] <= 1.0


def test_features_on_a_line_have_rank_one(cxr_items: dict) -> None:
    torch.manual_seed(0)
    scores = representation_diagnostics(_Line(create_backbone("bit_resnet18_small", in_channels=1)), **cxr_items)
    assert scores["feature_erank"] == pytest.approx(1.0, abs=0.01)
    assert scores["mean_cosine"] > 0.99


def test_mean_pairwise_cosine_ignores_self_pairs() -> None:
    assert mean_pairwise_cosine(torch.eye(4)) == pytest.approx(0.0)
    assert mean_pairwise_cosine(torch.ones(3, 2)) == pytest.approx(1.0)
