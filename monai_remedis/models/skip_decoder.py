"""A U-Net decoder over a classification backbone's stages: encoder features with skip connections, to an image.

:func:`encoder_features` reads the multi-scale features of the backbones we ship (timm models through
``forward_intermediates``, MONAI's ``ResNet`` stage by stage), shallow to deep. :class:`SkipDecoder` upsamples the
deepest one back to the input size, concatenating each shallower feature on the way (MONAI ``UnetBasicBlock`` after
each merge), as the Models Genesis encoder-decoder does.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from monai.networks.blocks import Convolution, UnetBasicBlock
from monai.networks.nets import ResNet

__all__ = ["SkipDecoder", "encoder_features", "feature_channels", "input_channels"]


def encoder_features(backbone: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Features of ``backbone`` at each stage for input ``x``, shallow to deep.

    Args:
        backbone: a timm model with ``forward_intermediates`` (BiT ResNetV2) or a MONAI ``ResNet``.
        x: ``(B, C, *spatial)``.

    Raises:
        TypeError: for a backbone exposing neither.
    """
    if isinstance(backbone, ResNet):
        x = backbone.act(backbone.bn1(backbone.conv1(x)))
        features = [x]
        if not backbone.no_max_pool:
            x = backbone.maxpool(x)
        for layer in (backbone.layer1, backbone.layer2, backbone.layer3, backbone.layer4):
            x = layer(x)
            features.append(x)
        return features
    if hasattr(backbone, "forward_intermediates"):
        # norm=True: the deepest feature goes through the final norm, so every encoder parameter gets a gradient
        # (DDP needs that) and the pre-activation net's last norm is trained for transfer
        return list(backbone.forward_intermediates(x, norm=True, intermediates_only=True))
    raise TypeError(
        f"{type(backbone).__name__} exposes no stage features: an encoder-decoder needs a timm backbone "
        "(forward_intermediates) or a MONAI ResNet."
    )


def input_channels(backbone: nn.Module) -> int:
    """Input channels of ``backbone`` (those of its first convolution)."""
    for module in backbone.modules():
        if isinstance(module, (nn.Conv2d, nn.Conv3d)):
            return int(module.in_channels)
    raise TypeError(f"{type(backbone).__name__} has no convolution to read its input channels from.")


@torch.no_grad()
def feature_channels(backbone: nn.Module, spatial_dims: int, in_channels: int, size: int = 32) -> list[int]:
    """Channels of each stage feature, from one forward pass of a small zero input in eval mode."""
    was_training = backbone.training
    backbone.eval()
    try:
        features = encoder_features(backbone, torch.zeros(1, in_channels, *([size] * spatial_dims)))
    finally:
        backbone.train(was_training)
    return [int(f.shape[1]) for f in features]


class SkipDecoder(nn.Module):
    """Decode encoder features (shallow to deep) to an image of the input size.

    From the deepest feature, each step upsamples (linear interpolation to the skip's size, so odd sizes work),
    concatenates the skip and applies a MONAI ``UnetBasicBlock`` (two conv-norm-act). A 2x transposed convolution
    gives ``out_channels`` (then interpolation where the size still differs). No convolution block runs at the full
    input size: on CPU its narrow 3D convolutions cost more than the whole encoder, and the stride-2 stem skip
    already carries the input's detail.

    Args:
        spatial_dims: 2 or 3.
        skip_channels: channels of the encoder features, shallow to deep.
        out_channels: channels of the output image.
        decoder_channels: output channels of each merge, shallow to deep (default: half the skip's, 16 to 128).
        norm: MONAI norm of the blocks (group norm works with any batch size).
    """

    def __init__(
        self,
        spatial_dims: int,
        skip_channels: Sequence[int],
        out_channels: int,
        decoder_channels: Sequence[int] | None = None,
        norm: str | tuple = ("group", {"num_groups": 8}),
    ) -> None:
        super().__init__()
        skips = list(skip_channels)
        widths = list(decoder_channels or [max(16, min(c // 2, 128)) for c in skips[:-1]])
        if len(widths) != len(skips) - 1:
            raise ValueError(f"decoder_channels needs {len(skips) - 1} entries (one per skip), got {len(widths)}.")
        self.mode = "bilinear" if spatial_dims == 2 else "trilinear"
        blocks = []
        below = skips[-1]
        for skip, width in reversed(list(zip(skips[:-1], widths, strict=True))):
            blocks.append(UnetBasicBlock(spatial_dims, below + skip, width, kernel_size=3, stride=1, norm_name=norm))
            below = width
        self.blocks = nn.ModuleList(blocks)
        self.out = Convolution(
            spatial_dims, below, out_channels, strides=2, kernel_size=2, padding=0, is_transposed=True, conv_only=True
        )

    def _up(self, x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
        return F.interpolate(x, size=tuple(size), mode=self.mode, align_corners=False)

    def forward(self, features: Sequence[torch.Tensor], output_size: Sequence[int]) -> torch.Tensor:
        """Decode ``features`` (shallow to deep) to ``(B, out_channels, *output_size)`` (no output activation)."""
        x = features[-1]
        for block, skip in zip(self.blocks, reversed(features[:-1]), strict=True):
            x = block(torch.cat([self._up(x, skip.shape[2:]), skip], dim=1))
        x = self.out(x)  # the shallowest skip is at half the input size (stride-2 stems): one 2x transposed conv
        return x if tuple(x.shape[2:]) == tuple(output_size) else self._up(x, output_size)
