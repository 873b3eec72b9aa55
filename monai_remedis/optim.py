"""Optimisers and LR schedules by name, from timm (LARS, SGD, AdamW) and MONAI (warmup + cosine)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch.nn as nn
from monai.optimizers import WarmupCosineSchedule
from timm.optim import create_optimizer_v2
from torch.optim import Optimizer

OPTIMIZERS = ("lars", "sgd", "momentum", "adamw", "adam")


def scaled_lr(learning_rate: float, batch_size: int, scale_with_batch: bool) -> float:
    """Linear LR scaling of SimCLR/REMEDIS: ``lr = learning_rate * batch_size / 256`` when asked."""
    return learning_rate * batch_size / 256 if scale_with_batch else learning_rate


def build_optimizer(
    model: nn.Module,
    name: str = "lars",
    lr: float = 0.3,
    weight_decay: float = 1e-6,
    momentum: float = 0.9,
    lr_scales: Mapping[str, float] | None = None,
) -> Optimizer:
    """Create an optimiser over ``model``'s trainable parameters.

    Biases and normalisation parameters are excluded from weight decay, as in SimCLR/BiT. Under LARS they keep the
    trust-ratio adaptation (``always_adapt``): timm's ``Lars`` skips it for the weight-decay-0 group by default, so
    at SimCLR's LR (0.15 at batch 128) GroupNorm scales and biases of a pretrained backbone took raw SGD steps,
    grew 10-37x in 24 steps and turned the features into a constant. Parameters whose norm is 0 (freshly
    zero-initialised biases) still step at the plain LR, as timm defines the trust ratio.

    Args:
        model: the module to optimise.
        name: one of :data:`OPTIMIZERS`.
        lr: learning rate (already scaled).
        weight_decay: weight decay (REMEDIS SimCLR: 1e-6).
        momentum: momentum for LARS/SGD.
        lr_scales: submodule name -> learning-rate multiplier (discriminative fine-tuning, e.g. ``{"backbone":
            0.1}``); parameters outside these submodules train at ``lr``.

    Raises:
        ValueError: naming the known optimisers when ``name`` is unknown, or a scale that is not positive or names
            no submodule.
    """
    key = name.lower()
    if key not in OPTIMIZERS:
        raise ValueError(f"Unknown optimizer '{name}'. Known optimizers: {', '.join(OPTIMIZERS)}.")
    kwargs = {"momentum": momentum} if key in ("lars", "sgd", "momentum") else {}
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError("the model has no trainable parameters.")
    scales = {name: float(scale) for name, scale in (lr_scales or {}).items() if float(scale) != 1.0}
    params: Any = _TrainableView(model)
    if scales:
        params = scaled_param_groups(model, lr, weight_decay, scales)
    optimizer = create_optimizer_v2(
        params, opt=key, lr=lr, weight_decay=weight_decay, filter_bias_and_bn=True, **kwargs
    )
    if key == "lars":
        for group in optimizer.param_groups:
            group["always_adapt"] = True
    return optimizer


def scaled_param_groups(
    model: nn.Module, lr: float, weight_decay: float, lr_scales: Mapping[str, float]
) -> list[dict[str, Any]]:
    """Parameter groups of ``model``'s trainable parameters by (weight decay, learning rate).

    Weight decay follows timm's rule (none for biases, 1-D parameters and ``no_weight_decay()``); the parameters of
    submodule ``name`` in ``lr_scales`` get ``lr * lr_scales[name]``. The schedule multiplies every group alike.
    """
    modules = dict(model.named_modules())
    for name, scale in lr_scales.items():
        if name not in modules:
            known = ", ".join(n for n in modules if n and "." not in n)
            raise ValueError(f"lr_scales names '{name}', which is not a submodule of the model (top level: {known}).")
        if not scale > 0:
            raise ValueError(f"lr_scales['{name}'] must be positive, got {scale}; freeze a module instead.")
    no_decay = set(getattr(model, "no_weight_decay", lambda: set())())
    groups: dict[tuple[float, float], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        decay = 0.0 if param.ndim <= 1 or name.endswith(".bias") or name in no_decay else weight_decay
        scale = next((s for m, s in lr_scales.items() if name.startswith(m + ".")), 1.0)
        groups.setdefault((decay, scale), []).append(param)
    return [{"params": p, "weight_decay": d, "lr": lr * s} for (d, s), p in groups.items()]


class _TrainableView(nn.Module):
    """Expose only parameters that require gradients (linear probes freeze the backbone)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self._model = model

    def named_parameters(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):  # type: ignore[override]
        for name, p in self._model.named_parameters(prefix=prefix, recurse=recurse, remove_duplicate=remove_duplicate):
            if p.requires_grad:
                yield name, p

    def no_weight_decay(self) -> set[str]:
        return set(getattr(self._model, "no_weight_decay", lambda: set())())


def warmup_cosine(optimizer: Optimizer, total_steps: int, warmup_steps: int) -> WarmupCosineSchedule:
    """Linear warmup then cosine decay to 0, stepped every iteration (MONAI's ``WarmupCosineSchedule``)."""
    return WarmupCosineSchedule(optimizer, warmup_steps=max(0, min(warmup_steps, total_steps - 1)), t_total=total_steps)
