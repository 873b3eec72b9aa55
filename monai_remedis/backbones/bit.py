"""Big Transfer (BiT) backbones: pre-activation ResNetV2 with GroupNorm and weight-standardised convs.

The architectures are timm's ``ResNetV2`` (the canonical port that also reads the official BiT ``.npz``).
Each factory returns the timm model itself with its classifier removed, so its ``state_dict`` keys are
timm's and published timm checkpoints load unchanged. Two attributes are added to satisfy the backbone
contract: ``feature_dim`` and ``spatial_dims``.

Reference: Kolesnikov et al., "Big Transfer (BiT): General Visual Representation Learning", ECCV 2020.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import partial

import timm
import torch.nn as nn
from timm.layers import GroupNormAct, StdConv2d
from timm.models.resnetv2 import ResNetV2

BIT_TIMM_NAMES = {
    "bit_resnet50x1": "resnetv2_50x1_bit",
    "bit_resnet101x1": "resnetv2_101x1_bit",
    "bit_resnet50x3": "resnetv2_50x3_bit",
    "bit_resnet152x2": "resnetv2_152x2_bit",
}
"""Our names for the published BiT architectures -> timm model names (the BiT-M/S checkpoints fit these)."""

SMALL_BIT_LAYERS = {
    "bit_resnet18": (2, 2, 2, 2),
    "bit_resnet34": (3, 4, 6, 3),
    "bit_resnet18_small": (2, 2, 2, 2),
    "bit_resnet34_small": (3, 4, 6, 3),
}
"""BiT-style (GN + WS, pre-activation) basic-block ResNets for practical CPU runs; no published weights.
The ``*_small`` variants use :data:`SMALL_IMAGE_STEM`."""

SMALL_IMAGE_STEM = {"kernel_size": 3, "stride": 2}
"""Stem of the ``*_small`` variants, for 28-64 px inputs: one 3x3 stride-2 weight-standardised conv and no max-pool
(total stride 16 instead of 32). BiT's 7x7 stride-2 conv + max-pool leaves a 28 px image a 7x7 map after the stem
and 1x1 in the last stage, where stage-1 training collapsed the pooled features to an effective rank of about 2;
here the stages see 14, 7, 4 and 2 px. A stride-1 stem costs 2.8x the CPU time of BiT's at 28 px (measured),
stride 2 about 1.25x. The stem keeps the key ``stem.conv.weight`` (3x3 instead of 7x7)."""


def _as_backbone(model: nn.Module, spatial_dims: int = 2) -> nn.Module:
    model.feature_dim = int(model.num_features)
    model.spatial_dims = spatial_dims
    return model


def create_bit(name: str, in_channels: int = 3, spatial_dims: int = 2, drop_path_rate: float = 0.0) -> nn.Module:
    """Create a BiT ResNetV2 feature extractor (global average pooled, no classifier).

    Args:
        name: one of :data:`BIT_TIMM_NAMES` or :data:`SMALL_BIT_LAYERS` (``*_small``: for 28-64 px images).
        in_channels: image channels (1 for grayscale radiographs, 3 for RGB).
        spatial_dims: must be 2; BiT is a 2D architecture.
        drop_path_rate: stochastic depth rate.

    Returns:
        the timm ``ResNetV2`` with ``num_classes=0`` and ``feature_dim``/``spatial_dims`` attributes.
    """
    if spatial_dims != 2:
        raise ValueError(f"backbone '{name}' is 2D only; got spatial_dims={spatial_dims}. Use a *_3d backbone.")
    if name in BIT_TIMM_NAMES:
        model = timm.create_model(
            BIT_TIMM_NAMES[name], pretrained=False, num_classes=0, in_chans=in_channels, drop_path_rate=drop_path_rate
        )
    elif name in SMALL_BIT_LAYERS:
        model = ResNetV2(
            layers=list(SMALL_BIT_LAYERS[name]),
            channels=(64, 128, 256, 512),
            num_classes=0,
            in_chans=in_channels,
            stem_type="fixed",
            basic=True,
            bottle_ratio=1.0,
            conv_layer=partial(StdConv2d, eps=1e-8),
            norm_layer=partial(GroupNormAct, num_groups=32),
            drop_path_rate=drop_path_rate,
        )
        if name.endswith("_small"):
            padding = SMALL_IMAGE_STEM["kernel_size"] // 2
            conv = StdConv2d(in_channels, 64, padding=padding, eps=1e-8, **SMALL_IMAGE_STEM)
            model.stem = nn.Sequential(OrderedDict(conv=conv))
            for info in model.feature_info[1:]:  # no max-pool: every stage is 2x less reduced
                info["reduction"] //= 2
    else:
        known = ", ".join(sorted([*BIT_TIMM_NAMES, *SMALL_BIT_LAYERS]))
        raise KeyError(f"Unknown BiT backbone '{name}'. Known: {known}.")
    return _as_backbone(model)
