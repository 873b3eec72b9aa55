"""remedis-vicreg: VICReg and a small convnet backbone, as a monai-remedis plugin."""

from __future__ import annotations

from remedis_vicreg.backbone import ConvNet
from remedis_vicreg.loss import VICRegLoss
from remedis_vicreg.strategy import VICReg

__version__ = "0.1.0"
__all__ = ["ConvNet", "VICReg", "VICRegLoss"]
