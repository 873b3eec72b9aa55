"""SimCLR: two augmented views, projection head, NT-Xent with negatives from every rank.

Reference: Chen et al., "A Simple Framework for Contrastive Learning of Visual Representations", ICML 2020;
Chen et al., "Big Self-Supervised Models are Strong Semi-Supervised Learners" (SimCLR v2), NeurIPS 2020;
REMEDIS (Azizi et al., Nat. Biomed. Eng. 2023) uses SimCLR with temperature 0.1 and a 128-d projection.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from monai_remedis.ssl.base import SSLStrategy
from monai_remedis.ssl.collapse import collapse_logs
from monai_remedis.ssl.heads import projection_head
from monai_remedis.ssl.losses.ntxent import NTXentLoss


class SimCLR(SSLStrategy):
    """SimCLR strategy.

    Args:
        backbone: encoder with ``feature_dim``.
        temperature: NT-Xent temperature (0.1 by default, as REMEDIS).
        projection_dim: output dimension of the projection head (128).
        hidden_dim: hidden width of the head (defaults to the backbone's feature dimension).
        gather_distributed: gather negatives across ranks under DDP.

    Example:
        >>> import torch
        >>> from monai_remedis.backbones import create_backbone
        >>> model = SimCLR(create_backbone("bit_resnet18", in_channels=1))
        >>> out = model([torch.randn(4, 1, 32, 32), torch.randn(4, 1, 32, 32)])
        >>> out["loss"].backward()
    """

    num_views = 2

    def __init__(
        self,
        backbone: nn.Module,
        temperature: float = 0.1,
        projection_dim: int = 128,
        hidden_dim: int | None = None,
        gather_distributed: bool = True,
    ) -> None:
        super().__init__(backbone)
        feature_dim = int(backbone.feature_dim)
        self.projector = projection_head(feature_dim, hidden_dim or feature_dim, projection_dim, num_layers=2)
        self.criterion = NTXentLoss(temperature=temperature, gather_distributed=gather_distributed)

    def forward(self, views: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
        """NT-Xent loss of the two views and the collapse signals (:func:`monai_remedis.ssl.collapse.collapse_logs`)."""
        x0, x1 = views
        batch = x0.shape[0]
        z = self.projector(self.backbone(torch.cat([x0, x1], dim=0)))
        z0, z1 = z[:batch], z[batch:]
        return {"loss": self.criterion(z0, z1), **collapse_logs(z0)}
