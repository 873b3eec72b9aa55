"""The VICReg loss: invariance, variance and covariance terms.

Reference: Bardes, Ponce & LeCun, "VICReg: Variance-Invariance-Covariance Regularization for Self-Supervised
Learning", ICLR 2022.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from monai_remedis.plugin_api import full_precision, gather_with_grad


def _off_diagonal_sq_sum(c: torch.Tensor) -> torch.Tensor:
    return c.pow(2).sum() - torch.diagonal(c).pow(2).sum()


class VICRegLoss(nn.Module):
    """``lambda * invariance + mu * variance + nu * covariance`` of two views' embeddings.

    * invariance: mean squared error between the two views' embeddings;
    * variance: mean over dimensions of ``relu(gamma - sqrt(var + eps))``, averaged over the two views;
    * covariance: sum of squared off-diagonal covariances divided by the dimension, summed over the two views.

    Under DDP the embeddings are gathered from every rank with gradient flow, so every rank computes the loss of
    the global batch.

    Args:
        lambda_invariance: weight of the invariance term (paper: 25).
        mu_variance: weight of the variance term (paper: 25).
        nu_covariance: weight of the covariance term (paper: 1).
        gamma: target standard deviation (paper: 1).
        eps: added to the variance before the square root (paper: 1e-4).
        gather_distributed: gather embeddings from all ranks when running distributed.

    Example:
        >>> import torch
        >>> loss_fn = VICRegLoss()
        >>> z0, z1 = torch.randn(16, 32), torch.randn(16, 32)
        >>> invariance, variance, covariance = loss_fn.components(z0, z1)
        >>> loss = loss_fn(z0, z1)
    """

    def __init__(
        self,
        lambda_invariance: float = 25.0,
        mu_variance: float = 25.0,
        nu_covariance: float = 1.0,
        gamma: float = 1.0,
        eps: float = 1e-4,
        gather_distributed: bool = True,
    ) -> None:
        super().__init__()
        self.lambda_invariance = lambda_invariance
        self.mu_variance = mu_variance
        self.nu_covariance = nu_covariance
        self.gamma = gamma
        self.eps = eps
        self.gather_distributed = gather_distributed

    def components(self, z0: torch.Tensor, z1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(invariance, variance, covariance)`` before weighting."""
        if z0.shape != z1.shape or z0.ndim != 2:
            raise ValueError(f"expected two (B, D) embeddings, got {tuple(z0.shape)}, {tuple(z1.shape)}.")
        z0, z1 = full_precision(z0), full_precision(z1)
        if self.gather_distributed:
            z0, z1 = gather_with_grad(z0), gather_with_grad(z1)
        n, dim = z0.shape
        if n < 2:
            raise ValueError("VICReg needs at least 2 samples in the (global) batch.")
        invariance = F.mse_loss(z0, z1)
        variance = z0.new_zeros(())
        covariance = z0.new_zeros(())
        for z in (z0, z1):
            z = z - z.mean(dim=0)
            std = torch.sqrt(z.var(dim=0) + self.eps)
            variance = variance + F.relu(self.gamma - std).mean() / 2
            covariance = covariance + _off_diagonal_sq_sum(z.T @ z / (n - 1)) / dim
        return invariance, variance, covariance

    def forward(self, z0: torch.Tensor, z1: torch.Tensor) -> torch.Tensor:
        """The weighted sum of the three terms."""
        invariance, variance, covariance = self.components(z0, z1)
        return self.lambda_invariance * invariance + self.mu_variance * variance + self.nu_covariance * covariance
