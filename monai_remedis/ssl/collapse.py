"""Collapse signals logged by every strategy: embedding std and a collapse score in [0, 1].

A collapsed representation maps every image to (nearly) the same point (complete collapse) or to a
low-dimensional subspace (dimensional collapse). Two cheap signals detect it during training:

* ``embedding_std``: mean over dimensions of the std across the batch of the L2-normalised embeddings
  (Chen & He, "Exploring Simple Siamese Representation Learning", CVPR 2021): 0 when collapsed, about
  ``1/sqrt(D)`` for a healthy D-dimensional embedding.
* ``collapse_score`` (:func:`collapse_score`), 1 = collapsed, 0 = healthy, decided in two steps:

  1. Complete collapse, judged from the **spread** of the L2-normalised embeddings ``u_i``: the root mean square
     distance from their mean, ``sqrt(mean_i |u_i - mean(u)|^2) = sqrt(1 - |mean(u)|^2)`` (:func:`normalised_spread`),
     which is 0 for one point and about 1 for healthy embeddings spread over the sphere (for isotropic ones it is
     ``embedding_std * sqrt(D)``). A spread below :data:`COMPLETE_COLLAPSE_SPREAD` (0.1, every embedding within
     about 6 degrees of the mean direction) scores **1**, whatever the noise around the point looks like.
  2. Otherwise MONAI's :class:`monai.metrics.EmbeddingCollapseMetric` effective-rank score (Roy & Vetterli 2007):
     ``1 - erank / min(B - 1, D)`` of the centred embeddings, near 1 on a line or plane, near 0 at full rank.

  Step 1 exists because step 2 centres the embeddings first: one point plus 1e-3 noise, centred, is isotropic
  noise and looks full-rank (score ~0.03, "healthy"), and that is what near-complete collapse looks like in
  training (a real MoCo run had ``embedding_std`` fall from 0.0136 to 0.0 while the effective-rank score stayed
  at 0.17-0.25).

:class:`monai_remedis.engines.ssl_trainer.SSLTrainer` warns once per run when an epoch's mean ``collapse_score``
reaches :data:`COLLAPSE_WARNING_SCORE`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.metrics import EmbeddingCollapseMetric

_RANK_METRIC = EmbeddingCollapseMetric(reduction="none", include_indicators=["effective_rank"])

COMPLETE_COLLAPSE_SPREAD = 0.1
"""Normalised spread below which a batch counts as completely collapsed (healthy embeddings: about 1)."""

COLLAPSE_WARNING_SCORE = 0.9
"""Epoch-mean ``collapse_score`` from which the SSL trainer warns: complete collapse, or (at batch 32, D >= 31)
embeddings on a line, plane or 3-dimensional subspace (effective-rank scores 0.97, 0.93, 0.90)."""


def normalised_spread(embeddings: torch.Tensor) -> torch.Tensor:
    """RMS distance of the L2-normalised embeddings from their mean: 0 for one point, about 1 when healthy.

    Args:
        embeddings: ``(B, D)`` embeddings.

    Example:
        >>> import torch
        >>> round(float(normalised_spread(torch.ones(8, 4))), 6)
        0.0
    """
    u = F.normalize(embeddings.detach().float(), dim=1)
    return (u - u.mean(dim=0)).pow(2).sum(dim=1).mean().sqrt()


@torch.no_grad()
def collapse_score(embeddings: torch.Tensor, max_rows: int = 256) -> torch.Tensor:
    """Collapse score in [0, 1] of a batch of embeddings (1 = collapsed); the rule is in the module docstring.

    Args:
        embeddings: ``(B, D)`` embeddings (projections) of one view, ``B >= 2``.
        max_rows: the SVD behind the effective-rank score uses at most this many rows, to bound its cost.

    Example:
        >>> import torch
        >>> point = torch.randn(1, 16)
        >>> float(collapse_score(point + 1e-3 * torch.randn(64, 16)))  # one point up to small noise
        1.0
        >>> float(collapse_score(torch.randn(64, 16))) < 0.2  # healthy
        True
    """
    z = embeddings.detach().float()
    if normalised_spread(z) < COMPLETE_COLLAPSE_SPREAD:
        return z.new_tensor(1.0)
    return _RANK_METRIC(embeddings=z[:max_rows])["effective_rank_score"]


@torch.no_grad()
def collapse_logs(embeddings: torch.Tensor, max_rows: int = 256) -> dict[str, torch.Tensor]:
    """``{"embedding_std", "collapse_score"}`` of a batch of embeddings (no gradients).

    Args:
        embeddings: ``(B, D)`` embeddings (projections) of one view.
        max_rows: passed to :func:`collapse_score`.

    Example:
        >>> import torch
        >>> logs = collapse_logs(torch.randn(64, 16))
        >>> sorted(logs)
        ['collapse_score', 'embedding_std']
    """
    z = embeddings.detach().float()
    std = F.normalize(z, dim=1).std(dim=0).mean()
    return {"embedding_std": std, "collapse_score": collapse_score(z, max_rows)}
