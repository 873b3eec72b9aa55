"""Hook specifications of monai-remedis.

Every hook a plugin may implement lives in this module. Hooks are only ever added, never renamed,
and their arguments never change names, so that third-party plugins keep working across releases.

A plugin is a module (or object) whose functions are decorated with :data:`hookimpl`, exposed
through the ``monai_remedis`` entry-point group of its distribution::

    [project.entry-points.monai_remedis]
    my_plugin = "my_package.plugin"

See ``docs/plugins.md`` for a worked example.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    from monai_remedis.plugins.registry import Registry

PROJECT_NAME = "monai_remedis"
"""pluggy project name, and the entry-point group plugins are discovered in."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def remedis_register_backbones(registry: Registry) -> None:
    """Register backbone factories by name.

    A backbone factory is called as ``factory(in_channels=..., spatial_dims=..., **kwargs)`` and
    returns an ``nn.Module`` mapping ``(B, C, *spatial)`` to ``(B, feature_dim)``, with the integer
    attributes ``feature_dim`` and ``spatial_dims``.

    Args:
        registry: the backbone registry; call ``registry.register(name, factory)``.
    """


@hookspec
def remedis_register_strategies(registry: Registry) -> None:
    """Register self-supervised strategy classes by name.

    A strategy factory is called as ``factory(backbone=..., **kwargs)`` and returns a
    :class:`monai_remedis.ssl.base.SSLStrategy`.

    Args:
        registry: the strategy registry; call ``registry.register(name, factory)``.
    """
