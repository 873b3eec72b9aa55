"""Colour distortion for RGB images: brightness/contrast/saturation/hue jitter, and grayscale (random or always).

REMEDIS (Azizi et al. 2023), following SimCLR (Chen et al. 2020), distorts colour in its contrastive views. MONAI
has intensity transforms (``RandScaleIntensity``, ``RandAdjustContrast``, ``RandHistogramShift``) but no hue or
saturation jitter and no RGB-to-gray transform, so this module adds them on top of
``torchvision.transforms.v2.functional``. Images are channel-first tensors or arrays with values in ``[0, 1]``;
outputs keep the input's type (``MetaTensor`` stays ``MetaTensor``) and are clipped to ``[0, 1]``.

Example::

    >>> import torch
    >>> jitter = RandColorJitterd("image", brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1, prob=1.0)
    >>> out = jitter.set_random_state(0)({"image": torch.rand(3, 8, 8)})
    >>> out["image"].shape
    torch.Size([3, 8, 8])
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, RandomizableTransform, Transform
from monai.utils import convert_to_dst_type, convert_to_tensor
from torchvision.transforms.v2 import functional as tvf

__all__ = ["Grayscale", "Grayscaled", "RandColorJitter", "RandColorJitterd", "RandGrayscale", "RandGrayscaled"]

_OPS = ("brightness", "contrast", "saturation", "hue")


def _as_float_tensor(img: Any) -> torch.Tensor:
    return convert_to_tensor(img, dtype=torch.float32, track_meta=False)


def _check_rgb(image: torch.Tensor, what: str) -> None:
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"{what} needs a 2D RGB image of shape (3, H, W), got {tuple(image.shape)}.")


def _luminance(img: Any, what: str) -> Any:
    """ITU-R 601 luminance of an RGB image, repeated on the three channels, in the input's type."""
    out = _as_float_tensor(img)
    _check_rgb(out, what)
    return convert_to_dst_type(tvf.rgb_to_grayscale(out, num_output_channels=3), img)[0]


class RandColorJitter(RandomizableTransform):
    """Randomly change brightness, contrast, saturation and hue, in a random order.

    Each factor is drawn uniformly: brightness/contrast/saturation from ``[max(0, 1 - s), 1 + s]`` and the hue
    shift from ``[-hue, hue]`` (fraction of a full turn); a strength of 0 leaves that property alone.

    Args:
        brightness: brightness strength.
        contrast: contrast strength.
        saturation: saturation strength (RGB only).
        hue: hue strength in ``[0, 0.5]`` (RGB only).
        prob: probability of applying the jitter.

    Raises:
        ValueError: a negative strength, ``hue > 0.5``, or saturation/hue jitter on a non-RGB image.
    """

    def __init__(
        self,
        brightness: float = 0.4,
        contrast: float = 0.4,
        saturation: float = 0.4,
        hue: float = 0.1,
        prob: float = 0.8,
    ) -> None:
        RandomizableTransform.__init__(self, prob)
        strengths = {"brightness": brightness, "contrast": contrast, "saturation": saturation, "hue": hue}
        if any(v < 0 for v in strengths.values()) or hue > 0.5:
            raise ValueError(f"jitter strengths must be >= 0 and hue <= 0.5, got {strengths}.")
        self.strengths = strengths
        self.factors: dict[str, float] = {}
        self.order: list[str] = list(_OPS)

    def randomize(self, data: Any = None) -> None:
        super().randomize(None)
        if not self._do_transform:
            return
        self.factors = {}
        for name in _OPS:
            s = self.strengths[name]
            if s > 0:
                low, high = (-s, s) if name == "hue" else (max(0.0, 1.0 - s), 1.0 + s)
                self.factors[name] = float(self.R.uniform(low, high))
        self.order = [_OPS[i] for i in self.R.permutation(len(_OPS))]

    def __call__(self, img: Any, randomize: bool = True) -> Any:
        if randomize:
            self.randomize()
        if not self._do_transform:
            return img
        out = _as_float_tensor(img)
        if ("saturation" in self.factors or "hue" in self.factors) and out.shape[0] != 3:
            raise ValueError(f"saturation/hue jitter needs 3 channels, got an image of shape {tuple(out.shape)}.")
        for name in self.order:
            if name in self.factors:
                out = getattr(tvf, f"adjust_{name}")(out, self.factors[name])
        return convert_to_dst_type(out.clamp(0.0, 1.0), img)[0]


class RandGrayscale(RandomizableTransform):
    """Randomly replace an RGB image by its luminance (ITU-R 601 weights), repeated on the three channels.

    Args:
        prob: probability of converting (SimCLR: 0.2).
    """

    def __init__(self, prob: float = 0.2) -> None:
        RandomizableTransform.__init__(self, prob)

    def __call__(self, img: Any, randomize: bool = True) -> Any:
        if randomize:
            self.randomize(None)
        if not self._do_transform:
            return img
        return _luminance(img, "RandGrayscale")


class Grayscale(Transform):
    """Replace an RGB image by its luminance (ITU-R 601 weights), repeated on the three channels.

    Not random, so adding it to a ``Compose`` leaves the random streams of the other transforms unchanged. Stage 1
    uses it (``natural_grayscale``) to train an RGB backbone on the luminance that grayscale modalities will give it.
    """

    def __call__(self, img: Any) -> Any:
        return _luminance(img, "Grayscale")


class Grayscaled(MapTransform):
    """Dictionary version of :class:`Grayscale`.

    Args:
        keys: image keys.
        allow_missing_keys: don't fail when a key is absent.
    """

    def __init__(self, keys: KeysCollection, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.transform = Grayscale()

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.transform(d[key])
        return d


class _RandDictWrapper(RandomizableTransform, MapTransform):
    """Apply one array transform with the same random draw to every key."""

    def __init__(self, keys: KeysCollection, transform: RandomizableTransform, allow_missing_keys: bool) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, 1.0)  # the inner transform owns the probability
        self.transform = transform

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None) -> Any:
        super().set_random_state(seed, state)
        self.transform.set_random_state(seed, state)
        return self

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        self.transform.randomize(None)
        for key in self.key_iterator(d):
            d[key] = self.transform(d[key], randomize=False)
        return d


class RandColorJitterd(_RandDictWrapper):
    """Dictionary version of :class:`RandColorJitter` (the same factors for every key).

    Args:
        keys: image keys.
        brightness: brightness strength.
        contrast: contrast strength.
        saturation: saturation strength.
        hue: hue strength.
        prob: probability of applying the jitter.
        allow_missing_keys: don't fail when a key is absent.
    """

    def __init__(
        self,
        keys: KeysCollection,
        brightness: float = 0.4,
        contrast: float = 0.4,
        saturation: float = 0.4,
        hue: float = 0.1,
        prob: float = 0.8,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, RandColorJitter(brightness, contrast, saturation, hue, prob), allow_missing_keys)


class RandGrayscaled(_RandDictWrapper):
    """Dictionary version of :class:`RandGrayscale`.

    Args:
        keys: image keys.
        prob: probability of converting.
        allow_missing_keys: don't fail when a key is absent.
    """

    def __init__(self, keys: KeysCollection, prob: float = 0.2, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, RandGrayscale(prob), allow_missing_keys)
