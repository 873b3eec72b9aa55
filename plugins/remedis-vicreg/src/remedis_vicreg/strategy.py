"""VICReg as a monai-remedis SSL strategy.

Reference: Bardes, Ponce & LeCun, "VICReg: Variance-Invariance-Covariance Regularization for Self-Supervised
Learning", ICLR 2022.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
from monai_remedis.plugin_api import SSLStrategy, collapse_logs, projection_head

from remedis_vicreg.loss import VICRegLoss


class VICReg(SSLStrategy):
    """VICReg strategy: a three-layer expander and :class:`VICRegLoss` on its outputs, no negatives, no target.

    Args:
        backbone: encoder with ``feature_dim``.
        lambda_invariance: invariance weight (25).
        mu_variance: variance weight (25).
        nu_covariance: covariance weight (1).
        projection_dim: expander output dimension (paper: 8192).
        hidden_dim: expander hidden width (paper: 8192). Use e.g. 512 on CPU.
        gather_distributed: compute the variance/covariance terms over the global batch under DDP.

    Example:
        >>> import torch
        >>> from remedis_vicreg.backbone import ConvNet
        >>> model = VICReg(ConvNet(in_channels=1), projection_dim=64, hidden_dim=64)
        >>> out = model([torch.randn(4, 1, 28, 28), torch.randn(4, 1, 28, 28)])
        >>> out["loss"].backward()
    """

    num_views = 2

    def __init__(
        self,
        backbone: nn.Module,
        lambda_invariance: float = 25.0,
        mu_variance: float = 25.0,
        nu_covariance: float = 1.0,
        projection_dim: int = 8192,
        hidden_dim: int = 8192,
        gather_distributed: bool = True,
    ) -> None:
        super().__init__(backbone)
        feature_dim = int(backbone.feature_dim)
        self.projector = projection_head(feature_dim, hidden_dim, projection_dim, num_layers=3, last_bn=False)
        self.criterion = VICRegLoss(
            lambda_invariance, mu_variance, nu_covariance, gather_distributed=gather_distributed
        )

    def forward(self, views: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
        """VICReg loss, its three terms and the collapse signals."""
        x0, x1 = views
        batch = x0.shape[0]
        z = self.projector(self.backbone(torch.cat([x0, x1], dim=0)))
        invariance, variance, covariance = self.criterion.components(z[:batch], z[batch:])
        c = self.criterion
        loss = c.lambda_invariance * invariance + c.mu_variance * variance + c.nu_covariance * covariance
        return {
            "loss": loss,
            "invariance": invariance.detach(),
            "variance": variance.detach(),
            "covariance": covariance.detach(),
            **collapse_logs(z[:batch]),
        }
