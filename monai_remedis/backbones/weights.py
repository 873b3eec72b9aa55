"""Load published or our own weights into a backbone from a local file (never from the network).

Supported files:
    * official BiT ``.npz`` (TensorFlow naming, e.g. ``BiT-M-R50x1.npz``), read by timm's ResNetV2 loader;
    * a timm / torchvision / torch ``state_dict`` (``.pth``/``.pt``/``.bin``) or ``.safetensors``;
    * monai-remedis stage outputs (``backbone.pt`` plain state dicts) and Ignite training checkpoints
      (``{"model": ..., "optimizer": ...}``), including SSL checkpoints whose keys start with ``backbone.``.

A 3-channel stem is adapted to the backbone's input channels (summing RGB filters for one channel, as timm
does), so ImageNet weights initialise grayscale radiograph models.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn as nn
from timm.models import adapt_input_conv

logger = logging.getLogger(__name__)

CONTAINER_KEYS = ("state_dict", "model", "network", "backbone", "encoder", "module")
"""Keys under which checkpoints commonly nest the actual state dict."""
PREFIXES = ("module.", "_orig_mod.", "backbone.", "encoder.", "model.", "online_backbone.")
"""Prefixes stripped from keys until they match the backbone (DDP, torch.compile, SSL wrappers)."""


class WeightsLoadError(RuntimeError):
    """Weights could not be loaded; the message names the file and the offending keys."""


def _is_state_dict(obj: object) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict from a torch/safetensors file, unwrapping common checkpoint containers."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        obj: object = load_file(str(path))
    else:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - re-raised with the file named
            raise WeightsLoadError(f"cannot read weights file {path}: {type(exc).__name__}: {exc}") from exc
    for _ in range(3):
        if _is_state_dict(obj):
            return dict(obj)  # type: ignore[arg-type]
        if isinstance(obj, Mapping):
            nested = next((obj[k] for k in CONTAINER_KEYS if k in obj and isinstance(obj[k], Mapping)), None)
            if nested is not None:
                obj = nested
                continue
        break
    raise WeightsLoadError(f"{path} holds no state dict (looked under top level and keys {', '.join(CONTAINER_KEYS)}).")


def _match_prefixes(state: dict[str, torch.Tensor], target_keys: set[str]) -> dict[str, torch.Tensor]:
    """Strip known prefixes (``module.``, ``backbone.``, ...) until the keys line up with ``target_keys``.

    A prefix is stripped when the keys carrying it match the target at least as well as the current keys, so
    ``module.backbone.stem.conv.weight`` becomes ``stem.conv.weight`` and wrapper-only keys (heads) are dropped.
    """
    best = state
    for _ in range(len(PREFIXES) + 1):
        overlap = len(target_keys & best.keys())
        if overlap == len(target_keys):
            break
        candidates = []
        for prefix in PREFIXES:
            stripped = {k[len(prefix) :]: v for k, v in best.items() if k.startswith(prefix)}
            if stripped and len(target_keys & stripped.keys()) >= overlap:
                candidates.append((len(target_keys & stripped.keys()), stripped))
        if not candidates:
            break
        best = max(candidates, key=lambda c: c[0])[1]
    return best


def _adapt_channels(state: dict[str, torch.Tensor], model_state: dict[str, torch.Tensor]) -> None:
    """Adapt first-conv weights whose input channels differ (e.g. RGB stem -> grayscale)."""
    for key, value in state.items():
        target = model_state.get(key)
        if target is None or value.ndim not in (4, 5) or value.shape == target.shape:
            continue
        if value.shape[0] == target.shape[0] and value.shape[2:] == target.shape[2:]:
            state[key] = adapt_input_conv(target.shape[1], value.float()).to(value.dtype)
            logger.info("adapted '%s' from %d to %d input channels", key, value.shape[1], target.shape[1])


def _load_bit_npz(model: nn.Module, path: Path) -> None:
    """Load an official BiT ``.npz`` with timm's ResNetV2 loader, adapting the stem to the model's channels."""
    if not hasattr(model, "load_pretrained") or not hasattr(model, "stem"):
        raise WeightsLoadError(f"{path}: BiT .npz weights need a BiT ResNetV2 backbone, got {type(model).__name__}.")
    conv = model.stem.conv
    rgb_conv = conv
    if conv.in_channels != 3:
        rgb_conv = copy.deepcopy(conv)
        rgb_conv.in_channels = 3
        rgb_conv.weight = nn.Parameter(torch.empty(conv.out_channels, 3, *conv.kernel_size))
        model.stem.conv = rgb_conv
    try:
        model.load_pretrained(str(path))
    except KeyError as exc:
        raise WeightsLoadError(f"{path}: not a BiT checkpoint for this architecture, missing array {exc}.") from exc
    finally:
        model.stem.conv = conv
    if rgb_conv is not conv:
        with torch.no_grad():
            conv.weight.copy_(adapt_input_conv(conv.in_channels, rgb_conv.weight.data))


HEAD_NAMES = ("head", "fc", "classifier", "last_linear", "projector", "projection", "predictor")
"""First key components of heads that a backbone never has; their tensors are dropped without complaint."""


def _check_unused(
    path: Path, state: dict[str, torch.Tensor], model_state: dict[str, torch.Tensor], strict: bool
) -> None:
    """Refuse file tensors the backbone has no place for (another architecture), unless ``strict=False``.

    Head tensors (:data:`HEAD_NAMES`) are expected in classifier and SSL checkpoints and always dropped. Any other
    unused tensor means the file holds a different network, e.g. a bit_resnet34 loaded into a bit_resnet18: its
    extra blocks would be dropped silently.
    """
    unused = sorted(k for k in state if k not in model_state and k.split(".", 1)[0] not in HEAD_NAMES)
    if not unused:
        return
    numel = sum(state[k].numel() for k in unused)
    if strict:
        raise WeightsLoadError(
            f"{path}: {len(unused)} tensors ({numel:,} values) in the file have no place in the backbone, e.g. "
            f"{', '.join(unused[:5])}. Is this a checkpoint of another architecture? Pass strict=False to load the "
            "matching tensors anyway (every dropped tensor is then logged)."
        )
    for key in unused:
        logger.warning(
            "%s: dropped tensor '%s' %s (no place in the backbone; strict=False)", path, key, tuple(state[key].shape)
        )


def load_backbone_weights(model: nn.Module, path: str | Path, strict: bool = True) -> nn.Module:
    """Load weights from a local file into ``model`` in place.

    Args:
        model: the backbone.
        path: BiT ``.npz``, torch/timm state dict, safetensors, or a monai-remedis checkpoint.
        strict: raise when any backbone parameter is missing from the file, or when the file holds tensors the
            backbone has no place for (classifier/projection heads in the file are always ignored); with False the
            matching tensors are loaded and every dropped one is logged.

    Returns:
        ``model``, for chaining.

    Raises:
        FileNotFoundError: the file does not exist.
        WeightsLoadError: the file is unreadable or its keys/shapes do not fit, naming the file and keys.
    """
    path = Path(path)
    if path.suffix == ".npz":
        if not path.is_file():
            raise FileNotFoundError(f"weights file not found: {path}")
        _load_bit_npz(model, path)
        return model
    model_state = model.state_dict()
    state = _match_prefixes(read_state_dict(path), set(model_state))
    _check_unused(path, state, model_state, strict)
    state = {k: v for k, v in state.items() if k in model_state}
    _adapt_channels(state, model_state)
    bad = [
        f"{k}: file {tuple(v.shape)} vs model {tuple(model_state[k].shape)}"
        for k, v in state.items()
        if v.shape != model_state[k].shape
    ]
    if bad:
        raise WeightsLoadError(f"{path}: shape mismatch for {len(bad)} tensors, e.g. {'; '.join(bad[:3])}.")
    missing = sorted(set(model_state) - set(state))
    if missing and strict:
        raise WeightsLoadError(
            f"{path}: {len(missing)} backbone tensors missing from the file, e.g. {', '.join(missing[:5])}. "
            "Is this a checkpoint of the same backbone architecture?"
        )
    model.load_state_dict(state, strict=False)
    logger.info("loaded %d tensors from %s (%d missing)", len(state), path, len(missing))
    return model
