"""Build SSL strategies by registered name."""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from monai_remedis.plugins.manager import get_registries
from monai_remedis.ssl.base import SSLStrategy


def list_strategies(pattern: str = "*") -> list[str]:
    """Registered strategy names matching a wildcard pattern."""
    return get_registries()["strategy"].names(pattern)


def create_strategy(name: str, backbone: nn.Module, **kwargs: Any) -> SSLStrategy:
    """Create the strategy registered as ``name`` around ``backbone``.

    Raises:
        KeyError: listing the known strategies when ``name`` is unknown.
        TypeError: when the plugin's factory does not return an :class:`SSLStrategy`.
    """
    strategy = get_registries()["strategy"].create(name, backbone=backbone, **kwargs)
    if not isinstance(strategy, SSLStrategy):
        raise TypeError(f"strategy '{name}' returned {type(strategy).__name__}, not an SSLStrategy subclass.")
    return strategy


def strategy_data_transform(
    name: str, load_transform: Any, view_transform: Any, strategy_kwargs: dict[str, Any] | None = None
) -> Any:
    """The SSL data pipeline the strategy ``name`` asks for (its ``data_transform``), or None for the default.

    Raises:
        KeyError: listing the known strategies when ``name`` is unknown.
    """
    factory = get_registries()["strategy"].get(name).factory
    custom = getattr(factory, "data_transform", None)
    if custom is None:
        return None
    return custom(load_transform, view_transform, dict(strategy_kwargs or {}))
