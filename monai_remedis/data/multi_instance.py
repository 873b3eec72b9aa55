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
from monai.config import KeysCollection
from monai.transforms import MapTransform, Randomizable

from monai_remedis.ssl.base import view_key


def _identity(item: Mapping[Hashable, Any], key: Hashable, id_key: Hashable) -> Any:
    """What identifies an item's image: its ``id``, else its file path, else the image object itself."""
    if item.get(id_key) is not None:
        return ("id", item[id_key])
    value = item.get(key)
    if isinstance(value, (str, Path)):
        return ("path", str(value))
    return ("object", id(value))


class MultiInstanceViewsd(Randomizable, MapTransform):
    """Make ``view_0`` from an item's image and ``view_1`` (..) from another image of the same patient.

    This is the data side of MICLe. It replaces ``Compose([load_transform, MultiViewd(...)])`` in a bundle's
    ``ssl_transform`` and runs on raw datalist items. For an item whose ``patient_key`` names a patient with
    other images in ``datalist``, one of those images is drawn at random, loaded with ``load_transform`` and
    augmented for the remaining views; for any other item (no ``patient_id``, or a single image) every view is
    an independent augmentation of the item's own image, so MICLe falls back to SimCLR. The output also holds
    ``multi_instance``: 1 when the views came from two images, else 0.

    Args:
        keys: the image key (one key).
        datalist: the items pairs are drawn from (the SSL training datalist).
        view_transform: dict transform making one augmented view from ``{key: image}``.
        load_transform: dict transform loading and normalising a raw item (the bundle's ``load_transform``);
            None when items already hold tensors.
        num_views: number of views; view 0 is from the item's image, the others from the partner image.
        patient_key: the datalist field naming the patient.
        id_key: the field identifying an image (so an item is never paired with itself); without it, file paths
            or the image objects themselves identify images.
        delete_source: drop the source image from the output.

    Example:
        >>> import numpy as np
        >>> datalist = [
        ...     {"image": np.zeros((1, 8, 8), np.float32), "patient_id": "p1", "id": "a"},
        ...     {"image": np.ones((1, 8, 8), np.float32), "patient_id": "p1", "id": "b"},
        ... ]
        >>> pair = MultiInstanceViewsd("image", datalist, view_transform=lambda d: d)
        >>> out = pair(datalist[0])
        >>> float(out["view_0"].max()), float(out["view_1"].max()), out["multi_instance"]
        (0.0, 1.0, 1)
    """

    def __init__(
        self,
        keys: KeysCollection,
        datalist: Sequence[Mapping[Hashable, Any]],
        view_transform: Callable,
        load_transform: Callable | None = None,
        num_views: int = 2,
        patient_key: Hashable = "patient_id",
        id_key: Hashable = "id",
        delete_source: bool = True,
    ) -> None:
        MapTransform.__init__(self, keys)
        if len(self.keys) != 1:
            raise ValueError(f"MultiInstanceViewsd takes one image key, got {self.keys}.")
        if num_views < 2:
            raise ValueError(f"num_views must be >= 2, got {num_views}.")
        self.view_transform = view_transform
        self.load_transform = load_transform
        self.num_views = num_views
        self.patient_key = patient_key
        self.id_key = id_key
        self.delete_source = delete_source
        self.by_patient: dict[Any, list[Mapping[Hashable, Any]]] = defaultdict(list)
        for item in datalist:
            if item.get(patient_key) is not None:
                self.by_patient[item[patient_key]].append(item)
        self._partner: Mapping[Hashable, Any] | None = None

    def set_random_state(
        self, seed: int | None = None, state: np.random.RandomState | None = None
    ) -> MultiInstanceViewsd:
        super().set_random_state(seed, state)
        for t in (self.view_transform, self.load_transform):
            if isinstance(t, Randomizable):
                t.set_random_state(seed=int(self.R.randint(2**31 - 1)))
        return self

    def partners(self, item: Mapping[Hashable, Any]) -> list[Mapping[Hashable, Any]]:
        """The other images of ``item``'s patient in the datalist (empty without ``patient_id``)."""
        patient = item.get(self.patient_key)
        if patient is None:
            return []
        key = self.keys[0]
        own = _identity(item, key, self.id_key)
        return [c for c in self.by_patient.get(patient, []) if _identity(c, key, self.id_key) != own]

    def randomize(self, data: Mapping[Hashable, Any]) -> None:
        candidates = self.partners(data)
        self._partner = candidates[self.R.randint(len(candidates))] if candidates else None

    def _load(self, item: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        return dict(self.load_transform(dict(item))) if self.load_transform is not None else dict(item)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        key = self.keys[0]
        self.randomize(data)
        d = self._load(data)
        anchor = d[key]
        partner = self._load(self._partner)[key] if self._partner is not None else anchor
        d[view_key(0)] = self.view_transform({key: anchor})[key]
        for i in range(1, self.num_views):
            d[view_key(i)] = self.view_transform({key: partner})[key]
        d["multi_instance"] = int(self._partner is not None)
        if self.delete_source:
            del d[key]
        return d
