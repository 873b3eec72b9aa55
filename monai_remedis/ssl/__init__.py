"""Self-supervised strategies (SimCLR, MoCo v2, BYOL, RELIC, Barlow Twins, MICLe, PEAC), built by name."""

from __future__ import annotations

from monai_remedis.ssl.barlow_twins import BarlowTwins
from monai_remedis.ssl.base import SSLStrategy
from monai_remedis.ssl.byol import BYOL
from monai_remedis.ssl.factory import create_strategy, list_strategies
from monai_remedis.ssl.genesis import Genesis
from monai_remedis.ssl.micle import MICLe
from monai_remedis.ssl.moco import MoCoV2
from monai_remedis.ssl.peac import PEAC
from monai_remedis.ssl.relic import RELIC
from monai_remedis.ssl.simclr import SimCLR

__all__ = [
    "BYOL",
    "RELIC",
    "BarlowTwins",
    "Genesis",
    "MICLe",
    "MoCoV2",
    "PEAC",
    "SSLStrategy",
    "SimCLR",
    "create_strategy",
    "list_strategies",
]
