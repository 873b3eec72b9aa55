"""How a fine-tune's linear head starts: at zero (BiT) or from a linear probe on the frozen features (LP-FT).

LP-FT (Kumar et al., "Fine-Tuning can Distort Pretrained Features and Underperform Out-of-Distribution", ICLR 2022):
fit the head on the frozen backbone's features first, then fine-tune everything, so the first steps start from a
head that already fits. An option (``finetune_head_init: probe``), the same for every init, and the fundus bundle's
default (chosen on RetinaMNIST validation data; base.yaml keeps BiT's zero head, see docs/results.md). The fine-tune
validates the model before its first step (:func:`~monai_remedis.stages.supervised.run_classifier_engines`), so a
run whose updates only lose the probe's validation AUC exports the probe itself.

The probe is :func:`~monai_remedis.evaluation.linear_probe.train_linear_probe` (L-BFGS logistic regression, L2
chosen by validation AUC) on the labelled subset's features under the deterministic evaluation transform. The
:class:`~monai_remedis.models.classifier.FeatureStandardiser` starts from the same subset's mean and variance,
so the fine-tuned model computes exactly the probe's logits before its first step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from monai_remedis.evaluation.linear_probe import LinearProbe, extract_features, train_linear_probe
from monai_remedis.models.classifier import Classifier, FeatureStandardiser

HEAD_INITS = ("zero", "probe")
"""Known head initialisations: ``zero`` (BiT), ``probe`` (LP-FT)."""


def check_head_init(name: str) -> str:
    """``name`` if it is a known head initialisation.

    Raises:
        ValueError: listing the known names.
    """
    if name not in HEAD_INITS:
        raise ValueError(f"unknown head_init '{name}'; known: {', '.join(HEAD_INITS)}.")
    return name


def probe_head_init(
    model: Classifier,
    train_datalist: Sequence[dict[str, Any]],
    transform: Callable,
    val_datalist: Sequence[dict[str, Any]] | None = None,
    val_transform: Callable | None = None,
    device: torch.device | str = "cpu",
    batch_size: int = 256,
) -> LinearProbe:
    """Fit a linear probe on ``model``'s frozen features and load it into the model's standardiser and head.

    Args:
        model: a :class:`Classifier` with standardised features (the default).
        train_datalist: the labelled items the fine-tune trains on.
        transform: deterministic transform for their features (the evaluation transform, no augmentation).
        val_datalist: validation items; the probe's L2 penalty is chosen on their AUC (else the grid's middle).
        val_transform: their transform (default ``transform``).
        device: where the features are computed.
        batch_size: feature-extraction batch size.

    Returns:
        the fitted :class:`LinearProbe` (``val_auc`` is the probe's validation AUC when ``val_datalist`` is given).

    Raises:
        ValueError: the model does not standardise its features.
    """
    if not isinstance(model.feature_norm, FeatureStandardiser):
        raise ValueError("head_init 'probe' needs a Classifier with standardise_features=True.")
    train = extract_features(model.backbone, train_datalist, transform, batch_size, device)
    val = None
    if val_datalist:
        held = extract_features(model.backbone, val_datalist, val_transform or transform, batch_size, device)
        val = (held.features, held.labels)
    num_classes = model.head[-1].out_features
    probe = train_linear_probe(train.features, train.labels, num_classes, val=val)
    load_probe(model, probe)
    return probe


@torch.no_grad()
def load_probe(model: Classifier, probe: LinearProbe) -> None:
    """Set the standardiser's statistics and the head's weights so that ``model`` computes ``probe``'s logits."""
    norm = model.feature_norm
    norm.running_mean.copy_(probe.mean)
    # BatchNorm divides by sqrt(var + eps): subtract eps so the scale is the probe's std exactly
    norm.running_var.copy_((probe.std.pow(2) - norm.eps).clamp_min(0.0))
    norm.num_batches_tracked.fill_(1)  # statistics are set: the first batch must not overwrite them
    linear = model.head[-1]
    linear.weight.copy_(probe.weight.t())
    linear.bias.copy_(probe.bias)
