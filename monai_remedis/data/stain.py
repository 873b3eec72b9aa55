"""H&E stain augmentation in the haematoxylin-eosin-DAB (HED) colour space.

Scanners, staining protocols and labs shift the colour of histology slides; augmenting the stain concentrations
makes a model robust to it (Tellez et al., "Quantifying the effects of data augmentation and stain color
normalization in convolutional neural networks for computational pathology", Med. Image Anal. 2019). An RGB
image in ``[0, 1]`` is turned into optical density ``OD = -log(RGB)`` and deconvolved into the three stain
concentrations with Ruifrok & Johnston's matrix (``skimage.color.hed_from_rgb``); each concentration ``c``
becomes ``alpha * c + beta`` and the result is mapped back to RGB.

Unlike ``skimage.color.rgb2hed``, which clips negative concentrations to zero, the conversion here keeps them, so
``alpha = 1, beta = 0`` returns the image unchanged (``rgb2hed`` followed by ``hed2rgb`` changes H&E tiles by up to
0.3). MONAI's ``monai.apps.pathology`` has stain *normalisation* (Macenko) but no stain augmentation.

Example::

    >>> import torch
    >>> jitter = RandHEDJitterd("image", sigma=0.05, bias=0.05, prob=1.0)
    >>> jitter.set_random_state(0)({"image": torch.rand(3, 8, 8)})["image"].shape
    torch.Size([3, 8, 8])
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
from monai.config import KeysCollection
from monai.transforms import MapTransform, RandomizableTransform, Transform
from monai.utils import convert_to_dst_type, convert_to_numpy
from skimage.color import hed_from_rgb, rgb_from_hed

__all__ = ["AdjustHED", "AdjustHEDd", "RandHEDJitter", "RandHEDJitterd", "hed_adjust"]

_MIN_RGB = 1e-6  # darkest value before the logarithm (as skimage)


def hed_adjust(image: Any, alpha: Sequence[float], beta: Sequence[float]) -> Any:
    """Scale and shift the H, E and D stain concentrations of a channel-first RGB image.

    Args:
        image: ``(3, H, W)`` array or tensor with values in ``[0, 1]``.
        alpha: multiplicative factor per stain (H, E, D).
        beta: additive shift per stain, in optical-density units.

    Returns:
        the adjusted image, same type and shape, clipped to ``[0, 1]``.

    Raises:
        ValueError: the image is not ``(3, H, W)``, or ``alpha``/``beta`` do not have three values.
    """
    rgb = convert_to_numpy(image, dtype=np.float64)
    if rgb.ndim != 3 or rgb.shape[0] != 3:
        raise ValueError(f"HED stain adjustment needs an RGB image of shape (3, H, W), got {rgb.shape}.")
    a, b = np.asarray(alpha, dtype=np.float64), np.asarray(beta, dtype=np.float64)
    if a.shape != (3,) or b.shape != (3,):
        raise ValueError(f"alpha and beta need one value per stain (H, E, D), got {a.tolist()} and {b.tolist()}.")
    optical_density = -np.log(np.clip(np.moveaxis(rgb, 0, -1), _MIN_RGB, 1.0))
    stains = optical_density @ hed_from_rgb
    adjusted = np.exp(-((stains * a + b) @ rgb_from_hed))
    out = np.moveaxis(np.clip(adjusted, 0.0, 1.0), -1, 0).astype(np.float32)
    return convert_to_dst_type(out, image, dtype=np.float32)[0]


class AdjustHED(Transform):
    """Fixed stain change (e.g. to simulate another lab's staining for an out-of-distribution test set).

    Args:
        alpha: multiplicative factor per stain (H, E, D).
        beta: additive shift per stain, in optical-density units.
    """

    def __init__(self, alpha: Sequence[float] = (1.0, 1.0, 1.0), beta: Sequence[float] = (0.0, 0.0, 0.0)) -> None:
        self.alpha = tuple(float(v) for v in alpha)
        self.beta = tuple(float(v) for v in beta)

    def __call__(self, img: Any) -> Any:
        return hed_adjust(img, self.alpha, self.beta)


class RandHEDJitter(RandomizableTransform):
    """Random stain jitter: ``alpha ~ U(1 - sigma, 1 + sigma)`` and ``beta ~ U(-bias, bias)`` per stain.

    Args:
        sigma: multiplicative strength (Tellez et al.: 0.05 "light" to 0.2 "strong").
        bias: additive strength, in optical-density units.
        prob: probability of applying the jitter.

    Raises:
        ValueError: negative strengths.
    """

    def __init__(self, sigma: float = 0.05, bias: float = 0.05, prob: float = 0.8) -> None:
        RandomizableTransform.__init__(self, prob)
        if sigma < 0 or bias < 0:
            raise ValueError(f"sigma and bias must be >= 0, got {sigma} and {bias}.")
        self.sigma = sigma
        self.bias = bias
        self.alpha = np.ones(3)
        self.beta = np.zeros(3)

    def randomize(self, data: Any = None) -> None:
        super().randomize(None)
        if self._do_transform:
            self.alpha = self.R.uniform(1.0 - self.sigma, 1.0 + self.sigma, size=3)
            self.beta = self.R.uniform(-self.bias, self.bias, size=3)

    def __call__(self, img: Any, randomize: bool = True) -> Any:
        if randomize:
            self.randomize()
        if not self._do_transform:
            return img
        return hed_adjust(img, self.alpha, self.beta)


class AdjustHEDd(MapTransform):
    """Dictionary version of :class:`AdjustHED`.

    Args:
        keys: image keys.
        alpha: multiplicative factor per stain (H, E, D).
        beta: additive shift per stain, in optical-density units.
        allow_missing_keys: don't fail when a key is absent.
    """

    def __init__(
        self,
        keys: KeysCollection,
        alpha: Sequence[float] = (1.0, 1.0, 1.0),
        beta: Sequence[float] = (0.0, 0.0, 0.0),
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.adjust = AdjustHED(alpha, beta)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.adjust(d[key])
        return d


class RandHEDJitterd(RandomizableTransform, MapTransform):
    """Dictionary version of :class:`RandHEDJitter` (the same stain change for every key).

    Args:
        keys: image keys.
        sigma: multiplicative strength.
        bias: additive strength, in optical-density units.
        prob: probability of applying the jitter.
        allow_missing_keys: don't fail when a key is absent.
    """

    def __init__(
        self,
        keys: KeysCollection,
        sigma: float = 0.05,
        bias: float = 0.05,
        prob: float = 0.8,
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, 1.0)
        self.jitter = RandHEDJitter(sigma, bias, prob)

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None) -> Any:
        super().set_random_state(seed, state)
        self.jitter.set_random_state(seed, state)
        return self

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        self.jitter.randomize()
        for key in self.key_iterator(d):
            d[key] = self.jitter(d[key], randomize=False)
        return d
