"""Dense (per-patch) features of a backbone: the last feature map of a CNN or the patch tokens of a ViT.

Dense self-supervised methods (PEAC) need one embedding per image patch besides the pooled one. timm models expose
both through ``forward_features`` (a ``(B, C, h, w)`` map for ResNetV2, ``(B, prefix + h*w, C)`` tokens for a ViT) and
``forward_head(..., pre_logits=True)`` (the pooled vector the backbone contract returns), so one forward pass gives
both.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def dense_features(backbone: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pooled ``(B, D)`` and dense ``(B, D, h, w)`` features of ``x`` in one forward pass.

    Args:
        backbone: a timm-style backbone with ``forward_features`` (and ``forward_head``; without it the pooled feature
            is the mean of the dense one). ViTs need a ``patch_size`` attribute or timm's ``patch_embed``.
        x: ``(B, C, H, W)`` images.

    Raises:
        TypeError: the backbone has no ``forward_features``.

    Example:
        >>> import torch
        >>> from monai_remedis.backbones import create_backbone
        >>> pooled, dense = dense_features(create_backbone("vit_mini_p4", in_channels=1), torch.randn(2, 1, 28, 28))
        >>> pooled.shape, dense.shape
        (torch.Size([2, 192]), torch.Size([2, 192, 7, 7]))
    """
    if not hasattr(backbone, "forward_features"):
        raise TypeError(
            f"{type(backbone).__name__} has no forward_features, so its patch embeddings are unknown; "
            "use a timm backbone (bit_resnet*, vit_*)."
        )
    features = backbone.forward_features(x)
    if features.ndim == 4:
        dense = features
    elif features.ndim == 3:
        tokens = features[:, int(getattr(backbone, "num_prefix_tokens", 0)) :]
        patch = getattr(backbone, "patch_size", None) or backbone.patch_embed.patch_size[0]
        rows = x.shape[-2] // int(patch)
        dense = tokens.transpose(1, 2).reshape(x.shape[0], tokens.shape[-1], rows, tokens.shape[1] // rows)
    else:
        raise ValueError(f"forward_features returned a {features.ndim}-d tensor; expected a map or tokens.")
    if hasattr(backbone, "forward_head"):
        pooled = backbone.forward_head(features, pre_logits=True)
    else:
        pooled = dense.mean(dim=(2, 3))
    return pooled, dense


def to_cell_grid(dense: torch.Tensor, cells: int) -> torch.Tensor:
    """Resample a ``(B, D, h, w)`` feature map onto a ``cells x cells`` grid of image cells.

    Exact when the map already has ``cells`` per side (a ViT whose patch is the cell) or a multiple of it (average
    pooling of the sub-cells). A coarser map (a ResNet with stride 32 on cells of 4-8 px) is interpolated bilinearly,
    so each cell's embedding then mixes its neighbours: the correspondence is approximate.

    Example:
        >>> import torch
        >>> to_cell_grid(torch.randn(2, 8, 14, 14), 7).shape, to_cell_grid(torch.randn(2, 8, 1, 1), 7).shape
        (torch.Size([2, 8, 7, 7]), torch.Size([2, 8, 7, 7]))
    """
    h, w = dense.shape[-2:]
    if (h, w) == (cells, cells):
        return dense
    if h % cells == 0 and w % cells == 0:
        return F.avg_pool2d(dense, kernel_size=(h // cells, w // cells))
    if h > cells and w > cells:
        return F.adaptive_avg_pool2d(dense, cells)
    return F.interpolate(dense, size=(cells, cells), mode="bilinear", align_corners=False)
