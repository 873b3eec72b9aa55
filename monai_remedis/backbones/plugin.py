"""Built-in backbone plugin: registers the BiT, 3D and small ViT encoders through the public hook."""

from __future__ import annotations

from functools import partial

from monai_remedis.backbones.bit import BIT_TIMM_NAMES, SMALL_BIT_LAYERS, create_bit
from monai_remedis.backbones.resnet3d import RESNET3D_DEPTHS, create_resnet3d
from monai_remedis.backbones.vit import VIT_CONFIGS, create_vit
from monai_remedis.plugins.hookspecs import hookimpl
from monai_remedis.plugins.registry import Registry


@hookimpl
def remedis_register_backbones(registry: Registry) -> None:
    """Register ``bit_resnet{18,34,50x1,101x1,50x3,152x2}``, ``resnet{10,18,34}_3d`` and the small ViTs."""
    for name in [*SMALL_BIT_LAYERS, *BIT_TIMM_NAMES]:
        registry.register(name, partial(create_bit, name), description=f"BiT ResNetV2 (GN+WS), 2D: {name}")
    for name in RESNET3D_DEPTHS:
        registry.register(name, partial(create_resnet3d, name), description=f"MONAI ResNet, 3D: {name}")
    for name, cfg in VIT_CONFIGS.items():
        description = f"timm ViT, 2D, {cfg.patch_size} px patches, {cfg.depth} x {cfg.embed_dim}-d blocks: {name}"
        registry.register(name, partial(create_vit, name), description=description)
