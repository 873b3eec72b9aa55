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

These two per-iteration signals describe the **projector output of one batch** and are logged for information only:
the score depends on the batch size (i.i.d. Gaussians score about 0.2 at B=128 and 0.08 at B=256), reads a
full-rank spectrum decaying like ``i^-1.5`` as collapsed, and already fires at step 0 on a stage-1 init whose
features are anisotropic. The warning comes from the reference-based monitor below
(:class:`monai_remedis.engines.ssl_trainer.CollapseMonitor`): it measures the **backbone features that transfer**
(and the projector output) on one fixed probe set before SSL and after every epoch, scores them by
:func:`effective_rank` of per-dimension standardised features (blind to a constant offset, independent of the
training batch size) and :func:`relative_spread`, and :func:`collapse_verdict` reports only what SSL made worse.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.metrics import EmbeddingCollapseMetric

_RANK_METRIC = EmbeddingCollapseMetric(reduction="none", include_indicators=["effective_rank"])

COMPLETE_COLLAPSE_SPREAD = 0.1
"""Normalised spread below which a batch counts as completely collapsed (healthy embeddings: about 1)."""

COLLAPSE_WARNING_SCORE = 0.9
"""A per-batch ``collapse_score`` at or above this reads as complete collapse, or (at batch 32, D >= 31)
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


# ---- reference-based monitor of the representation that transfers --------------------------------------------------

STANDARDISED_RANK_DROP = 0.5
"""The monitor calls dimensional collapse when the standardised effective rank falls below this fraction of its
value before SSL (step 0)."""

SPREAD_DROP = 1e-2
"""The monitor calls complete collapse when the relative spread falls below this fraction of its step-0 value."""

MIN_RELATIVE_SPREAD = 1e-5
"""Relative spread below which features are one point up to float32 rounding (about 100x its resolution)."""


@torch.no_grad()
def effective_rank(features: torch.Tensor, standardise: bool = True) -> float:
    """Effective rank (Roy & Vetterli 2007) of ``(N, D)`` features: ``exp`` of the entropy of the normalised
    eigenvalues of their covariance (or, with ``standardise``, correlation) matrix.

    Standardising each dimension first (z-score over the rows) makes the score blind to a constant offset and to
    the scale of each dimension, which a standardising head (:class:`~monai_remedis.models.classifier.Classifier`,
    the linear probe) removes anyway; dimensions that do not vary are dropped. The value depends on ``N`` (at most
    ``N - 1``): compare scores computed on the same number of rows (the monitor uses one fixed probe set).

    Example:
        >>> import torch
        >>> line = torch.randn(64, 1) @ torch.randn(1, 16) + 5.0
        >>> round(effective_rank(line), 3)
        1.0
    """
    x = features.detach().double()
    x = x - x.mean(dim=0)
    if standardise:
        std = x.std(dim=0)
        keep = std > 1e-12 * max(1.0, float(features.detach().double().abs().max()))
        x = x[:, keep] / std[keep]
    if x.numel() == 0 or x.shape[0] < 2:
        return 0.0
    s = torch.linalg.svdvals(x)
    p = s.pow(2)
    total = p.sum()
    if total <= 0:
        return 0.0
    p = p[p > 0] / total
    return float(torch.exp(-(p * p.log()).sum()))


@torch.no_grad()
def relative_spread(features: torch.Tensor) -> float:
    """Between-row RMS distance from the mean, relative to the RMS norm of the rows: 0 for one point.

    Unlike :func:`normalised_spread` it keeps a constant offset in the denominator only, so it reads how many
    digits of between-image variation survive on top of the offset (float32 resolves about ``1e-7``).
    """
    x = features.detach().double()
    centred = (x - x.mean(dim=0)).pow(2).sum(dim=1).mean().sqrt()
    return float(centred / x.pow(2).sum(dim=1).mean().sqrt().clamp_min(1e-30))


def representation_state(features: torch.Tensor) -> dict[str, float]:
    """``{"erank", "spread"}``: standardised effective rank and :func:`relative_spread` of ``(N, D)`` features."""
    return {"erank": effective_rank(features), "spread": relative_spread(features)}


def collapse_verdict(current: dict[str, float], reference: dict[str, float] | None = None) -> str | None:
    """Why ``current`` counts as collapsed (a sentence), or None when it does not.

    With a ``reference`` (the same probe images before SSL), only a loss caused by training is reported: the
    standardised effective rank fell below :data:`STANDARDISED_RANK_DROP` of its step-0 value (dimensional
    collapse), or the relative spread fell below :data:`SPREAD_DROP` of it (complete collapse). Whatever the
    reference, features within :data:`MIN_RELATIVE_SPREAD` of one point are collapsed. Without a reference, an
    effective rank below 1.5 (a line) is also reported.

    Args:
        current: :func:`representation_state` now.
        reference: :func:`representation_state` at step 0, or None.
    """
    if current["spread"] < MIN_RELATIVE_SPREAD and (reference is None or reference["spread"] >= MIN_RELATIVE_SPREAD):
        return f"complete collapse: relative spread {current['spread']:.2g} (one point up to float32 rounding)"
    if reference is None:
        return f"dimensional collapse: effective rank {current['erank']:.2f}" if current["erank"] < 1.5 else None
    if current["spread"] < SPREAD_DROP * reference["spread"]:
        return (
            f"complete collapse: relative spread fell from {reference['spread']:.3g} to {current['spread']:.3g} "
            f"(< {SPREAD_DROP:g}x its step-0 value)"
        )
    if current["erank"] < STANDARDISED_RANK_DROP * reference["erank"]:
        return (
            f"dimensional collapse: standardised effective rank fell from {reference['erank']:.1f} to "
            f"{current['erank']:.1f} (< {STANDARDISED_RANK_DROP:g}x its step-0 value)"
        )
    return None
