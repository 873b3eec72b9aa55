"""Self-supervised losses, one per module."""

from __future__ import annotations

from monai_remedis.ssl.losses.barlow_twins import BarlowTwinsLoss
from monai_remedis.ssl.losses.byol import BYOLLoss
from monai_remedis.ssl.losses.moco import MoCoLoss
from monai_remedis.ssl.losses.ntxent import NTXentLoss
from monai_remedis.ssl.losses.relic import RelicLoss

__all__ = ["BYOLLoss", "BarlowTwinsLoss", "MoCoLoss", "NTXentLoss", "RelicLoss"]
