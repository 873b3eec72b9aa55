"""Multi-instance views for MICLe: the second view comes from another image of the same patient.

Reference: Azizi et al., "Big Self-Supervised Models Advance Medical Image Classification", ICCV 2021 (MICLe);
REMEDIS (Azizi et al., Nat. Biomed. Eng. 2023).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from monai.data import Dataset
from monai.transforms import Compose, Randomizable

from monai_remedis.evaluation.cache import UntrackedCompose, decode_once
from monai_remedis.ssl.base import view_key

__all__ = ["ItemViews", "MultiInstanceDataset"]


def _identity(item: Mapping[Hashable, Any], key: Hashable, id_key: Hashable) -> Any:
    """What identifies an item's image: its ``id``, else its file path, else the image object itself."""
    if item.get(id_key) is not None:
        return ("id", item[id_key])
    value = item.get(key)
    if isinstance(value, (str, Path)):
        return ("path", str(value))
    return ("object", id(value))


class MultiInstanceDataset(Randomizable, Dataset):
    """MICLe's data: ``view_0`` from an item's image, ``view_1`` (..) from another image of the same patient.

    Every image is decoded once, when the dataset is built (the deterministic head of ``load_transform``, as
    :func:`~monai_remedis.evaluation.cache.decode_once` does for every other strategy); each ``__getitem__`` then
    draws a partner among the other images of the item's patient and augments both. An item without
    ``patient_key``, or a patient with a single image, gets independent augmentations of its own image, so MICLe
    falls back to SimCLR. Each output also holds ``multi_instance``: 1 when the views came from two images, else 0.

    A stage that builds its loader from ``datalist`` + ``transform`` uses :meth:`item_transform` as the
    transform; a stage that takes a dataset uses this object directly.

    Args:
        data: the items pairs are drawn from (the SSL training datalist).
        view_transform: dict transform making one augmented view from ``{key: image}``.
        load_transform: dict transform loading and normalising a raw item (the bundle's ``load_transform``);
            None when items already hold tensors.
        num_views: number of views; view 0 is from the item's image, the others from the partner image.
        patient_key: the item field naming the patient.
        id_key: the field identifying an image (so an item is never paired with a copy of itself); without it,
            file paths or the image objects themselves identify images.
        key: the image key.

    Example:
        >>> import numpy as np
        >>> items = [
        ...     {"image": np.zeros((1, 8, 8), np.float32), "patient_id": "p1", "id": "a"},
        ...     {"image": np.ones((1, 8, 8), np.float32), "patient_id": "p1", "id": "b"},
        ... ]
        >>> out = MultiInstanceDataset(items, view_transform=lambda d: d)[0]
        >>> float(out["view_0"].max()), float(out["view_1"].max()), out["multi_instance"]
        (0.0, 1.0, 1)
    """

    def __init__(
        self,
        data: Sequence[Mapping[Hashable, Any]],
        view_transform: Callable,
        load_transform: Callable | None = None,
        num_views: int = 2,
        patient_key: Hashable = "patient_id",
        id_key: Hashable = "id",
        key: Hashable = "image",
    ) -> None:
        if num_views < 2:
            raise ValueError(f"num_views must be >= 2, got {num_views}.")
        items = [dict(item) for item in data]
        identities = [_identity(item, key, id_key) for item in items]
        if load_transform is not None:
            decoded, self.load_tail = decode_once(items, load_transform)
            self.view_transform: Callable = UntrackedCompose([view_transform])
        else:
            decoded, self.load_tail = items, Compose([])
            self.view_transform = view_transform
        Dataset.__init__(self, decoded, transform=None)
        self.num_views = num_views
        self.key = key
        self.id_key = id_key
        self.index_of = {identity: i for i, identity in enumerate(identities)}
        by_patient: dict[Any, list[int]] = defaultdict(list)
        for i, item in enumerate(items):
            if item.get(patient_key) is not None:
                by_patient[item[patient_key]].append(i)
        self._partners = [
            [j for j in by_patient.get(item.get(patient_key), []) if identities[j] != identities[i]]
            if item.get(patient_key) is not None
            else []
            for i, item in enumerate(items)
        ]
        self._partner: int | None = None

    def set_random_state(
        self, seed: int | None = None, state: np.random.RandomState | None = None
    ) -> MultiInstanceDataset:
        super().set_random_state(seed, state)
        for t in (self.view_transform, self.load_tail):
            if isinstance(t, Randomizable):
                t.set_random_state(seed=int(self.R.randint(2**31 - 1)))
        return self

    def partners(self, index: int) -> list[int]:
        """Indices of the other images of item ``index``'s patient (empty without a patient id)."""
        return list(self._partners[index])

    def randomize(self, index: int) -> None:
        candidates = self._partners[index]
        self._partner = candidates[self.R.randint(len(candidates))] if candidates else None

    def _loaded(self, index: int) -> dict[Hashable, Any]:
        return dict(self.load_tail(dict(self.data[index])))

    def _transform(self, index: int) -> dict[Hashable, Any]:
        self.randomize(index)
        d = self._loaded(index)
        anchor = d.pop(self.key)
        partner = self._loaded(self._partner)[self.key] if self._partner is not None else anchor
        d[view_key(0)] = self.view_transform({self.key: anchor})[self.key]
        for i in range(1, self.num_views):
            d[view_key(i)] = self.view_transform({self.key: partner})[self.key]
        d["multi_instance"] = int(self._partner is not None)
        return d

    def item_transform(self) -> ItemViews:
        """The same draws as a dict transform over this dataset's own raw items (looked up by id, path or
        object), for a stage that takes ``datalist`` + ``transform``; decoding still happens once, here."""
        return ItemViews(self)


class ItemViews(Randomizable):
    """``item -> dataset[index of item]`` for a :class:`MultiInstanceDataset` (see its ``item_transform``).

    Not a MONAI ``Transform`` on purpose: a decode cache in front of it leaves it whole, so raw items reach it.
    """

    def __init__(self, dataset: MultiInstanceDataset) -> None:
        self.dataset = dataset

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None) -> ItemViews:
        self.dataset.set_random_state(seed, state)
        return self

    def randomize(self, data: Any = None) -> None:
        """Draws happen in the dataset."""

    def __call__(self, item: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = self.dataset
        identity = _identity(item, d.key, d.id_key)
        if identity not in d.index_of:
            raise KeyError(f"item {identity[1]!r} is not in the MultiInstanceDataset's datalist.")
        return d[d.index_of[identity]]
