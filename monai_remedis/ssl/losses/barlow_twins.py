"""Barlow Twins: drive the cross-correlation matrix of the two views' embeddings to the identity.

Reference: Zbontar et al., "Barlow Twins: Self-Supervised Learning via Redundancy Reduction", ICML 2021.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from monai_remedis.ssl.distributed import gather_with_grad
from monai_remedis.ssl.losses.utils import full_precision


def batch_standardise(z: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Standardise each dimension over the batch (BatchNorm without affine, biased variance)."""
    return (z - z.mean(dim=0)) / torch.sqrt(z.var(dim=0, unbiased=False) + eps)


class BarlowTwinsLoss(nn.Module):
    """``sum_i (1 - C_ii)^2 + lambda * sum_{i != j} C_ij^2`` with ``C`` the cross-correlation of the two views.

    ``C = z0_n^T z1_n / N`` where ``z*_n`` are the embeddings standardised over the batch of ``N``. Under DDP the
    embeddings are gathered from every rank with gradient flow before standardising, so every rank computes
    the loss of the global batch (statistics and correlations over all ``N``) and DDP's gradient averaging gives
    exactly the gradient of the single-process loss.

    Args:
        lambda_offdiag: weight of the redundancy-reduction (off-diagonal) term (paper: 5e-3).
        gather_distributed: gather embeddings from all ranks when running distributed.
        eps: added to the variance when standardising.

    Example:
        >>> import torch
        >>> loss_fn = BarlowTwinsLoss(lambda_offdiag=5e-3)
        >>> z0, z1 = torch.randn(16, 64), torch.randn(16, 64)
        >>> on_diag, off_diag = loss_fn.components(z0, z1)
        >>> loss = loss_fn(z0, z1)  # on_diag + lambda * off_diag
    """

    def __init__(self, lambda_offdiag: float = 5e-3, gather_distributed: bool = True, eps: float = 1e-5) -> None:
        super().__init__()
        if lambda_offdiag < 0:
            raise ValueError(f"lambda_offdiag must be >= 0, got {lambda_offdiag}.")
        self.lambda_offdiag = lambda_offdiag
        self.gather_distributed = gather_distributed
        self.eps = eps

    def cross_correlation(self, z0: torch.Tensor, z1: torch.Tensor) -> torch.Tensor:
        """The ``(D, D)`` cross-correlation matrix of the (gathered) embeddings."""
        if z0.shape != z1.shape or z0.ndim != 2:
            raise ValueError(f"expected two (B, D) embeddings, got {tuple(z0.shape)}, {tuple(z1.shape)}.")
        z0, z1 = full_precision(z0), full_precision(z1)
        if self.gather_distributed:
            z0, z1 = gather_with_grad(z0), gather_with_grad(z1)
        if z0.shape[0] < 2:
            raise ValueError("Barlow Twins needs at least 2 samples in the (global) batch to standardise.")
        return batch_standardise(z0, self.eps).T @ batch_standardise(z1, self.eps) / z0.shape[0]

    def components(self, z0: torch.Tensor, z1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(on_diagonal, off_diagonal)`` terms, before weighting."""
        c = self.cross_correlation(z0, z1)
        diag = torch.diagonal(c)
        on_diag = (diag - 1).pow(2).sum()
        off_diag = c.pow(2).sum() - diag.pow(2).sum()
        return on_diag, off_diag

    def forward(self, z0: torch.Tensor, z1: torch.Tensor) -> torch.Tensor:
        """``on_diagonal + lambda_offdiag * off_diagonal``."""
        on_diag, off_diag = self.components(z0, z1)
        return on_diag + self.lambda_offdiag * off_diag
