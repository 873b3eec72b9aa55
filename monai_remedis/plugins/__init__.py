"""Plugin system: pluggy hook specifications, the plugin manager and name registries."""

from __future__ import annotations

from monai_remedis.plugins.hookspecs import PROJECT_NAME, hookimpl, hookspec
from monai_remedis.plugins.manager import (
    PluginLoadError,
    get_plugin_manager,
    get_registries,
    plugin_failures,
    register_plugin,
    reset_plugins,
)
from monai_remedis.plugins.registry import Registry, RegistryEntry

__all__ = [
    "PROJECT_NAME",
    "PluginLoadError",
    "Registry",
    "RegistryEntry",
    "get_plugin_manager",
    "get_registries",
    "hookimpl",
    "hookspec",
    "plugin_failures",
    "register_plugin",
    "reset_plugins",
]
