"""Backbone + feature standardisation + linear classifier, for supervised pretraining, fine-tuning and linear probes."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class FeatureStandardiser(nn.BatchNorm1d):
    """``BatchNorm1d(affine=False)`` whose running statistics start from the first training batch.

    Plain BatchNorm starts at mean 0 / variance 1 and moves by ``momentum`` per step: features whose variance is
    ~1e-7 (a post-SSL backbone) keep a running variance dominated by that 1 for hundreds of steps, so evaluation
    would rescale every dimension wrongly. Seeding from the first batch removes that bias; later batches update the
    statistics as usual. ``eps`` is 1e-8, not BatchNorm's 1e-5, which would swamp the same variances (the
    standardised features would stay ~0.1 in scale). The state-dict keys are BatchNorm's. It compiles with
    ``torch.jit.script`` (``ckpt_export``): the scripted module computes what BatchNorm does for these settings.
    """

    def __init__(self, num_features: int, momentum: float = 0.1, eps: float = 1e-8) -> None:
        super().__init__(num_features, eps=eps, affine=False, momentum=momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and int(self.num_batches_tracked) == 0 and x.shape[0] > 1:
            with torch.no_grad():
                self.running_mean.copy_(x.detach().float().mean(dim=0))
                self.running_var.copy_(x.detach().float().var(dim=0))
        if torch.jit.is_scripting():  # TorchScript cannot compile super(): BatchNorm's update, spelled out
            if self.training:
                self.num_batches_tracked.add_(1)
            return F.batch_norm(
                x, self.running_mean, self.running_var, None, None, self.training, self.momentum, self.eps
            )
        return self._batch_norm(x)

    @torch.jit.unused
    def _batch_norm(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x)


class Classifier(nn.Module):
    """A backbone, per-dimension feature standardisation, dropout and a zero-initialised linear layer.

    The features are standardised by :class:`FeatureStandardiser` (``BatchNorm1d(affine=False)``: batch
    statistics in training, running ones at inference) before the head, for every init alike. Without it, a
    zero-initialised head fed raw pooled features learns at the speed set by their scale: after SSL the
    between-image variation of a ``bit_resnet18`` was 40-60x smaller than a constant feature vector of norm ~12,
    and full fine-tunes at 1% labels lost 0.05-0.07 AUC that the (standardising) linear probe kept. The
    linear-probe fast path (:mod:`monai_remedis.evaluation.linear_probe`) standardises with the statistics of the
    training pool, so probe and fine-tune see the same feature scaling. The layer has no parameters: it adds
    ``feature_norm.running_mean``, ``feature_norm.running_var`` and ``feature_norm.num_batches_tracked`` to the
    state dict.

    Args:
        backbone: module mapping images to ``(B, backbone.feature_dim)``.
        num_classes: number of output logits.
        dropout: dropout before the linear layer.
        freeze_backbone: linear probe: the backbone gets no gradients and stays in eval mode.
        standardise_features: standardise the features before the head (default; ``False`` = raw features).
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        dropout: float = 0.0,
        freeze_backbone: bool = False,
        standardise_features: bool = True,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        feature_dim = int(backbone.feature_dim)
        self.feature_norm = FeatureStandardiser(feature_dim) if standardise_features else nn.Identity()
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(feature_dim, num_classes))
        nn.init.zeros_(self.head[1].weight)  # BiT fine-tuning starts the new head at zero
        nn.init.zeros_(self.head[1].bias)
        self.freeze_backbone = freeze_backbone
        if freeze_backbone:
            self.backbone.requires_grad_(False)

    def train(self, mode: bool = True) -> Classifier:
        super().train(mode)
        if self.freeze_backbone:
            self.backbone.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.freeze_backbone:
            with torch.no_grad():
                features = self.backbone(x)
        else:
            features = self.backbone(x)
        return self.head(self.feature_norm(features))
