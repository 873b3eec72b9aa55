"""The stable surface for plugin authors: everything a monai-remedis plugin may import.

A plugin (see ``docs/plugins.md`` and the example ``plugins/remedis-vicreg``) imports from this module only.
Names here keep their meaning across releases: they are only ever added, never renamed or removed without a
deprecation period; everything else in ``monai_remedis`` is internal and may move.

* Hooks: :data:`hookimpl` decorates the plugin's ``remedis_register_backbones(registry)`` /
  ``remedis_register_strategies(registry)`` functions; :class:`Registry` is the type of their argument.
* Strategies: :class:`SSLStrategy` (the contract) and :func:`view_key` (batch key of the i-th view).
* Building blocks: :func:`projection_head` (SimCLR-style MLP head), :func:`collapse_logs` (the collapse signals a
  strategy's ``forward`` should log), :func:`full_precision` (float32 for losses under autocast), and
  :func:`frozen_copy` / :func:`ema_update` / :func:`cosine_momentum` for target networks.
* Distributed losses: :func:`gather_with_grad` (global-batch negatives or statistics, gradients routed back to the
  owning rank), :func:`gather_no_grad` (queues), :func:`world_size`, :func:`rank`.
* Testing: :func:`register_plugin` / :func:`reset_plugins` register a plugin in-process without packaging it;
  :func:`create_backbone` / :func:`create_strategy` build registered names.
"""

from __future__ import annotations

from monai_remedis.backbones.factory import create_backbone, list_backbones
from monai_remedis.plugins.hookspecs import hookimpl
from monai_remedis.plugins.manager import register_plugin, reset_plugins
from monai_remedis.plugins.registry import Registry
from monai_remedis.ssl.base import SSLStrategy, view_key
from monai_remedis.ssl.collapse import COLLAPSE_WARNING_SCORE, collapse_logs
from monai_remedis.ssl.distributed import gather_no_grad, gather_with_grad, rank, world_size
from monai_remedis.ssl.factory import create_strategy, list_strategies
from monai_remedis.ssl.heads import projection_head
from monai_remedis.ssl.losses.utils import full_precision
from monai_remedis.ssl.momentum import cosine_momentum, ema_update, frozen_copy

__all__ = [
    "COLLAPSE_WARNING_SCORE",
    "Registry",
    "SSLStrategy",
    "collapse_logs",
    "cosine_momentum",
    "create_backbone",
    "create_strategy",
    "ema_update",
    "frozen_copy",
    "full_precision",
    "gather_no_grad",
    "gather_with_grad",
    "hookimpl",
    "list_backbones",
    "list_strategies",
    "projection_head",
    "rank",
    "register_plugin",
    "reset_plugins",
    "view_key",
    "world_size",
]
