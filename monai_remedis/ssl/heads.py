"""Projection/prediction heads for self-supervised strategies."""

from __future__ import annotations

import torch.nn as nn


def projection_head(
    in_dim: int, hidden_dim: int = 2048, out_dim: int = 128, num_layers: int = 2, last_bn: bool = True
) -> nn.Sequential:
    """MLP head Linear-BN-ReLU (x ``num_layers-1``) then Linear(-BN), as in SimCLR v2 / REMEDIS.

    Args:
        in_dim: backbone feature dimension.
        hidden_dim: width of hidden layers.
        out_dim: output (embedding) dimension; 128 for SimCLR.
        num_layers: number of Linear layers (>= 1).
        last_bn: append a BatchNorm1d without affine to the output (SimCLR v2).
    """
    if num_layers < 1:
        raise ValueError(f"num_layers must be >= 1, got {num_layers}.")
    layers: list[nn.Module] = []
    dim = in_dim
    for _ in range(num_layers - 1):
        layers += [nn.Linear(dim, hidden_dim, bias=False), nn.BatchNorm1d(hidden_dim), nn.ReLU(inplace=True)]
        dim = hidden_dim
    layers.append(nn.Linear(dim, out_dim, bias=not last_bn))
    if last_bn:
        layers.append(nn.BatchNorm1d(out_dim, affine=False))
    return nn.Sequential(*layers)
