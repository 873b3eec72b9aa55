"""Self-supervised strategies (SimCLR, ...) built by name through the plugin registry."""

from __future__ import annotations

from monai_remedis.ssl.base import SSLStrategy
from monai_remedis.ssl.factory import create_strategy, list_strategies

__all__ = ["SSLStrategy", "create_strategy", "list_strategies"]
