"""Models Genesis distortions: the four transformations an encoder-decoder learns to undo, 2D and 3D.

Each distortion is a MONAI ``RandomizableTransform`` (array form) with a dictionary form (suffix ``d``), seeded
through MONAI's randomisation (``set_random_state`` / ``Compose.set_random_state``). They expect an image scaled to
``[0, 1]`` with the channel first, ``(C, *spatial)``. :func:`genesis_pipeline` chains them as the paper does: the
input is flipped (input and target together), then local pixel shuffling, the non-linear intensity curve and
painting distort the input only; the restoration target is the (flipped) original image.

Defaults are the paper's (``flip 0.4, local shuffling 0.5, non-linear 0.9, painting 0.9 with in-painting 20% and
out-painting 80%``). Two deliberate differences from the reference code: a shuffled window permutes the current
values of its voxels (windows may overlap, so the image as a whole keeps its multiset of values), and the flip is
MONAI's ``RandAxisFlipd`` (one random axis, p=0.4) instead of up to three chained flips.

Reference: Zhou et al., "Models Genesis", Medical Image Analysis 67 (2021) 101840.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from math import comb
from typing import Any

import numpy as np
from monai.config import KeysCollection, NdarrayOrTensor
from monai.transforms import Compose, CopyItemsd, EnsureTyped, MapTransform, RandAxisFlipd, RandomizableTransform
from monai.utils import convert_data_type, convert_to_dst_type

__all__ = [
    "GenesisDistortion",
    "RandBezierIntensity",
    "RandBezierIntensityd",
    "RandGenesisPaint",
    "RandGenesisPaintd",
    "RandLocalPixelShuffle",
    "RandLocalPixelShuffled",
    "bezier_curve",
    "genesis_pipeline",
]

Box = tuple[slice, ...]


def bezier_curve(points: np.ndarray, num: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Points of the Bezier curve with control points ``points`` ``(K, 2)``, sampled at ``num`` values of t."""
    degree = len(points) - 1
    t = np.linspace(0.0, 1.0, num)
    i = np.arange(degree + 1)[:, None]
    coeff = np.array([comb(degree, k) for k in range(degree + 1)], dtype=np.float64)[:, None]
    basis = coeff * t[None, :] ** i * (1.0 - t[None, :]) ** (degree - i)
    curve = basis.T @ np.asarray(points, dtype=np.float64)
    return curve[:, 0], curve[:, 1]


def _as_numpy(img: NdarrayOrTensor) -> np.ndarray:
    return np.asarray(convert_data_type(img, np.ndarray)[0], dtype=np.float32)


class RandBezierIntensity(RandomizableTransform):
    """Non-linear intensity transformation by a random monotone cubic Bezier curve.

    The curve runs from (0, 0) to (1, 1) through two random control points in the unit square; its x and y values
    are sorted, so the map is monotone and sends ``[0, 1]`` onto ``[0, 1]``. With probability ``invert_prob`` the
    decreasing curve is used instead (intensities inverted, 0 -> 1 and 1 -> 0), as in the reference code. Values
    outside ``[0, 1]`` are clipped first.

    Args:
        prob: probability of applying the curve (paper: 0.9).
        invert_prob: probability that the curve is decreasing.
        num_points: samples of the curve used for the piecewise-linear map.

    Example:
        >>> import torch
        >>> t = RandBezierIntensity(prob=1.0)
        >>> t.set_random_state(0)(torch.linspace(0, 1, 5)[None]).shape
        torch.Size([1, 5])
    """

    def __init__(self, prob: float = 0.9, invert_prob: float = 0.5, num_points: int = 1000) -> None:
        RandomizableTransform.__init__(self, prob)
        self.invert_prob = invert_prob
        self.num_points = num_points
        self.xs = np.linspace(0.0, 1.0, num_points)
        self.ys = self.xs.copy()

    def randomize(self, data: Any = None) -> None:
        super().randomize(None)
        if not self._do_transform:
            return
        controls = np.array([[0.0, 0.0], self.R.random_sample(2), self.R.random_sample(2), [1.0, 1.0]])
        xs, ys = bezier_curve(controls, self.num_points)
        self.xs, self.ys = np.sort(xs), np.sort(ys)
        if self.R.random_sample() < self.invert_prob:
            self.ys = self.ys[::-1].copy()

    def __call__(self, img: NdarrayOrTensor, randomize: bool = True) -> NdarrayOrTensor:
        if randomize:
            self.randomize()
        if not self._do_transform:
            return img
        out = np.interp(np.clip(_as_numpy(img), 0.0, 1.0), self.xs, self.ys).astype(np.float32)
        return convert_to_dst_type(out, img)[0]


class RandLocalPixelShuffle(RandomizableTransform):
    """Local pixel shuffling: permute the voxels inside many small random windows.

    Window sides are drawn in ``[1, max(1, round(max_block_fraction * side))]`` per axis, as in the reference (1/10
    of each side). Each window permutes its current values in place, channels moved together, so the values
    inside a window are a permutation of what was there and the image keeps its multiset of values.
    After a call, :attr:`windows` holds the windows applied (in order).

    Args:
        prob: probability of shuffling (paper: 0.5).
        num_blocks: number of windows; None scales the paper's 10,000 windows per 64x64x32 crop to the image.
        max_block_fraction: largest window side as a fraction of the image side.
    """

    PAPER_DENSITY = 10000 / (64 * 64 * 32)
    """Windows per voxel in the paper (10,000 windows in a 64 x 64 x 32 crop)."""

    def __init__(self, prob: float = 0.5, num_blocks: int | None = None, max_block_fraction: float = 0.1) -> None:
        RandomizableTransform.__init__(self, prob)
        self.num_blocks = num_blocks
        self.max_block_fraction = max_block_fraction
        self._starts = np.zeros((0, 0), dtype=int)
        self._sides = np.zeros((0, 0), dtype=int)
        self._perms = np.zeros((0, 0), dtype=int)

    @property
    def windows(self) -> list[Box]:
        """The windows of the last draw, in the order they are applied."""
        return [
            tuple(slice(a, a + b) for a, b in zip(start, side, strict=True))
            for start, side in zip(self._starts.tolist(), self._sides.tolist(), strict=True)
        ]

    def randomize(self, spatial_shape: Sequence[int]) -> None:  # type: ignore[override]
        """Draw the windows and their permutations for an image of ``spatial_shape``."""
        super().randomize(None)
        if not self._do_transform:
            self._starts = self._sides = self._perms = np.zeros((0, 0), dtype=int)
            return
        count = self.num_blocks or max(1, round(float(np.prod(spatial_shape)) * self.PAPER_DENSITY))
        shape = np.asarray(spatial_shape)
        max_sides = np.maximum(1, np.round(self.max_block_fraction * shape)).astype(int)
        self._sides = (self.R.random_sample((count, len(shape))) * max_sides).astype(int) + 1
        self._starts = (self.R.random_sample((count, len(shape))) * (shape - self._sides + 1)).astype(int)
        keys = self.R.random_sample((count, int(np.prod(max_sides))))
        keys[np.arange(keys.shape[1])[None, :] >= self._sides.prod(axis=1)[:, None]] = np.inf
        self._perms = np.argsort(keys, axis=1)  # row i: a permutation of range(volume of window i), then padding

    def __call__(self, img: NdarrayOrTensor, randomize: bool = True) -> NdarrayOrTensor:
        if randomize:
            self.randomize(img.shape[1:])
        if not self._do_transform:
            return img
        out = _as_numpy(img).copy()
        channels = out.shape[0]
        for window, perm in zip(self.windows, self._perms, strict=True):
            index = (slice(None), *window)
            block = out[index]
            out[index] = block.reshape(channels, -1)[:, perm[: block[0].size]].reshape(block.shape)
        return convert_to_dst_type(out, img)[0]


class RandGenesisPaint(RandomizableTransform):
    """Painting: in-painting (noise inside random boxes) or out-painting (noise outside random boxes).

    In-painting draws up to ``max_boxes`` boxes with sides in ``[side/6, side/3]`` (each further box with
    probability ``continue_prob``) and fills them with uniform noise; out-painting fills the whole image with
    uniform noise and keeps the original inside one box with sides in ``[3/7, 4/7]`` of the image plus up to
    ``max_boxes - 1`` more (as the reference). After a call, :attr:`boxes` and :attr:`inpaint` say what was done.

    Args:
        prob: probability of painting (paper: 0.9).
        inpaint_prob: probability that painting is in-painting rather than out-painting (paper: 0.2).
        max_boxes: most boxes per image.
        continue_prob: probability of drawing each box after the first.
        margin: smallest distance (voxels) of an in-painting box from the border, reduced where the image is small.
    """

    def __init__(
        self,
        prob: float = 0.9,
        inpaint_prob: float = 0.2,
        max_boxes: int = 5,
        continue_prob: float = 0.95,
        margin: int = 3,
    ) -> None:
        RandomizableTransform.__init__(self, prob)
        self.inpaint_prob = inpaint_prob
        self.max_boxes = max_boxes
        self.continue_prob = continue_prob
        self.margin = margin
        self.inpaint = False
        self.boxes: list[Box] = []
        self._noise: np.ndarray | None = None

    def _box(self, shape: Sequence[int], low: float, high: float, margin: int) -> Box:
        box = []
        for side in shape:
            size = int(self.R.randint(max(1, int(side * low)), max(1, int(side * high)) + 1))
            size = min(size, side)
            edge = min(margin, (side - size) // 2)
            start = int(self.R.randint(edge, side - size - edge + 1))
            box.append(slice(start, start + size))
        return tuple(box)

    def randomize(self, shape: Sequence[int]) -> None:  # type: ignore[override]
        """Draw the mode, the boxes and the noise for an image of ``shape`` ``(C, *spatial)``."""
        super().randomize(None)
        self.boxes, self._noise = [], None
        if not self._do_transform:
            return
        spatial = shape[1:]
        self.inpaint = bool(self.R.random_sample() < self.inpaint_prob)
        low, high, margin = (1 / 6, 1 / 3, self.margin) if self.inpaint else (3 / 7, 4 / 7, 0)
        self.boxes.append(self._box(spatial, low, high, margin))
        while len(self.boxes) < self.max_boxes and self.R.random_sample() < self.continue_prob:
            self.boxes.append(self._box(spatial, low, high, margin))
        self._noise = self.R.random_sample(tuple(shape)).astype(np.float32)

    def mask(self, spatial_shape: Sequence[int]) -> np.ndarray:
        """Boolean mask of the union of :attr:`boxes`."""
        mask = np.zeros(tuple(spatial_shape), dtype=bool)
        for box in self.boxes:
            mask[box] = True
        return mask

    def __call__(self, img: NdarrayOrTensor, randomize: bool = True) -> NdarrayOrTensor:
        if randomize:
            self.randomize(img.shape)
        if not self._do_transform:
            return img
        image = _as_numpy(img)
        inside = self.mask(image.shape[1:])[None]
        painted = inside if self.inpaint else ~inside
        out = np.where(painted, self._noise, image).astype(np.float32)
        return convert_to_dst_type(out, img)[0]


class _RandDictWrapper(RandomizableTransform, MapTransform):
    """Dictionary form of an array distortion: one draw per item (from the first key's image), applied to every key.

    Its random state is the wrapped transform's (``set_random_state`` seeds both).
    """

    def __init__(
        self, keys: KeysCollection, transform: RandomizableTransform, allow_missing_keys: bool = False
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, 1.0)
        self.transform = transform

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None) -> Any:
        super().set_random_state(seed, state)
        self.transform.set_random_state(seed, state)
        return self

    def randomize(self, data: Any = None) -> None:
        self.transform.randomize(data)

    def _draw(self, img: NdarrayOrTensor) -> None:
        """Draw the random parameters for an image like ``img``."""
        self.transform.randomize()

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        keys = list(self.key_iterator(d))
        if keys:
            self._draw(d[keys[0]])
        for key in keys:
            d[key] = self.transform(d[key], randomize=False)
        return d


class RandBezierIntensityd(_RandDictWrapper):
    """Dictionary form of :class:`RandBezierIntensity` (one curve per item for all ``keys``)."""

    def __init__(
        self,
        keys: KeysCollection,
        prob: float = 0.9,
        invert_prob: float = 0.5,
        num_points: int = 1000,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, RandBezierIntensity(prob, invert_prob, num_points), allow_missing_keys)


class RandLocalPixelShuffled(_RandDictWrapper):
    """Dictionary form of :class:`RandLocalPixelShuffle` (same windows for all ``keys``, which share a shape)."""

    def __init__(
        self,
        keys: KeysCollection,
        prob: float = 0.5,
        num_blocks: int | None = None,
        max_block_fraction: float = 0.1,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, RandLocalPixelShuffle(prob, num_blocks, max_block_fraction), allow_missing_keys)

    def _draw(self, img: NdarrayOrTensor) -> None:
        self.transform.randomize(img.shape[1:])


class RandGenesisPaintd(_RandDictWrapper):
    """Dictionary form of :class:`RandGenesisPaint` (same boxes and noise for all ``keys``, which share a shape)."""

    def __init__(
        self,
        keys: KeysCollection,
        prob: float = 0.9,
        inpaint_prob: float = 0.2,
        max_boxes: int = 5,
        continue_prob: float = 0.95,
        margin: int = 3,
        allow_missing_keys: bool = False,
    ) -> None:
        transform = RandGenesisPaint(prob, inpaint_prob, max_boxes, continue_prob, margin)
        super().__init__(keys, transform, allow_missing_keys)

    def _draw(self, img: NdarrayOrTensor) -> None:
        self.transform.randomize(img.shape)


@dataclass(frozen=True)
class GenesisDistortion:
    """Probabilities of the Models Genesis distortions (paper defaults).

    Attributes:
        flip_prob: flip input and target along one random axis.
        shuffle_prob: local pixel shuffling.
        nonlinear_prob: Bezier intensity curve.
        paint_prob: painting.
        inpaint_prob: share of painting that is in-painting (the rest is out-painting).
        shuffle_blocks: windows of local shuffling (None: the paper's density).
    """

    flip_prob: float = 0.4
    shuffle_prob: float = 0.5
    nonlinear_prob: float = 0.9
    paint_prob: float = 0.9
    inpaint_prob: float = 0.2
    shuffle_blocks: int | None = None


def genesis_pipeline(
    load_transform: Callable | None = None,
    distortion: GenesisDistortion | Mapping[str, Any] | None = None,
    image_key: str = "image",
    input_key: str = "view_0",
) -> Compose:
    """The Models Genesis data pipeline: ``image_key`` = restoration target, ``input_key`` = distorted input.

    Args:
        load_transform: loading and scaling to ``[0, 1]`` (the bundle's ``load_transform``); None if items are
            already loaded.
        distortion: probabilities (a :class:`GenesisDistortion` or a mapping of its fields).
        image_key: key of the image, kept (flipped) as the target.
        input_key: key the distorted copy is written to.
    """
    d = distortion if isinstance(distortion, GenesisDistortion) else GenesisDistortion(**dict(distortion or {}))
    steps: list[Callable] = [load_transform] if load_transform is not None else []
    steps += [
        RandAxisFlipd(keys=image_key, prob=d.flip_prob),
        CopyItemsd(keys=image_key, names=input_key),
        RandLocalPixelShuffled(keys=input_key, prob=d.shuffle_prob, num_blocks=d.shuffle_blocks),
        RandBezierIntensityd(keys=input_key, prob=d.nonlinear_prob),
        RandGenesisPaintd(keys=input_key, prob=d.paint_prob, inpaint_prob=d.inpaint_prob),
        EnsureTyped(keys=[image_key, input_key], track_meta=False),
    ]
    return Compose(steps)
