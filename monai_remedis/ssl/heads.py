"""Projection/prediction heads for self-supervised strategies."""

from __future__ import annotations

import torch.nn as nn


def projection_head(
    in_dim: int,
    hidden_dim: int = 2048,
    out_dim: int = 128,
    num_layers: int = 2,
    last_bn: bool = True,
    batch_norm: bool = True,
) -> nn.Sequential:
    """MLP head Linear-BN-ReLU (x ``num_layers-1``) then Linear(-BN), as in SimCLR v2 / REMEDIS.

    The same builder gives the heads of the other strategies: MoCo v2's ``Linear-ReLU-Linear``
    (``batch_norm=False, last_bn=False``), BYOL's projector and predictor (``num_layers=2, last_bn=False``) and
    the three-layer Barlow Twins / VICReg expanders (``num_layers=3, last_bn=False``). Under DDP on CUDA the SSL
    stage converts every ``BatchNorm`` to ``SyncBatchNorm`` so the statistics span the global batch.

    Args:
        in_dim: backbone feature dimension.
        hidden_dim: width of hidden layers.
        out_dim: output (embedding) dimension; 128 for SimCLR.
        num_layers: number of Linear layers (>= 1).
        last_bn: append a BatchNorm1d without affine to the output (SimCLR v2).
        batch_norm: BatchNorm1d after each hidden Linear (False: hidden Linear layers get a bias instead).

    Example:
        >>> import torch
        >>> head = projection_head(512, 512, 128, num_layers=2, last_bn=False, batch_norm=False)
        >>> head(torch.randn(4, 512)).shape
        torch.Size([4, 128])
    """
    if num_layers < 1:
        raise ValueError(f"num_layers must be >= 1, got {num_layers}.")
    layers: list[nn.Module] = []
    dim = in_dim
    for _ in range(num_layers - 1):
        layers.append(nn.Linear(dim, hidden_dim, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm1d(hidden_dim))
        layers.append(nn.ReLU(inplace=True))
        dim = hidden_dim
    layers.append(nn.Linear(dim, out_dim, bias=not last_bn))
    if last_bn:
        layers.append(nn.BatchNorm1d(out_dim, affine=False))
    return nn.Sequential(*layers)
