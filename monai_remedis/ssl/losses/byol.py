"""BYOL's regression loss: normalised mean squared error between prediction and target projection.

Reference: Grill et al., "Bootstrap Your Own Latent: A New Approach to Self-Supervised Learning", NeurIPS 2020.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from monai_remedis.ssl.losses.utils import full_precision


class BYOLLoss(nn.Module):
    """``|| p/|p| - t/|t| ||^2 = 2 - 2 cos(p, t)`` averaged over the batch, with a stop-gradient on the target.

    The strategy sums it over both directions (view 0 predicts view 1's target and vice versa), as in the paper.
    There are no negatives: the loss is per sample, so under DDP the mean of per-rank losses is the global loss.

    Example:
        >>> import torch
        >>> loss_fn = BYOLLoss()
        >>> p = torch.randn(8, 256, requires_grad=True)
        >>> loss = loss_fn(p, p.detach())  # identical directions -> 0
        >>> abs(round(loss.item(), 6))
        0.0
    """

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Loss of the online ``prediction`` ``(B, D)`` against the target projection ``(B, D)``.

        Raises:
            ValueError: when the shapes differ.
        """
        if prediction.shape != target.shape or prediction.ndim != 2:
            raise ValueError(f"expected two (B, D) tensors, got {tuple(prediction.shape)}, {tuple(target.shape)}.")
        p = F.normalize(full_precision(prediction), dim=1)
        t = F.normalize(full_precision(target.detach()), dim=1)
        return (2.0 - 2.0 * (p * t).sum(dim=1)).mean()
