"""Small deterministic models and batches shared by the SSL tests and the DDP worker."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from monai_remedis.ssl import SSLStrategy, create_strategy
from monai_remedis.ssl.plugin import BUILTIN_STRATEGIES

SMALL_KWARGS: dict[str, dict[str, Any]] = {
    "simclr": {"hidden_dim": 16, "projection_dim": 8},
    "micle": {"hidden_dim": 16, "projection_dim": 8},
    "relic": {"hidden_dim": 16, "projection_dim": 8},
    "moco_v2": {"hidden_dim": 16, "projection_dim": 8, "queue_size": 12, "momentum": 0.9},
    "byol": {"hidden_dim": 16, "projection_dim": 8, "base_momentum": 0.9},
    "barlow_twins": {"hidden_dim": 16, "projection_dim": 8},
}
"""Strategy kwargs that keep the heads tiny (and make momentum effects visible in one step)."""

BUILTIN = sorted(name for name, (cls, _) in BUILTIN_STRATEGIES.items() if not cls.needs_feature_maps)
"""The built-in strategies that work on any backbone's pooled features, as registered (the feature-map strategies,
Genesis and PEAC, have their own tests; every registered strategy gets the contract test, test_registry_contract)."""


class TinyBackbone(nn.Module):
    """A 2D conv encoder without normalisation layers: ``(B, 1, H, W) -> (B, 8)``."""

    spatial_dims = 2

    def __init__(self, feature_dim: int = 8) -> None:
        super().__init__()
        self.feature_dim = feature_dim
        self.net = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
            nn.Linear(16, feature_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def strip_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm in ``module`` by Identity, in place (per-rank BN statistics differ from global ones)."""
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(module, name, nn.Identity())
        else:
            strip_batchnorm(child)
    return module


def build_strategy(name: str, seed: int = 0, batchnorm: bool = True, **overrides: Any) -> SSLStrategy:
    """A registered strategy around a seeded :class:`TinyBackbone`, with tiny heads."""
    torch.manual_seed(seed)
    strategy = create_strategy(name, backbone=TinyBackbone(), **(SMALL_KWARGS.get(name, {}) | overrides))
    return strategy if batchnorm else strip_batchnorm(strategy)


def make_views(batch: int, num_views: int = 2, size: int = 8, seed: int = 1) -> list[torch.Tensor]:
    """Seeded random views ``(batch, 1, size, size)``."""
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, 1, size, size, generator=gen) for _ in range(num_views)]
