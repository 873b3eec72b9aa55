"""InfoNCE against a queue of momentum-encoder keys: the MoCo (v1/v2) loss.

References:
    He et al., "Momentum Contrast for Unsupervised Visual Representation Learning", CVPR 2020.
    Chen et al., "Improved Baselines with Momentum Contrastive Learning" (MoCo v2), arXiv:2003.04297, 2020.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from monai_remedis.ssl.losses.utils import full_precision


class MoCoLoss(nn.Module):
    """Cross-entropy of each query against its key (the positive) and the queued keys (the negatives).

    With L2-normalised query ``q``, key ``k`` and queue ``Q`` (``K`` rows), the loss of one query is
    ``-log(exp(q.k / t) / (exp(q.k / t) + sum_j exp(q.Q_j / t)))``, averaged over the batch. Keys and queue
    come from the momentum encoder and carry no gradient. The loss is per query, so under DDP the mean of the
    per-rank losses equals the loss of the global batch as long as every rank holds the same queue.

    Args:
        temperature: softmax temperature (MoCo v2: 0.2).

    Example:
        >>> import torch
        >>> loss_fn = MoCoLoss(temperature=0.2)
        >>> q, k, queue = torch.randn(8, 128), torch.randn(8, 128), torch.randn(256, 128)
        >>> loss = loss_fn(q, k, queue)
    """

    def __init__(self, temperature: float = 0.2) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}.")
        self.temperature = temperature

    def forward(self, query: torch.Tensor, key: torch.Tensor, queue: torch.Tensor) -> torch.Tensor:
        """Loss of ``query`` ``(B, D)`` against ``key`` ``(B, D)`` and ``queue`` ``(K, D)`` (both treated as constants).

        Raises:
            ValueError: when the shapes do not fit.
        """
        if query.ndim != 2 or query.shape != key.shape or queue.ndim != 2 or queue.shape[1] != query.shape[1]:
            raise ValueError(
                f"expected query/key (B, D) and queue (K, D), got {tuple(query.shape)}, {tuple(key.shape)}, "
                f"{tuple(queue.shape)}."
            )
        q = F.normalize(full_precision(query), dim=1)
        k = F.normalize(full_precision(key.detach()), dim=1)
        negatives = F.normalize(full_precision(queue.detach()), dim=1)
        positive = (q * k).sum(dim=1, keepdim=True)  # (B, 1)
        logits = torch.cat([positive, q @ negatives.T], dim=1) / self.temperature  # (B, 1 + K)
        return F.cross_entropy(logits, torch.zeros(q.shape[0], dtype=torch.long, device=q.device))
