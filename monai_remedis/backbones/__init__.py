"""Backbones: BiT ResNetV2 (timm) and small 2D/3D encoders, built by name through the plugin registry."""

from __future__ import annotations

from monai_remedis.backbones.factory import create_backbone, list_backbones
from monai_remedis.backbones.weights import load_backbone_weights

__all__ = ["create_backbone", "list_backbones", "load_backbone_weights"]
