"""Collapse signals logged by every strategy: embedding std and MONAI's effective-rank collapse score.

A collapsed representation maps every image to (nearly) the same point (complete collapse) or to a
low-dimensional subspace (dimensional collapse). Two cheap signals detect it during training:

* ``embedding_std``: mean over dimensions of the std across the batch of the L2-normalised embeddings
  (Chen & He, "Exploring Simple Siamese Representation Learning", CVPR 2021): 0 when collapsed, about
  ``1/sqrt(D)`` for a healthy D-dimensional embedding.
* ``collapse_score``: MONAI's :class:`monai.metrics.EmbeddingCollapseMetric` effective-rank score in [0, 1]
  (1 = all embeddings on one point or line; Roy & Vetterli 2007). Embeddings that are one point up to
  floating-point round-off score 1 (the SVD of round-off noise alone would look full-rank).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.metrics import EmbeddingCollapseMetric

_RANK_METRIC = EmbeddingCollapseMetric(reduction="none", include_indicators=["effective_rank"])
_POINT_TOLERANCE = 1e-5
"""Embeddings whose spread around their mean is below this fraction of their norm count as a single point."""


@torch.no_grad()
def collapse_logs(embeddings: torch.Tensor, max_rows: int = 256) -> dict[str, torch.Tensor]:
    """``{"embedding_std", "collapse_score"}`` of a batch of embeddings (no gradients).

    Args:
        embeddings: ``(B, D)`` embeddings (projections) of one view.
        max_rows: the SVD behind ``collapse_score`` uses at most this many rows, to bound its cost.

    Example:
        >>> import torch
        >>> logs = collapse_logs(torch.randn(64, 16))
        >>> sorted(logs)
        ['collapse_score', 'embedding_std']
    """
    z = embeddings.detach().float()
    std = F.normalize(z, dim=1).std(dim=0).mean()
    rows = z[:max_rows]
    spread = (rows - rows.mean(dim=0)).norm()
    if spread <= _POINT_TOLERANCE * rows.norm():  # one point up to round-off: the SVD would only see the noise
        score = z.new_tensor(1.0)
    else:
        score = _RANK_METRIC(embeddings=rows)["effective_rank_score"]
    return {"embedding_std": std, "collapse_score": score}
