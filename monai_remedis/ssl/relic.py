"""RELIC: contrastive learning with an explicit invariance (KL) regulariser across augmentations.

Reference: Mitrovic et al., "Representation Learning via Invariant Causal Mechanisms", ICLR 2021.
REMEDIS (Azizi et al., Nat. Biomed. Eng. 2023) names RELIC among the self-supervised methods it compares.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from monai_remedis.ssl.base import SSLStrategy
from monai_remedis.ssl.collapse import collapse_logs
from monai_remedis.ssl.heads import projection_head
from monai_remedis.ssl.losses.relic import RelicLoss


class RELIC(SSLStrategy):
    """RELIC strategy: one encoder and projection head for both views, :class:`RelicLoss` on the projections.

    This is ReLIC (v1) without a target network: the targets are the other view's projections from the same
    network, gathered from every rank under DDP as in SimCLR.

    Args:
        backbone: encoder with ``feature_dim``.
        temperature: softmax temperature (0.1, as REMEDIS' SimCLR).
        alpha: weight of the KL invariance term (1.0).
        projection_dim: output dimension of the projection head (128).
        hidden_dim: hidden width of the head (defaults to the backbone's feature dimension).
        gather_distributed: gather targets across ranks under DDP.

    Example:
        >>> import torch
        >>> from monai_remedis.backbones import create_backbone
        >>> model = RELIC(create_backbone("bit_resnet18", in_channels=1))
        >>> out = model([torch.randn(4, 1, 32, 32), torch.randn(4, 1, 32, 32)])
        >>> out["loss"].backward()
        >>> sorted(out)
        ['collapse_score', 'contrastive', 'embedding_std', 'invariance', 'loss']
    """

    num_views = 2

    def __init__(
        self,
        backbone: nn.Module,
        temperature: float = 0.1,
        alpha: float = 1.0,
        projection_dim: int = 128,
        hidden_dim: int | None = None,
        gather_distributed: bool = True,
    ) -> None:
        super().__init__(backbone)
        feature_dim = int(backbone.feature_dim)
        self.projector = projection_head(feature_dim, hidden_dim or feature_dim, projection_dim, num_layers=2)
        self.criterion = RelicLoss(temperature=temperature, alpha=alpha, gather_distributed=gather_distributed)

    def forward(self, views: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
        """RELIC loss, its two terms and the collapse signals."""
        x0, x1 = views
        batch = x0.shape[0]
        z = self.projector(self.backbone(torch.cat([x0, x1], dim=0)))
        contrastive, invariance = self.criterion.components(z[:batch], z[batch:])
        loss = contrastive + self.criterion.alpha * invariance
        return {
            "loss": loss,
            "contrastive": contrastive.detach(),
            "invariance": invariance.detach(),
            **collapse_logs(z[:batch]),
        }
