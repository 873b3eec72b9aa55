"""Built-in strategy plugin: registers the SSL strategies through the public hook."""

from __future__ import annotations

from monai_remedis.plugins.hookspecs import hookimpl
from monai_remedis.plugins.registry import Registry
from monai_remedis.ssl.barlow_twins import BarlowTwins
from monai_remedis.ssl.byol import BYOL
from monai_remedis.ssl.genesis import Genesis
from monai_remedis.ssl.micle import MICLe
from monai_remedis.ssl.moco import MoCoV2
from monai_remedis.ssl.peac import PEAC
from monai_remedis.ssl.relic import RELIC
from monai_remedis.ssl.simclr import SimCLR

BUILTIN_STRATEGIES = {
    "simclr": (SimCLR, "SimCLR: NT-Xent over two views (Chen et al. 2020)"),
    "moco_v2": (MoCoV2, "MoCo v2: momentum encoder and queue, InfoNCE at t=0.2 (Chen et al. 2020)"),
    "byol": (BYOL, "BYOL: predictor regressing an EMA target network (Grill et al. 2020)"),
    "relic": (RELIC, "RELIC: contrastive term plus KL invariance across views (Mitrovic et al. 2021)"),
    "barlow_twins": (BarlowTwins, "Barlow Twins: cross-correlation to identity, lambda 5e-3 (Zbontar et al. 2021)"),
    "genesis": (Genesis, "Models Genesis: U-Net restores images from four distortions, MSE (Zhou et al. 2021)"),
    "micle": (MICLe, "MICLe: NT-Xent with positives from two images of one patient (Azizi et al. 2021)"),
    "peac": (PEAC, "PEAC: global + grid-matched patch consistency with an EMA teacher (Zhou et al. 2023)"),
}
"""Registered name -> (strategy class, one-line description)."""


@hookimpl
def remedis_register_strategies(registry: Registry) -> None:
    """Register the built-in strategies (the names of :data:`BUILTIN_STRATEGIES`)."""
    for name, (cls, description) in BUILTIN_STRATEGIES.items():
        registry.register(name, cls, description=description)
