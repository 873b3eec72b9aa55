"""Task models built on backbones."""

from __future__ import annotations

from monai_remedis.models.classifier import Classifier

__all__ = ["Classifier"]
