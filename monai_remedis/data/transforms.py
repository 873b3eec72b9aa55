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

from monai_remedis.data.validation import admit_image
from monai_remedis.ssl.base import view_key


class EnsureImaged(MapTransform):
    """Load file paths with MONAI's ``LoadImage`` and wrap in-memory arrays, giving channel-first float tensors.

    Datalists from ``.npz`` sources carry arrays; those from folders, CSV or DICOM carry paths. This transform
    lets one bundle pipeline take either. Both are in MONAI's file layout ``(C, x, y[, z])`` (x = columns): the
    readers return it, and :func:`~monai_remedis.data.builders.medmnist_datalist` lays arrays out the same way
    (see :func:`~monai_remedis.data.layout.to_monai_layout`); arrays are not transposed here.

    Args:
        keys: keys to load.
        reader: MONAI reader (instance or name) for file paths; None uses
            :class:`~monai_remedis.data.readers.MedicalImageReader` (DICOM with MONOCHROME1 inversion and rescale,
            NIfTI, TIFF via tifffile, PNG/JPEG/PGM via PIL).
        dtype: output dtype.
        channels: refuse images with another number of channels (e.g. a bundle's ``in_channels``); None: any.
        spatial_dims: refuse images with another number of spatial axes (2 or 3); None: any.
        allow_missing_keys: don't fail when a key is absent.

    Raises:
        FileNotFoundError: naming the file when a path does not exist.
        RuntimeError: naming the file when a path cannot be read.
        ValueError: naming the file (or item id) and its shape when ``channels`` or ``spatial_dims`` do not match,
            e.g. an RGB or multi-frame DICOM given to a single-channel 2D bundle; naming the file when it holds
            NaN/Inf values or values beyond 16 bits (:mod:`monai_remedis.data.validation`). PNG/TIFF/JPEG/PGM files
            of more than 8 bits per sample are rescaled to 0..255 by their bit depth, so the bundles' 8-bit
            intensity scaling does not saturate them.
    """

    def __init__(
        self,
        keys: KeysCollection,
        reader: ImageReader | str | None = None,
        dtype: torch.dtype = torch.float32,
        channels: int | None = None,
        spatial_dims: int | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.channels = channels
        self.spatial_dims = spatial_dims
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
            image = convert_to_tensor(value, dtype=self.dtype, track_meta=False)
            image = admit_image(value, image, data[key], d.get("id"))  # 16-bit -> 0..255, NaN/Inf refused
            self._check_shape(image, data[key], key, d.get("id"))
            d[key] = image
        return d

    def _check_shape(self, image: torch.Tensor, source: Any, key: Hashable, item_id: Any) -> None:
        wrong_channels = self.channels is not None and image.shape[0] != self.channels
        wrong_dims = self.spatial_dims is not None and image.ndim - 1 != self.spatial_dims
        if wrong_channels or wrong_dims:
            name = f"'{source}'" if isinstance(source, (str, Path)) else f"in-memory array of item {item_id or '?'}"
            raise ValueError(
                f"image {name} (key '{key}') has shape {tuple(image.shape)} = (channels, *spatial); expected "
                f"{self.channels if self.channels is not None else 'any number of'} channel(s) and "
                f"{self.spatial_dims if self.spatial_dims is not None else 'any number of'} spatial axes."
            )


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
