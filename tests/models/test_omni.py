"""Shapes and errors of Ark's omni-model (synthetic tensors: shape checks only)."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from monai_remedis.models.omni import OmniModel


class _Flat(nn.Module):
    feature_dim = 16

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)[:, :16]


def test_each_head_has_its_own_classes_on_the_shared_projection() -> None:
    model = OmniModel(_Flat(), {"breast": 2, "mias": 6}, projector_dim=8)
    x = torch.rand(3, 1, 4, 4)
    features, logits = model(x, "mias")
    assert features.shape == (3, 8) and logits.shape == (3, 6)
    assert model.head_network("breast")(x).shape == (3, 2)
    assert model.head_names == ["breast", "mias"]


def test_without_projector_the_heads_sit_on_the_backbone_features() -> None:
    model = OmniModel(_Flat(), {"a": 3}, projector_dim=None)
    x = torch.rand(2, 1, 4, 4)
    assert torch.equal(model.features(x), x.flatten(1)[:, :16])


def test_unknown_head_and_empty_heads_are_refused() -> None:
    model = OmniModel(_Flat(), {"a": 2, "b": 2})
    with pytest.raises(KeyError, match="Known heads: a, b"):
        model(torch.rand(1, 1, 4, 4), "c")
    with pytest.raises(ValueError, match="at least one head"):
        OmniModel(_Flat(), {})
    with pytest.raises(ValueError, match="at least one class"):
        OmniModel(_Flat(), {"a": 0})
