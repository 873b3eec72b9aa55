"""Is a backbone's representation usable? Label-light diagnostics that stage 1 and stage 2 write into their metrics.

On a labelled medical datalist (the task's own training and validation splits, a few hundred images each) the frozen
backbone's global-pooled features are scored by:

* ``feature_erank``: effective rank of the per-dimension standardised features
  (:func:`monai_remedis.ssl.collapse.effective_rank`), on a fixed number of images so runs compare; a random
  ``bit_resnet18`` scores ~300 of 512 on 512 X-rays, the collapsed stage 1 of issue 11 scored ~2;
* ``feature_erank_centred``: the same without standardisation (dominated by the largest directions);
* ``mean_cosine``: mean pairwise cosine similarity of the raw features (1 = every image maps to one direction);
* ``probe_val_auc``: validation AUC of a logistic regression on the standardised training features
  (:func:`~monai_remedis.evaluation.linear_probe.train_linear_probe`, fixed L2, no selection on validation data).

A backbone built for more input channels than the images have (stage 1 is RGB, X-rays are grayscale) sees the image
repeated over its channels, which is what summing the RGB stem filters (the channel adaptation used when the weights
are loaded into a grayscale backbone) computes, up to the stem's weight standardisation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from monai_remedis.evaluation.linear_probe import DEFAULT_L2_GRID, extract_features, train_linear_probe
from monai_remedis.evaluation.statistics import auc_score
from monai_remedis.ssl.collapse import effective_rank

logger = logging.getLogger("monai_remedis")


class _RepeatChannels(nn.Module):
    """Repeat the image channels up to the backbone's first convolution's ``in_channels``."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        conv = next((m for m in backbone.modules() if isinstance(m, nn.modules.conv._ConvNd)), None)
        self.in_channels = conv.in_channels if conv is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.in_channels and x.shape[1] < self.in_channels and self.in_channels % x.shape[1] == 0:
            x = x.repeat(1, self.in_channels // x.shape[1], *([1] * (x.ndim - 2)))
        return self.backbone(x)


def mean_pairwise_cosine(features: torch.Tensor) -> float:
    """Mean cosine similarity over distinct pairs of rows of ``(N, D)`` features."""
    u = torch.nn.functional.normalize(features.double(), dim=1)
    n = u.shape[0]
    gram = u @ u.T
    return float((gram.sum() - gram.diagonal().sum()) / max(1, n * (n - 1)))


@torch.no_grad()
def representation_diagnostics(
    backbone: nn.Module,
    train: Sequence[Mapping[str, Any]],
    val: Sequence[Mapping[str, Any]],
    transform: Callable,
    max_items: int = 512,
    device: torch.device | str = "cpu",
) -> dict[str, float]:
    """Score the frozen ``backbone`` on the first ``max_items`` labelled items of ``train`` and ``val``.

    Args:
        backbone: module mapping images to ``(B, D)``; left in eval mode afterwards only if it was.
        train: labelled items (features for the rank, cosine and the probe's training set).
        val: labelled items the probe is scored on (never test data).
        transform: the deterministic evaluation transform of these items.
        max_items: items used from each split.
        device: device of the forward passes.

    Returns:
        ``{"n_train", "n_val", "feature_erank", "feature_erank_centred", "mean_cosine", "probe_val_auc"}``.
    """
    was_training = backbone.training
    model = _RepeatChannels(backbone)
    x = extract_features(model, list(train)[:max_items], transform, device=device)
    xv = extract_features(model, list(val)[:max_items], transform, device=device)
    backbone.train(was_training)
    num_classes = int(max(x.labels.max(), xv.labels.max())) + 1
    probe = train_linear_probe(x.features, x.labels, num_classes, l2_grid=[DEFAULT_L2_GRID[len(DEFAULT_L2_GRID) // 2]])
    auc = auc_score(probe.predict_proba(xv.features), xv.labels.numpy())
    return {
        "n_train": int(x.features.shape[0]),
        "n_val": int(xv.features.shape[0]),
        "feature_erank": effective_rank(x.features),
        "feature_erank_centred": effective_rank(x.features, standardise=False),
        "mean_cosine": mean_pairwise_cosine(x.features),
        "probe_val_auc": float(auc) if np.isfinite(auc) else float("nan"),
    }


def stage_diagnostics(
    stage: str, backbone: nn.Module, diagnostics: Mapping[str, Any] | None, device: torch.device | str = "cpu"
) -> dict[str, float] | None:
    """:func:`representation_diagnostics` for a stage's ``metrics.json``, logged; None when not configured.

    Args:
        stage: stage name for the log line.
        backbone: the stage's exported backbone.
        diagnostics: ``{"train", "val", "transform"[, "max_items"]}`` from the bundle, or None.
        device: device of the forward passes.
    """
    if not diagnostics:
        return None
    splits = [diagnostics.get("train") or [], diagnostics.get("val") or []]
    unlabelled = next((item for items in splits for item in items if item.get("label") is None), None)
    if not all(splits) or unlabelled is not None:  # e.g. a DICOM datalist without labels: nothing to probe
        logger.info(
            "%s representation diagnostics skipped: they need labelled train and validation items (%s).",
            stage,
            f"item {unlabelled.get('id', unlabelled.get('image'))} has no label" if unlabelled else "a split is empty",
        )
        return None
    scores = representation_diagnostics(backbone, device=device, **diagnostics)
    logger.info(
        "%s representation on %d medical images: standardised effective rank %.1f (centred %.2f), mean cosine %.3f, "
        "linear-probe validation AUC %.4f",
        stage,
        scores["n_train"],
        scores["feature_erank"],
        scores["feature_erank_centred"],
        scores["mean_cosine"],
        scores["probe_val_auc"],
    )
    return scores
