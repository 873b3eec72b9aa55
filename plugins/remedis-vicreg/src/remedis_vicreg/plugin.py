"""The plugin module named by this distribution's ``monai_remedis`` entry point.

monai-remedis discovers it through ``importlib.metadata`` entry points, imports it, and calls each
``hookimpl``-decorated function with the matching registry.
"""

from __future__ import annotations

from monai_remedis.plugin_api import Registry, hookimpl

from remedis_vicreg.backbone import ConvNet
from remedis_vicreg.strategy import VICReg


@hookimpl
def remedis_register_backbones(registry: Registry) -> None:
    """Register ``vicreg_convnet``."""
    registry.register("vicreg_convnet", ConvNet, description="Small conv-GN-ReLU encoder, 2D/3D (remedis-vicreg)")


@hookimpl
def remedis_register_strategies(registry: Registry) -> None:
    """Register ``vicreg``."""
    registry.register("vicreg", VICReg, description="VICReg: variance-invariance-covariance (Bardes et al. 2022)")
