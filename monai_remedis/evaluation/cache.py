"""Decode once, train many times: cache the deterministic head of a transform for a whole sweep.

A data-efficiency sweep fine-tunes dozens of models on subsets of the same items. Loading, intensity scaling and
resizing give the same result every time, so :func:`decode_once` applies the leading deterministic transforms
(up to the first random one, as :class:`monai.data.CacheDataset` does) to every item once and returns the decoded
items with the remaining (random) tail. Each fine-tune then only pays for its augmentations.

The tail runs with MONAI's metadata tracking off (:class:`UntrackedCompose`): after decoding, the random
augmentations need no affine or filename, and plain tensors make them 3-4x faster than ``MetaTensor`` on CPU
(``benchmarks/bench_data.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from monai.data import get_track_meta, set_track_meta
from monai.transforms import Compose, RandomizableTrait, Transform

__all__ = ["CloneTensors", "UntrackedCompose", "decode_once", "split_deterministic"]


class CloneTensors(Transform):
    """Copy the tensors of a dict item, so that transforms after it never modify a cached decoded item."""

    def __call__(self, data: Mapping[Any, Any]) -> dict[Any, Any]:
        return {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in data.items()}


class UntrackedCompose(Compose):
    """A ``Compose`` that runs its transforms with MONAI metadata tracking off (``monai.data.set_track_meta``).

    Its transforms see and return plain ``torch.Tensor`` objects instead of ``MetaTensor``. Use it only for
    transforms that need no metadata (augmentations after decoding, orientation and spacing). The switch is
    process-wide while the transforms run, so do not share it across threads (process workers are fine).

    Example:
        >>> import torch
        >>> from monai.data import MetaTensor
        >>> from monai.transforms import RandFlipd
        >>> out = UntrackedCompose([RandFlipd(keys="image", prob=1.0)])({"image": MetaTensor(torch.zeros(1, 4, 4))})
        >>> type(out["image"]).__name__
        'Tensor'
    """

    def __call__(self, input_: Any, start: int = 0, end: int | None = None, threading: bool = False, lazy=None):
        previous = get_track_meta()
        set_track_meta(False)
        try:
            return super().__call__(input_, start=start, end=end, threading=threading, lazy=lazy)
        finally:
            set_track_meta(previous)


def split_deterministic(transform: Callable) -> tuple[Compose, Compose]:
    """Split a transform into its deterministic head and the rest (starting at the first random transform).

    Nested plain ``Compose`` objects are flattened first (subclasses such as ``OneOf`` or :class:`UntrackedCompose`
    count as one random step); a callable that is not a MONAI ``Transform`` ends the head,
    because nothing is known about it.

    Args:
        transform: a ``Compose`` or any callable.

    Returns:
        ``(head, tail)``; ``tail(head(x))`` equals ``transform(x)`` for the same random state.
    """
    flat = Compose([transform]).flatten()  # only plain Compose objects open up: an UntrackedCompose stays whole
    steps = list(flat.transforms)
    first_random = next(
        (i for i, t in enumerate(steps) if isinstance(t, RandomizableTrait) or not isinstance(t, Transform)),
        len(steps),
    )
    return Compose(steps[:first_random]), Compose(steps[first_random:])


def decode_once(
    datalist: Sequence[Mapping[str, Any]], transform: Callable, track_meta: bool = False
) -> tuple[list[dict[str, Any]], Compose]:
    """Apply the deterministic head of ``transform`` to every item once.

    Args:
        datalist: items (paths or arrays under ``image``).
        transform: the full per-item transform.
        track_meta: run the tail with ``MetaTensor`` metadata (off by default: plain tensors are faster).

    Returns:
        ``(decoded_items, tail)``: feed ``decoded_items`` with ``tail`` wherever ``datalist`` with ``transform``
        was used. Keys other than the transformed ones (``id``, ``label``, ``split``, ...) are kept. ``tail``
        starts by copying the item's tensors, so the cached items stay untouched. A transform whose head is
        empty (already decoded, e.g. a tail returned by this function) comes back unchanged.
    """
    head, tail = split_deterministic(transform)
    if not head.transforms:
        return [dict(item) for item in datalist], tail
    steps = [CloneTensors(), *tail.transforms]
    return [dict(head(dict(item))) for item in datalist], Compose(steps) if track_meta else UntrackedCompose(steps)
