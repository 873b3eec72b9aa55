"""Small Vision Transformers for 28-64 px images, with patch sizes that match a PEAC grid cell.

The architecture is timm's ``VisionTransformer`` (so timm's tools and checkpoints apply), built with average pooling
over patch tokens (no class token) and ``dynamic_img_size``: the position embeddings are interpolated for inputs of
another size (32 px CIFAR images in stage 1, 28 px crops in SSL), as long as the side is a multiple of the patch.
The patch tokens are the dense features PEAC matches (:func:`monai_remedis.backbones.dense.dense_features`).

Reference: Dosovitskiy et al., "An Image is Worth 16x16 Words", ICLR 2021; the Ti(ny) width from Touvron et al.,
"Training data-efficient image transformers" (DeiT), ICML 2021.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn as nn
from timm.models.vision_transformer import VisionTransformer


@dataclass(frozen=True)
class ViTConfig:
    """Shape of one registered ViT: patch side, native image side (position-embedding grid), width, depth, heads."""

    patch_size: int
    img_size: int
    embed_dim: int
    depth: int
    num_heads: int


VIT_CONFIGS = {
    "vit_tiny_p4": ViTConfig(patch_size=4, img_size=28, embed_dim=192, depth=12, num_heads=3),
    "vit_tiny_p8": ViTConfig(patch_size=8, img_size=64, embed_dim=192, depth=12, num_heads=3),
    "vit_mini_p4": ViTConfig(patch_size=4, img_size=28, embed_dim=192, depth=4, num_heads=3),
}
"""Registered name -> shape. ``p4``: 4 px patches for 28-40 px images (7x7-10x10 tokens); ``p8``: 8 px patches for
64 px images (8x8 tokens); ``vit_mini_p4`` is a 4-block ViT-Ti for CPU runs."""


def create_vit(name: str, in_channels: int = 3, spatial_dims: int = 2, drop_path_rate: float = 0.0) -> nn.Module:
    """Create a small ViT feature extractor mapping ``(B, C, H, W)`` to ``(B, embed_dim)`` (mean of patch tokens).

    Args:
        name: one of :data:`VIT_CONFIGS`.
        in_channels: image channels.
        spatial_dims: must be 2.
        drop_path_rate: stochastic depth rate.

    Returns:
        the timm ``VisionTransformer`` with ``feature_dim``, ``spatial_dims`` and ``patch_size`` attributes; its
        ``forward_features`` returns the normalised patch tokens ``(B, H/p * W/p, embed_dim)``.

    Example:
        >>> import torch
        >>> vit = create_vit("vit_mini_p4", in_channels=1)
        >>> vit(torch.randn(2, 1, 28, 28)).shape, vit.forward_features(torch.randn(2, 1, 32, 32)).shape
        (torch.Size([2, 192]), torch.Size([2, 64, 192]))
    """
    if name not in VIT_CONFIGS:
        raise KeyError(f"Unknown ViT backbone '{name}'. Known: {', '.join(sorted(VIT_CONFIGS))}.")
    if spatial_dims != 2:
        raise ValueError(f"backbone '{name}' is 2D only; got spatial_dims={spatial_dims}.")
    cfg = VIT_CONFIGS[name]
    model = VisionTransformer(
        img_size=cfg.img_size,
        patch_size=cfg.patch_size,
        in_chans=in_channels,
        num_classes=0,
        global_pool="avg",
        class_token=False,
        fc_norm=False,  # the final LayerNorm acts on every token, so patch tokens and their mean are normalised
        embed_dim=cfg.embed_dim,
        depth=cfg.depth,
        num_heads=cfg.num_heads,
        dynamic_img_size=True,
        drop_path_rate=drop_path_rate,
    )
    model.feature_dim = int(model.num_features)
    model.spatial_dims = 2
    model.patch_size = cfg.patch_size
    return model
