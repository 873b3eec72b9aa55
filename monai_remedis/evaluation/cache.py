"""Decode once, train many times: cache the deterministic head of a transform for a whole sweep.

A data-efficiency sweep fine-tunes dozens of models on subsets of the same items. Loading, intensity scaling and
resizing give the same result every time, so :func:`decode_once` applies the leading deterministic transforms
(up to the first random one, as :class:`monai.data.CacheDataset` does) to every item once and returns the decoded
items with the remaining (random) tail. Each fine-tune then only pays for its augmentations.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from monai.transforms import Compose, RandomizableTrait, Transform

__all__ = ["CloneTensors", "decode_once", "split_deterministic"]


class CloneTensors(Transform):
    """Copy the tensors of a dict item, so that transforms after it never modify a cached decoded item."""

    def __call__(self, data: Mapping[Any, Any]) -> dict[Any, Any]:
        return {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in data.items()}


def split_deterministic(transform: Callable) -> tuple[Compose, Compose]:
    """Split a transform into its deterministic head and the rest (starting at the first random transform).

    Nested ``Compose`` objects are flattened first; a callable that is not a MONAI ``Transform`` ends the head,
    because nothing is known about it.

    Args:
        transform: a ``Compose`` or any callable.

    Returns:
        ``(head, tail)``; ``tail(head(x))`` equals ``transform(x)`` for the same random state.
    """
    flat = (transform if isinstance(transform, Compose) else Compose([transform])).flatten()
    steps = list(flat.transforms)
    first_random = next(
        (i for i, t in enumerate(steps) if isinstance(t, RandomizableTrait) or not isinstance(t, Transform)),
        len(steps),
    )
    return Compose(steps[:first_random]), Compose(steps[first_random:])


def decode_once(datalist: Sequence[Mapping[str, Any]], transform: Callable) -> tuple[list[dict[str, Any]], Compose]:
    """Apply the deterministic head of ``transform`` to every item once.

    Args:
        datalist: items (paths or arrays under ``image``).
        transform: the full per-item transform.

    Returns:
        ``(decoded_items, tail)``: feed ``decoded_items`` with ``tail`` wherever ``datalist`` with ``transform``
        was used. Keys other than the transformed ones (``id``, ``label``, ``split``, ...) are kept. ``tail``
        starts by copying the item's tensors, so the cached items stay untouched.
    """
    head, tail = split_deterministic(transform)
    if not head.transforms:
        return [dict(item) for item in datalist], tail
    return [dict(head(dict(item))) for item in datalist], Compose([CloneTensors(), *tail.transforms])
