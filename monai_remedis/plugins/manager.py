"""The plugin manager: discovers plugins, isolates broken ones, fills the registries.

Built-in backbones and strategies are plugins like any other: they are listed in this package's own
``monai_remedis`` entry points and go through the same hooks. Entry points are loaded one by one so
that a third-party plugin that fails to import (or whose hook raises) is reported with its
distribution name and skipped, instead of taking the host down.

Environment variables:
    ``MONAI_REMEDIS_STRICT_PLUGINS``: ``1``/``true`` turns a broken plugin into a :class:`PluginLoadError`.
    ``MONAI_REMEDIS_PLUGINS``: comma-separated allowlist of entry-point names (built-ins are always loaded).
    ``MONAI_REMEDIS_DISABLE_PLUGINS``: comma-separated entry-point names never loaded.
"""

from __future__ import annotations

import importlib
import logging
import os
import warnings
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType

import pluggy

from monai_remedis.plugins import hookspecs
from monai_remedis.plugins.registry import Registry

logger = logging.getLogger(__name__)

STRICT_ENV = "MONAI_REMEDIS_STRICT_PLUGINS"
ALLOW_ENV = "MONAI_REMEDIS_PLUGINS"
DISABLE_ENV = "MONAI_REMEDIS_DISABLE_PLUGINS"

BUILTIN_PLUGINS = {
    "builtin_backbones": "monai_remedis.backbones.plugin",
    "builtin_strategies": "monai_remedis.ssl.plugin",
}
"""Built-in plugins by entry-point name; used when the package runs from a source tree without install metadata."""


class PluginLoadError(RuntimeError):
    """A plugin failed to load or register while strict mode is on."""


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that was skipped, and why."""

    name: str
    distribution: str
    error: str


@dataclass
class _State:
    manager: pluggy.PluginManager
    registries: dict[str, Registry]
    failures: list[PluginFailure]
    sources: dict[str, str]


_STATE: _State | None = None


def _env_list(name: str) -> set[str]:
    return {v.strip() for v in os.environ.get(name, "").split(",") if v.strip()}


def strict_mode() -> bool:
    """Whether ``MONAI_REMEDIS_STRICT_PLUGINS`` asks for broken plugins to raise."""
    return os.environ.get(STRICT_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def _distribution_label(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "<unknown distribution>"
    return f"{dist.metadata['Name']} {dist.version}"


def _report(failures: list[PluginFailure], failure: PluginFailure, exc: BaseException) -> None:
    if strict_mode():
        raise PluginLoadError(
            f"Plugin '{failure.name}' from {failure.distribution} failed: {failure.error} "
            f"(strict mode: unset {STRICT_ENV} to skip broken plugins)."
        ) from exc
    failures.append(failure)
    warnings.warn(
        f"monai-remedis: skipping plugin '{failure.name}' from {failure.distribution}: {failure.error}",
        RuntimeWarning,
        stacklevel=3,
    )


def _is_builtin(ep: EntryPoint) -> bool:
    """A built-in entry point: one of :data:`BUILTIN_PLUGINS`, pointing at our own module (not just named like it)."""
    return BUILTIN_PLUGINS.get(ep.name) == ep.value


def _register(pm: pluggy.PluginManager, plugin: object, name: str) -> None:
    """Register ``plugin`` and validate its hook names; a plugin with an unknown hook is unregistered again.

    Raises:
        pluggy.PluginValidationError: a hook implementation matches no hook specification (a misspelt name).
    """
    pm.register(plugin, name=name)
    try:
        pm.check_pending()  # plugins registered before this one were checked already: any error is this one's
    except pluggy.PluginValidationError:
        pm.unregister(plugin)
        raise


def _discover(pm: pluggy.PluginManager, failures: list[PluginFailure], sources: dict[str, str]) -> None:
    allow, disabled = _env_list(ALLOW_ENV), _env_list(DISABLE_ENV)
    seen: dict[str, str] = {}
    # by name; on a name clash our own built-in comes first, whatever the order of sys.path
    for ep in sorted(entry_points(group=hookspecs.PROJECT_NAME), key=lambda e: (e.name, not _is_builtin(e))):
        dist = _distribution_label(ep)
        if ep.name in seen:
            if seen[ep.name] != ep.value:  # two distributions claim one name: the built-in or first one wins
                failure = PluginFailure(ep.name, dist, f"entry point name already used by {seen[ep.name]}")
                _report(failures, failure, RuntimeError(failure.error))
            continue  # else the same distribution visible twice on sys.path
        seen[ep.name] = ep.value
        builtin = _is_builtin(ep)
        if ep.name in disabled or (allow and not builtin and ep.name not in allow):
            logger.info("plugin '%s' not loaded (allowlist/disable settings)", ep.name)
            continue
        try:
            plugin = ep.load()
            if pm.is_registered(plugin):
                continue
            _register(pm, plugin, ep.name)
        except Exception as exc:  # noqa: BLE001 - any import-time error of a plugin is isolated
            _report(failures, PluginFailure(ep.name, dist, f"{type(exc).__name__}: {exc}"), exc)
            continue
        sources[ep.name] = "builtin" if builtin else dist
    for name, module_path in BUILTIN_PLUGINS.items():  # source checkout without installed metadata
        if pm.get_plugin(name) is None and name not in disabled:
            pm.register(importlib.import_module(module_path), name=name)
            sources[name] = "builtin"


HOOKS = {"backbone": "remedis_register_backbones", "strategy": "remedis_register_strategies"}
"""Registry kind -> the hook that fills it."""


def _fill(state: _State, only: object | None = None) -> None:
    """Call every registering hook implementation (of ``only`` when given) with its registry."""
    pm = state.manager
    for kind, hook_name in HOOKS.items():
        registry = state.registries[kind]
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            if only is not None and impl.plugin is not only:
                continue
            name = pm.get_name(impl.plugin) or repr(impl.plugin)
            source = state.sources.get(name, name)
            registry.set_source("builtin" if source == "builtin" else f"{name} ({source})")
            try:
                impl.function(registry=registry)
            except Exception as exc:  # noqa: BLE001 - a broken hook must not crash the host
                failure = PluginFailure(name, source, f"{hook_name}: {type(exc).__name__}: {exc}")
                _report(state.failures, failure, exc)
            finally:
                registry.set_source("<direct>")


def _state() -> _State:
    global _STATE
    if _STATE is None:
        pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        pm.add_hookspecs(hookspecs)
        state = _State(pm, {kind: Registry(kind) for kind in HOOKS}, [], {})
        _discover(pm, state.failures, state.sources)
        _fill(state)
        _STATE = state
    return _STATE


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide pluggy manager, with every discoverable plugin registered."""
    return _state().manager


def get_registries() -> dict[str, Registry]:
    """The filled registries by kind: ``{"backbone": ..., "strategy": ...}``."""
    return _state().registries


def plugin_failures() -> list[PluginFailure]:
    """Plugins skipped because they failed to load or register (empty in strict mode: it raises)."""
    return list(_state().failures)


def register_plugin(plugin: ModuleType | object, name: str | None = None) -> None:
    """Register a plugin object in-process (tests, notebooks) and add what it registers."""
    state = _state()
    _register(state.manager, plugin, name)
    state.sources[state.manager.get_name(plugin)] = "in-process"
    _fill(state, only=plugin)


def reset_plugins() -> None:
    """Forget the discovered plugins; the next lookup discovers them again (for tests and env changes)."""
    global _STATE
    _STATE = None
