"""RELIC: a contrastive term plus a KL invariance term across augmentations.

Reference: Mitrovic et al., "Representation Learning via Invariant Causal Mechanisms", ICLR 2021.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from monai_remedis.ssl.distributed import gather_with_grad, rank
from monai_remedis.ssl.losses.utils import full_precision


class RelicLoss(nn.Module):
    """Cross-view InfoNCE plus ``alpha`` times the symmetric KL between the two views' similarity distributions.

    For anchor ``i`` in view ``a`` and targets ``j`` (the other view ``b`` of every image in the global batch),
    ``p_ab(j | i) = softmax_j(z_a_i . z_b_j / t)``. The contrastive term is ``-log p_ab(i | i)`` averaged over
    both directions; the invariance term ``(KL(p_ab || p_ba) + KL(p_ba || p_ab)) / 2`` asks the similarity
    distribution of an image not to depend on which augmentation was applied (ReLIC's regulariser, summed over
    the ordered pairs of augmentations). Under DDP the targets are gathered from every rank with gradient flow,
    so the mean of the per-rank losses equals the loss of the concatenated global batch.

    Args:
        temperature: softmax temperature.
        alpha: weight of the invariance (KL) term.
        gather_distributed: gather targets from all ranks when running distributed.

    Example:
        >>> import torch
        >>> loss_fn = RelicLoss(temperature=0.1, alpha=1.0)
        >>> z0, z1 = torch.randn(8, 128), torch.randn(8, 128)
        >>> contrastive, invariance = loss_fn.components(z0, z1)
        >>> loss = loss_fn(z0, z1)  # contrastive + alpha * invariance
    """

    def __init__(self, temperature: float = 0.1, alpha: float = 1.0, gather_distributed: bool = True) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}.")
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}.")
        self.temperature = temperature
        self.alpha = alpha
        self.gather_distributed = gather_distributed

    def components(self, z0: torch.Tensor, z1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(contrastive, invariance)`` for projections ``z0``, ``z1`` of shape ``(B, D)``."""
        if z0.shape != z1.shape or z0.ndim != 2:
            raise ValueError(f"expected two (B, D) projections, got {tuple(z0.shape)}, {tuple(z1.shape)}.")
        z0, z1 = F.normalize(full_precision(z0), dim=1), F.normalize(full_precision(z1), dim=1)
        batch = z0.shape[0]
        if self.gather_distributed:
            t0, t1, offset = gather_with_grad(z0), gather_with_grad(z1), rank() * batch
        else:
            t0, t1, offset = z0, z1, 0
        logits_01 = z0 @ t1.T / self.temperature  # anchors of view 0 against targets of view 1, (B, N)
        logits_10 = z1 @ t0.T / self.temperature
        positives = torch.arange(batch, device=z0.device) + offset
        contrastive = (F.cross_entropy(logits_01, positives) + F.cross_entropy(logits_10, positives)) / 2
        log_p01, log_p10 = F.log_softmax(logits_01, dim=1), F.log_softmax(logits_10, dim=1)
        kl_01 = F.kl_div(log_p10, log_p01, reduction="batchmean", log_target=True)  # KL(p01 || p10)
        kl_10 = F.kl_div(log_p01, log_p10, reduction="batchmean", log_target=True)  # KL(p10 || p01)
        return contrastive, (kl_01 + kl_10) / 2

    def forward(self, z0: torch.Tensor, z1: torch.Tensor) -> torch.Tensor:
        """``contrastive + alpha * invariance``."""
        contrastive, invariance = self.components(z0, z1)
        return contrastive + self.alpha * invariance
