"""Deterministic, stratified label fractions for data-efficiency experiments."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np


def label_fraction(
    datalist: Sequence[dict[str, Any]], fraction: float, seed: int = 0, min_per_class: int = 1
) -> list[dict[str, Any]]:
    """Keep a stratified ``fraction`` of a labelled datalist, deterministically for a seed.

    Each class is shuffled once with ``seed`` and its first ``ceil(fraction * n_class)`` items are kept, so for a
    fixed seed a smaller fraction is always a subset of a larger one (nested subsets make data-efficiency
    curves comparable across fractions).

    Args:
        datalist: items with an integer ``"label"``.
        fraction: in (0, 1].
        seed: subset seed.
        min_per_class: keep at least this many items of every class.

    Raises:
        ValueError: fraction out of range, or an item without an integer label (named by index/id).
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}.")
    by_class: dict[int, list[int]] = defaultdict(list)
    for i, item in enumerate(datalist):
        label = item.get("label")
        if isinstance(label, (bool, float)) or not isinstance(label, (int, np.integer)):
            raise ValueError(f"item {i} ({item.get('id', '?')}) has no integer 'label' (got {label!r}).")
        by_class[int(label)].append(i)
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    for label in sorted(by_class):
        idx = np.asarray(by_class[label])
        order = idx[rng.permutation(len(idx))]
        n = min(len(idx), max(min_per_class, math.ceil(fraction * len(idx))))
        keep.extend(order[:n].tolist())
    return [datalist[i] for i in sorted(keep)]
