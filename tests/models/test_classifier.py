"""The classifier standardises features before its zero-initialised head, so the head learns at any feature scale."""

from __future__ import annotations

import torch
import torch.nn as nn

from monai_remedis.models.classifier import Classifier


class _Offset(nn.Module):
    """Features = a large constant + a tiny informative signal (the post-SSL scale of issue 11)."""

    feature_dim = 4
    spatial_dims = 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 12.0 + 3e-4 * x.flatten(1)[:, :4]


def _fit(model: Classifier, x: torch.Tensor, y: torch.Tensor, steps: int = 100) -> float:
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(steps):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model.train()(x), y).backward()
        optimizer.step()
    with torch.no_grad():
        return float((model.eval()(x).argmax(1) == y).float().mean())


def test_standardised_head_learns_from_tiny_feature_variation() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 1, 2, 2, generator=gen)
    y = (x.flatten(1)[:, 0] > 0).long()
    assert _fit(Classifier(_Offset(), 2, freeze_backbone=True), x, y) > 0.95
    assert _fit(Classifier(_Offset(), 2, freeze_backbone=True, standardise_features=False), x, y) < 0.8


def test_head_starts_at_zero_and_state_dict_keys() -> None:
    model = Classifier(_Offset(), 3)
    assert torch.count_nonzero(model.head[1].weight) == 0 and torch.count_nonzero(model.head[1].bias) == 0
    assert {"feature_norm.running_mean", "feature_norm.running_var", "head.1.weight"} <= set(model.state_dict())
    assert not list(model.feature_norm.parameters())  # no affine parameters: nothing init-specific to learn
