"""3D encoders for CT/MRI volumes, from MONAI's ResNet."""

from __future__ import annotations

import torch.nn as nn
from monai.networks.nets import resnet

RESNET3D_DEPTHS = {"resnet10_3d": "resnet10", "resnet18_3d": "resnet18", "resnet34_3d": "resnet34"}


def create_resnet3d(name: str, in_channels: int = 1, spatial_dims: int = 3) -> nn.Module:
    """Create a MONAI ResNet feature extractor mapping ``(B, C, D, H, W)`` to ``(B, feature_dim)``.

    Uses ``conv1_t_stride=2`` (MONAI's default stride 1 is 4-6x slower on small volumes).
    """
    if name not in RESNET3D_DEPTHS:
        raise KeyError(f"Unknown 3D backbone '{name}'. Known: {', '.join(sorted(RESNET3D_DEPTHS))}.")
    factory = getattr(resnet, RESNET3D_DEPTHS[name])
    model = factory(spatial_dims=spatial_dims, n_input_channels=in_channels, feed_forward=False, conv1_t_stride=2)
    model.feature_dim = 512
    model.spatial_dims = spatial_dims
    return model
