"""A small convolutional encoder for quick CPU experiments, 2D or 3D."""

from __future__ import annotations

import torch
import torch.nn as nn


class ConvNet(nn.Module):
    """Three conv-GroupNorm-ReLU blocks (stride 1, 2, 2) and global average pooling.

    Fulfils the monai-remedis backbone contract: ``(B, C, *spatial) -> (B, feature_dim)``, with ``feature_dim``
    and ``spatial_dims`` attributes.

    Args:
        in_channels: image channels.
        spatial_dims: 2 or 3.
        width: channels of the first block; the blocks have ``width``, ``2*width`` and ``4*width`` channels.

    Example:
        >>> import torch
        >>> net = ConvNet(in_channels=1, width=8)
        >>> net(torch.randn(2, 1, 28, 28)).shape
        torch.Size([2, 32])
    """

    def __init__(self, in_channels: int = 1, spatial_dims: int = 2, width: int = 32) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}.")
        conv = nn.Conv2d if spatial_dims == 2 else nn.Conv3d
        pool = nn.AdaptiveAvgPool2d if spatial_dims == 2 else nn.AdaptiveAvgPool3d
        layers: list[nn.Module] = []
        channels = in_channels
        for i, stride in enumerate((1, 2, 2)):
            out = width * 2**i
            layers += [conv(channels, out, 3, stride=stride, padding=1, bias=False), nn.GroupNorm(8, out), nn.ReLU()]
            channels = out
        layers += [pool(1), nn.Flatten()]
        self.net = nn.Sequential(*layers)
        self.feature_dim = channels
        self.spatial_dims = spatial_dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
