"""Built-in strategy plugin: registers the SSL strategies through the public hook."""

from __future__ import annotations

from monai_remedis.plugins.hookspecs import hookimpl
from monai_remedis.plugins.registry import Registry
from monai_remedis.ssl.simclr import SimCLR


@hookimpl
def remedis_register_strategies(registry: Registry) -> None:
    """Register the built-in strategies (``simclr``)."""
    registry.register("simclr", SimCLR, description="SimCLR: NT-Xent over two views (Chen et al. 2020)")
