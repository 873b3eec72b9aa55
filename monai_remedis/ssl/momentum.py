"""Momentum (EMA) target networks, shared by MoCo v2 and BYOL.

References:
    He et al., "Momentum Contrast for Unsupervised Visual Representation Learning", CVPR 2020.
    Grill et al., "Bootstrap Your Own Latent", NeurIPS 2020 (cosine schedule of the target momentum).
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn as nn
from torch.optim.swa_utils import get_ema_multi_avg_fn


def frozen_copy(module: nn.Module) -> nn.Module:
    """A deep copy of ``module`` whose parameters never receive gradients (the momentum/target network).

    The copy stays a submodule of the strategy, so it is saved in checkpoints and, under DDP, broadcast from
    rank 0 with the rest of the model. Its parameters have ``requires_grad=False``, so optimisers built from
    trainable parameters leave it alone and DDP does not reduce gradients for it.

    Example:
        >>> import torch.nn as nn
        >>> target = frozen_copy(nn.Linear(4, 2))
        >>> any(p.requires_grad for p in target.parameters())
        False
    """
    target = copy.deepcopy(module)
    target.requires_grad_(False)
    return target


def cosine_momentum(progress: float, base: float, final: float = 1.0) -> float:
    """BYOL's schedule ``final - (final - base) * (cos(pi * progress) + 1) / 2``: ``base`` at 0, ``final`` at 1.

    Args:
        progress: fraction of training done, in [0, 1].
        base: momentum at the start (BYOL: 0.996).
        final: momentum at the end (BYOL: 1.0).

    Example:
        >>> cosine_momentum(0.0, 0.996), cosine_momentum(1.0, 0.996)
        (0.996, 1.0)
    """
    progress = min(max(float(progress), 0.0), 1.0)
    return final - (final - base) * (math.cos(math.pi * progress) + 1.0) / 2.0


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """``target <- momentum * target + (1 - momentum) * online`` for parameters; buffers are copied.

    Uses torch's ``get_ema_multi_avg_fn`` (a fused ``torch._foreach_lerp_``). Buffers (e.g. BatchNorm running
    statistics) are copied from the online network, as MoCo and BYOL do.

    Args:
        target: the momentum network (a :func:`frozen_copy` of ``online``).
        online: the network trained by back-propagation.
        momentum: EMA decay in [0, 1]; 1 keeps the target unchanged, 0 copies the online network.

    Example:
        >>> import torch.nn as nn
        >>> online = nn.Linear(2, 1)
        >>> target = frozen_copy(online)
        >>> _ = online.weight.data.add_(1.0)
        >>> ema_update(target, online, momentum=0.5)
    """
    target_params, online_params = list(target.parameters()), list(online.parameters())
    if len(target_params) != len(online_params):
        raise ValueError("target and online networks differ in structure.")
    if target_params:
        get_ema_multi_avg_fn(momentum)(target_params, online_params, None)
    for t_buf, o_buf in zip(target.buffers(), online.buffers(), strict=True):
        t_buf.copy_(o_buf)
