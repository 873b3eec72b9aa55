"""Barlow Twins: redundancy reduction by driving the views' cross-correlation matrix to the identity.

Reference: Zbontar et al., "Barlow Twins: Self-Supervised Learning via Redundancy Reduction", ICML 2021.
REMEDIS (Azizi et al., Nat. Biomed. Eng. 2023) names Barlow Twins among the self-supervised methods it compares.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from monai_remedis.ssl.base import SSLStrategy
from monai_remedis.ssl.collapse import collapse_logs
from monai_remedis.ssl.heads import projection_head
from monai_remedis.ssl.losses.barlow_twins import BarlowTwinsLoss


class BarlowTwins(SSLStrategy):
    """Barlow Twins strategy: a three-layer expander and :class:`BarlowTwinsLoss` on its outputs.

    Args:
        backbone: encoder with ``feature_dim``.
        lambda_offdiag: weight of the off-diagonal term (paper: 5e-3).
        projection_dim: expander output dimension (paper: 8192).
        hidden_dim: expander hidden width (paper: 8192). Use e.g. 2048 on CPU.
        gather_distributed: standardise and correlate over the global batch under DDP.

    Example:
        >>> import torch
        >>> from monai_remedis.backbones import create_backbone
        >>> model = BarlowTwins(create_backbone("bit_resnet18", in_channels=1), projection_dim=256, hidden_dim=256)
        >>> out = model([torch.randn(4, 1, 32, 32), torch.randn(4, 1, 32, 32)])
        >>> out["loss"].backward()
    """

    num_views = 2

    def __init__(
        self,
        backbone: nn.Module,
        lambda_offdiag: float = 5e-3,
        projection_dim: int = 8192,
        hidden_dim: int = 8192,
        gather_distributed: bool = True,
    ) -> None:
        super().__init__(backbone)
        feature_dim = int(backbone.feature_dim)
        self.projector = projection_head(feature_dim, hidden_dim, projection_dim, num_layers=3, last_bn=False)
        self.criterion = BarlowTwinsLoss(lambda_offdiag=lambda_offdiag, gather_distributed=gather_distributed)

    def forward(self, views: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
        """Barlow Twins loss, its on/off-diagonal terms and the collapse signals."""
        x0, x1 = views
        batch = x0.shape[0]
        z = self.projector(self.backbone(torch.cat([x0, x1], dim=0)))
        on_diag, off_diag = self.criterion.components(z[:batch], z[batch:])
        loss = on_diag + self.criterion.lambda_offdiag * off_diag
        return {"loss": loss, "on_diag": on_diag.detach(), "off_diag": off_diag.detach(), **collapse_logs(z[:batch])}
