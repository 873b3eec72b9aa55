"""BYOL: an online network with a predictor regresses the projection of an EMA target network.

Reference: Grill et al., "Bootstrap Your Own Latent: A New Approach to Self-Supervised Learning", NeurIPS 2020.
REMEDIS (Azizi et al., Nat. Biomed. Eng. 2023) names BYOL among the self-supervised methods it compares.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from monai_remedis.ssl.base import SSLStrategy
from monai_remedis.ssl.collapse import collapse_logs
from monai_remedis.ssl.heads import projection_head
from monai_remedis.ssl.losses.byol import BYOLLoss
from monai_remedis.ssl.momentum import cosine_momentum, ema_update, frozen_copy


class BYOL(SSLStrategy):
    """BYOL strategy.

    The online network (backbone, projector, predictor) predicts the target network's projection of the other
    view; the loss is symmetrised over the two views. The target (backbone + projector) gets no gradient and
    follows the online network by EMA after each optimiser step, with momentum rising from ``base_momentum`` to
    ``final_momentum`` on a cosine schedule over training.

    Args:
        backbone: encoder with ``feature_dim``.
        projection_dim: projector/predictor output dimension (BYOL: 256).
        hidden_dim: hidden width of projector and predictor (BYOL: 4096).
        base_momentum: target EMA momentum at the start (BYOL: 0.996).
        final_momentum: target EMA momentum at the end of training (BYOL: 1.0).

    Example:
        >>> import torch
        >>> from monai_remedis.backbones import create_backbone
        >>> model = BYOL(create_backbone("bit_resnet18", in_channels=1), hidden_dim=512)
        >>> out = model([torch.randn(4, 1, 32, 32), torch.randn(4, 1, 32, 32)])
        >>> out["loss"].backward()
        >>> model.after_step(progress=0.5)  # after optimizer.step(): EMA update of the target
    """

    num_views = 2

    def __init__(
        self,
        backbone: nn.Module,
        projection_dim: int = 256,
        hidden_dim: int = 4096,
        base_momentum: float = 0.996,
        final_momentum: float = 1.0,
    ) -> None:
        super().__init__(backbone)
        if not 0.0 <= base_momentum <= final_momentum <= 1.0:
            raise ValueError(f"need 0 <= base_momentum <= final_momentum <= 1, got {base_momentum}, {final_momentum}.")
        feature_dim = int(backbone.feature_dim)
        self.projector = projection_head(feature_dim, hidden_dim, projection_dim, num_layers=2, last_bn=False)
        self.predictor = projection_head(projection_dim, hidden_dim, projection_dim, num_layers=2, last_bn=False)
        self.target_backbone = frozen_copy(backbone)
        self.target_projector = frozen_copy(self.projector)
        self.criterion = BYOLLoss()
        self.base_momentum = base_momentum
        self.final_momentum = final_momentum
        self.momentum = base_momentum

    def forward(self, views: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
        """Symmetrised BYOL loss, the projection's collapse signals and the current target momentum."""
        x0, x1 = views
        batch = x0.shape[0]
        x = torch.cat([x0, x1], dim=0)
        z = self.projector(self.backbone(x))
        p = self.predictor(z)
        with torch.no_grad():
            t = self.target_projector(self.target_backbone(x))
        loss = self.criterion(p[:batch], t[batch:]) + self.criterion(p[batch:], t[:batch])
        momentum = torch.tensor(self.momentum, device=loss.device)
        return {"loss": loss, **collapse_logs(z[:batch]), "target_momentum": momentum}

    @torch.no_grad()
    def after_step(self, progress: float) -> None:
        """EMA update of the target network with the cosine-scheduled momentum at ``progress``."""
        self.momentum = cosine_momentum(progress, self.base_momentum, self.final_momentum)
        ema_update(self.target_backbone, self.backbone, self.momentum)
        ema_update(self.target_projector, self.projector, self.momentum)
