"""NT-Xent: the normalised temperature-scaled cross-entropy of SimCLR.

Reference: Chen et al., "A Simple Framework for Contrastive Learning of Visual Representations", ICML 2020.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from monai_remedis.ssl.distributed import gather_with_grad, rank
from monai_remedis.ssl.losses.utils import full_precision


class NTXentLoss(nn.Module):
    """NT-Xent over two views, with negatives gathered across ranks.

    For each of the 2N embeddings, the positive is the other view of the same image and the negatives are
    the other 2N-2 embeddings of the (global) batch. Under DDP the local rows are scored against the
    embeddings of every rank, so the loss on R ranks x B equals the loss on one batch of R x B.

    Args:
        temperature: softmax temperature (REMEDIS/SimCLR use 0.1).
        gather_distributed: gather negatives from all ranks when running distributed.

    Example:
        >>> loss_fn = NTXentLoss(temperature=0.1)
        >>> z0, z1 = torch.randn(8, 128), torch.randn(8, 128)
        >>> loss = loss_fn(z0, z1)
    """

    def __init__(self, temperature: float = 0.1, gather_distributed: bool = True) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}.")
        self.temperature = temperature
        self.gather_distributed = gather_distributed

    def forward(self, z0: torch.Tensor, z1: torch.Tensor) -> torch.Tensor:
        """Loss for projections ``z0``, ``z1`` of shape ``(B, D)`` (two views of the same B images)."""
        if z0.shape != z1.shape or z0.ndim != 2:
            raise ValueError(
                f"expected two (B, D) projections of equal shape, got {tuple(z0.shape)}, {tuple(z1.shape)}."
            )
        z0, z1 = F.normalize(full_precision(z0), dim=1), F.normalize(full_precision(z1), dim=1)
        local = torch.cat([z0, z1], dim=0)  # (2B, D)
        batch = z0.shape[0]
        if self.gather_distributed:
            g0, g1 = gather_with_grad(local[:batch]), gather_with_grad(local[batch:])
            offset = rank() * batch
        else:
            g0, g1, offset = local[:batch], local[batch:], 0
        everything = torch.cat([g0, g1], dim=0)  # (2N, D), view-0 block then view-1 block
        total = g0.shape[0]
        logits = local @ everything.T / self.temperature  # (2B, 2N)
        idx = torch.arange(batch, device=z0.device) + offset
        self_cols = torch.cat([idx, idx + total])
        pos_cols = torch.cat([idx + total, idx])
        self_mask = torch.zeros_like(logits, dtype=torch.bool)
        self_mask[torch.arange(2 * batch, device=z0.device), self_cols] = True
        logits = logits.masked_fill(self_mask, float("-inf"))  # an embedding is not its own negative
        return F.cross_entropy(logits, pos_cols)
