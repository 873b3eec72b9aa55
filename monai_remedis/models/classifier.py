"""Backbone + linear classifier, for supervised pretraining, fine-tuning and linear probes."""

from __future__ import annotations

import torch
import torch.nn as nn


class Classifier(nn.Module):
    """A backbone followed by dropout and a linear layer.

    Args:
        backbone: module mapping images to ``(B, backbone.feature_dim)``.
        num_classes: number of output logits.
        dropout: dropout before the linear layer.
        freeze_backbone: linear probe: the backbone gets no gradients and stays in eval mode.
    """

    def __init__(
        self, backbone: nn.Module, num_classes: int, dropout: float = 0.0, freeze_backbone: bool = False
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(int(backbone.feature_dim), num_classes))
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
        return self.head(features)
