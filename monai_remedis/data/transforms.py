"""Dictionary transforms used by every bundle: load-or-wrap images, and N augmented views for SSL."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import ImageReader
from monai.transforms import LoadImage, MapTransform, Randomizable
from monai.utils import convert_to_tensor

from monai_remedis.ssl.base import view_key


class EnsureImaged(MapTransform):
    """Load file paths with MONAI's ``LoadImage`` and wrap in-memory arrays, giving channel-first float tensors.

    Datalists from ``.npz`` sources carry arrays; those from folders, CSV or DICOM carry paths. This transform
    lets one bundle pipeline take either.

    Args:
        keys: keys to load.
        reader: MONAI reader (instance or name) for file paths; None uses
            :class:`~monai_remedis.data.readers.MedicalImageReader` (DICOM with MONOCHROME1 inversion and rescale,
            NIfTI, TIFF via tifffile, PNG/JPEG/PGM via PIL).
        dtype: output dtype.
        allow_missing_keys: don't fail when a key is absent.

    Raises:
        FileNotFoundError: naming the file when a path does not exist.
        RuntimeError: naming the file when a path cannot be read.
    """

    def __init__(
        self,
        keys: KeysCollection,
        reader: ImageReader | str | None = None,
        dtype: torch.dtype = torch.float32,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if reader is None:
            from monai_remedis.data.readers import MedicalImageReader

            reader = MedicalImageReader()
        self.loader = LoadImage(reader=reader, image_only=True, ensure_channel_first=True, dtype=None)
        self.dtype = dtype

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            value = d[key]
            if isinstance(value, (str, Path)):
                if not Path(value).exists():
                    raise FileNotFoundError(f"image file not found: '{value}' (key '{key}', item {d.get('id', '?')}).")
                try:
                    value = self.loader(value)
                except Exception as exc:
                    raise RuntimeError(
                        f"cannot read image '{value}' (key '{key}'): {type(exc).__name__}: {exc}"
                    ) from exc
            elif not isinstance(value, (np.ndarray, torch.Tensor)):
                raise TypeError(f"key '{key}' holds {type(value).__name__}; expected a file path or an array.")
            d[key] = convert_to_tensor(value, dtype=self.dtype, track_meta=False)
        return d


class MultiViewd(Randomizable, MapTransform):
    """Make ``num_views`` independently augmented views of an image for self-supervised learning.

    The views are stored under ``view_0``, ``view_1``, ... (the keys :class:`monai_remedis.ssl.SSLStrategy` reads).

    Args:
        keys: the image key (one key).
        view_transform: dict transform applied independently to make each view (a ``Compose`` of random
            MONAI transforms on ``{key: image}``). A list gives one transform per view (asymmetric views as in
            BYOL); it must then have ``num_views`` entries.
        num_views: how many views.
        delete_source: drop the source image from the output to save memory.
    """

    def __init__(
        self,
        keys: KeysCollection,
        view_transform: Callable | list[Callable],
        num_views: int = 2,
        delete_source: bool = True,
    ) -> None:
        MapTransform.__init__(self, keys)
        if len(self.keys) != 1:
            raise ValueError(f"MultiViewd takes one image key, got {self.keys}.")
        transforms = list(view_transform) if isinstance(view_transform, (list, tuple)) else [view_transform] * num_views
        if len(transforms) != num_views:
            raise ValueError(f"got {len(transforms)} view transforms for num_views={num_views}.")
        self.view_transforms = transforms
        self.num_views = num_views
        self.delete_source = delete_source

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None) -> MultiViewd:
        super().set_random_state(seed, state)
        for t in {id(t): t for t in self.view_transforms}.values():
            if isinstance(t, Randomizable):
                t.set_random_state(seed=int(self.R.randint(2**31 - 1)))
        return self

    def randomize(self, data: Any = None) -> None:  # randomness lives in the view transforms
        pass

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        key = self.keys[0]
        for i, transform in enumerate(self.view_transforms):
            d[view_key(i)] = transform({key: d[key]})[key]
        if self.delete_source:
            del d[key]
        return d
