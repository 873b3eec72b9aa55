"""Build backbones by registered name, optionally loading weights from a local file."""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from monai_remedis.backbones.weights import load_backbone_weights
from monai_remedis.plugins.manager import get_registries


def list_backbones(pattern: str = "*") -> list[str]:
    """Registered backbone names matching a wildcard pattern."""
    return get_registries()["backbone"].names(pattern)


def create_backbone(
    name: str, in_channels: int = 3, spatial_dims: int = 2, weights: str | None = None, **kwargs: Any
) -> nn.Module:
    """Create a registered backbone.

    Args:
        name: registered backbone name (``python -m monai_remedis plugins`` lists them).
        in_channels: image channels.
        spatial_dims: 2 or 3.
        weights: optional local weights file (BiT ``.npz``, timm/torch state dict, or a monai-remedis
            stage checkpoint); see :func:`monai_remedis.backbones.weights.load_backbone_weights`.
        kwargs: passed to the backbone factory.

    Returns:
        an ``nn.Module`` mapping ``(B, C, *spatial)`` to ``(B, feature_dim)``.
    """
    model = get_registries()["backbone"].create(name, in_channels=in_channels, spatial_dims=spatial_dims, **kwargs)
    for attr in ("feature_dim", "spatial_dims"):
        if not isinstance(getattr(model, attr, None), int):
            raise TypeError(f"backbone '{name}' breaks the backbone contract: missing integer attribute '{attr}'.")
    if weights:
        load_backbone_weights(model, weights)
    return model
