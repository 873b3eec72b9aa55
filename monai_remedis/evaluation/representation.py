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

The SSL stage probes its init the same way before training and compares the two probes on the same validation
images (:func:`probe_change`: paired bootstrap of the AUC change). :func:`degradation_verdict` reports a change whose
whole 95% interval is below 0, i.e. SSL made the frozen features separate the task worse than its init did; a drop
inside the noise of the validation set is not reported.

A backbone built for more input channels than the images have (stage 1 is RGB, X-rays are grayscale) sees the image
repeated over its channels, which is what summing the RGB stem filters (the channel adaptation used when the weights
are loaded into a grayscale backbone) computes, up to the stem's weight standardisation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from monai_remedis.evaluation.linear_probe import DEFAULT_L2_GRID, extract_features, train_linear_probe
from monai_remedis.evaluation.statistics import auc_score, bootstrap_ci
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


@dataclass(frozen=True)
class ProbedRepresentation:
    """A backbone's diagnostics and its probe's validation predictions (for a paired comparison of two backbones).

    Attributes:
        scores: ``{"n_train", "n_val", "feature_erank", "feature_erank_centred", "mean_cosine", "probe_val_auc"}``.
        val_probs: ``(n_val, K)`` probe probabilities on the validation items, in datalist order.
        val_labels: ``(n_val,)`` labels of those items.
    """

    scores: dict[str, float]
    val_probs: np.ndarray
    val_labels: np.ndarray


@torch.no_grad()
def probe_representation(
    backbone: nn.Module,
    train: Sequence[Mapping[str, Any]],
    val: Sequence[Mapping[str, Any]],
    transform: Callable,
    max_items: int = 512,
    device: torch.device | str = "cpu",
) -> ProbedRepresentation:
    """Score the frozen ``backbone`` on the first ``max_items`` labelled items of ``train`` and ``val``.

    Args:
        backbone: module mapping images to ``(B, D)``; left in eval mode afterwards only if it was.
        train: labelled items (features for the rank, cosine and the probe's training set).
        val: labelled items the probe is scored on (never test data).
        transform: the deterministic evaluation transform of these items.
        max_items: items used from each split.
        device: device of the forward passes.

    Returns:
        :class:`ProbedRepresentation` whose ``scores`` are ``{"n_train", "n_val", "feature_erank",
        "feature_erank_centred", "mean_cosine", "probe_val_auc"}``.
    """
    was_training = backbone.training
    model = _RepeatChannels(backbone)
    x = extract_features(model, list(train)[:max_items], transform, device=device)
    xv = extract_features(model, list(val)[:max_items], transform, device=device)
    backbone.train(was_training)
    num_classes = int(max(x.labels.max(), xv.labels.max())) + 1
    probe = train_linear_probe(x.features, x.labels, num_classes, l2_grid=[DEFAULT_L2_GRID[len(DEFAULT_L2_GRID) // 2]])
    val_probs = probe.predict_proba(xv.features)
    val_labels = xv.labels.numpy()
    auc = auc_score(val_probs, val_labels)
    scores = {
        "n_train": int(x.features.shape[0]),
        "n_val": int(xv.features.shape[0]),
        "feature_erank": effective_rank(x.features),
        "feature_erank_centred": effective_rank(x.features, standardise=False),
        "mean_cosine": mean_pairwise_cosine(x.features),
        "probe_val_auc": float(auc) if np.isfinite(auc) else float("nan"),
    }
    return ProbedRepresentation(scores, val_probs, val_labels)


def probe_change(
    before: ProbedRepresentation, after: ProbedRepresentation, n_boot: int = 2000, seed: int = 0
) -> dict[str, float]:
    """Change of the probe's validation AUC from ``before`` to ``after``, with a paired bootstrap 95% interval.

    Both probes scored the same validation images, so the images are resampled together and each resample gives
    ``AUC(after) - AUC(before)``: the interval reflects how much the change could owe to which images happen to be in
    the validation set (not the probe's fitting, which is deterministic).

    Args:
        before: the init's probe (e.g. stage 1, before SSL).
        after: the trained backbone's probe on the same items.
        n_boot: bootstrap resamples.
        seed: seed of the resampling.

    Returns:
        ``{"probe_val_auc_before", "probe_val_auc_after", "change", "ci_low", "ci_high", "n_val"}``.

    Raises:
        ValueError: the two probes were not scored on the same labelled items.
    """
    if before.val_probs.shape != after.val_probs.shape or not np.array_equal(before.val_labels, after.val_labels):
        raise ValueError(
            "probe_change: the two probes were scored on different validation items "
            f"({before.val_probs.shape} vs {after.val_probs.shape})."
        )
    k = after.val_probs.shape[1]

    def auc_gain(probs: np.ndarray, labels: np.ndarray) -> float:
        return auc_score(probs[:, :k], labels) - auc_score(probs[:, k:], labels)

    ci = bootstrap_ci(
        np.concatenate([after.val_probs, before.val_probs], axis=1), after.val_labels, auc_gain, n_boot, seed=seed
    )
    return {
        "probe_val_auc_before": float(before.scores["probe_val_auc"]),
        "probe_val_auc_after": float(after.scores["probe_val_auc"]),
        "change": ci.point,
        "ci_low": ci.low,
        "ci_high": ci.high,
        "n_val": int(after.val_labels.shape[0]),
    }


def degradation_verdict(change: Mapping[str, float]) -> str | None:
    """A sentence when the probe's validation AUC fell beyond the noise (95% interval below 0), else None.

    Args:
        change: :func:`probe_change` of the init and the trained backbone.
    """
    if not np.isfinite(change["ci_high"]) or change["ci_high"] >= 0.0:
        return None
    return (
        f"the frozen linear probe's validation AUC fell from {change['probe_val_auc_before']:.4f} to "
        f"{change['probe_val_auc_after']:.4f} (change {change['change']:+.4f}, paired bootstrap 95% CI "
        f"{change['ci_low']:+.4f} to {change['ci_high']:+.4f} over {change['n_val']} validation images)"
    )


def stage_probe(
    stage: str, backbone: nn.Module, diagnostics: Mapping[str, Any] | None, device: torch.device | str = "cpu"
) -> ProbedRepresentation | None:
    """:func:`probe_representation` for a stage, logged; None when not configured or the items have no labels.

    Args:
        stage: stage name for the log line.
        backbone: the backbone to score.
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
    probed = probe_representation(backbone, device=device, **diagnostics)
    scores = probed.scores
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
    return probed
