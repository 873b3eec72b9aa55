"""Grid-matched crops for PEAC: two crops of one image on a shared grid of cells, with their cell correspondence.

The image is resized to a square, an ``N x N`` grid of ``cell_size`` px cells is laid on it (its origin shifted by a
random sub-cell amount when ``jitter``), and two crops of ``crop_cells x crop_cells`` cells are taken at random
whole-cell offsets. Because both crops sit on the same grid, cell ``(r, c)`` of crop A shows exactly the pixels of cell
``(r + dy, c + dx)`` of crop B, where ``(dy, dx)`` is the difference of the offsets. :func:`overlap_masks` marks the
overlapping cells of each crop; listed in raster order, the ``k``-th marked cell of A and the ``k``-th marked cell of B
are the same patch of anatomy.

Reference: Zhou et al., "Learning Anatomically Consistent Embedding for Chest Radiography" (PEAC), BMVC 2023: images
resized to 608 px, 19 x 19 cells of 32 px, a random 18 x 18-cell grid, crops of 14 x 14 cells at offsets 0-4
(:data:`PAPER_GRID`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import Compose, InvertibleTransform, MapTransform, OneOf, Randomizable, Resize
from monai.transforms.traits import LazyTrait

from monai_remedis.ssl.base import view_key

logger = logging.getLogger("monai_remedis")

MASK_KEY = "peac_mask_{}"
"""Batch key of view ``i``'s overlap mask: ``(crop_cells**2,)`` booleans in raster order."""
OFFSET_KEY = "peac_offset_{}"
"""Batch key of view ``i``'s offset on the grid, ``(row, col)`` in cells."""
ORIGIN_KEY = "peac_origin"
"""Batch key of the grid origin's sub-cell shift ``(row, col)`` in pixels."""


@dataclass(frozen=True)
class GridSpec:
    """Geometry of the grid-matched crops.

    Args:
        image_size: side of the square the image is resized to, in pixels.
        cell_size: side of one grid cell (one patch) in pixels; match it to the backbone's patch size or stride.
        crop_cells: side of each crop in cells.
        max_offset: largest crop offset in cells (None: every offset that fits the grid).
        jitter: shift the grid origin by a random 0..cell_size-1 pixels (the paper's random 18 x 18 of 19 x 19 cells);
            the grid then has one cell fewer per side.

    Example:
        >>> spec = GridSpec(image_size=40, cell_size=4, crop_cells=7)
        >>> spec.grid_cells, spec.crop_size, spec.offsets
        (9, 28, 3)
    """

    image_size: int = 40
    cell_size: int = 4
    crop_cells: int = 7
    max_offset: int | None = None
    jitter: bool = True

    def __post_init__(self) -> None:
        if self.cell_size < 1 or self.crop_cells < 1:
            raise ValueError(f"cell_size and crop_cells must be >= 1, got {self.cell_size}, {self.crop_cells}.")
        if self.grid_cells < self.crop_cells:
            raise ValueError(
                f"a crop of {self.crop_cells} cells does not fit a grid of {self.grid_cells} cells "
                f"({self.image_size} px / {self.cell_size} px{', minus one for jitter' if self.jitter else ''})."
            )
        if self.max_offset is not None and self.max_offset < 0:
            raise ValueError(f"max_offset must be >= 0, got {self.max_offset}.")

    @property
    def grid_cells(self) -> int:
        """Usable cells per side of the grid."""
        return self.image_size // self.cell_size - int(self.jitter)

    @property
    def crop_size(self) -> int:
        """Side of each crop in pixels."""
        return self.crop_cells * self.cell_size

    @property
    def offsets(self) -> int:
        """Number of possible offsets per axis (``0 .. offsets-1`` cells)."""
        fit = self.grid_cells - self.crop_cells
        return 1 + (fit if self.max_offset is None else min(fit, self.max_offset))


PAPER_GRID = GridSpec(image_size=608, cell_size=32, crop_cells=14, max_offset=4, jitter=True)
"""The geometry of the PEAC paper (448 px crops of 608 px images)."""


def overlap_masks(
    offset_a: tuple[int, int], offset_b: tuple[int, int], crop_cells: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean masks of the cells of crops A and B that show the same pixels, in raster order.

    Args:
        offset_a: ``(row, col)`` of crop A's first cell on the grid.
        offset_b: same for crop B.
        crop_cells: side of both crops in cells.

    Returns:
        two ``(crop_cells**2,)`` bool tensors with the same number of True entries; the ``k``-th True cell of A
        corresponds to the ``k``-th True cell of B.

    Example:
        >>> a, b = overlap_masks((0, 0), (1, 0), crop_cells=2)
        >>> a.tolist(), b.tolist()
        ([False, False, True, True], [True, True, False, False])
    """
    masks = []
    for own in (offset_a, offset_b):
        mask = torch.zeros(crop_cells, crop_cells, dtype=torch.bool)
        rows = slice(max(offset_a[0], offset_b[0]) - own[0], min(offset_a[0], offset_b[0]) + crop_cells - own[0])
        cols = slice(max(offset_a[1], offset_b[1]) - own[1], min(offset_a[1], offset_b[1]) + crop_cells - own[1])
        mask[rows, cols] = True
        masks.append(mask.flatten())
    return masks[0], masks[1]


def crop_on_grid(image: torch.Tensor, origin: tuple[int, int], offset: tuple[int, int], spec: GridSpec) -> torch.Tensor:
    """The crop of ``image`` (``(C, H, W)``, already ``image_size`` square) whose first cell is at ``offset``."""
    top = origin[0] + offset[0] * spec.cell_size
    left = origin[1] + offset[1] * spec.cell_size
    return image[..., top : top + spec.crop_size, left : left + spec.crop_size]


def permute_cells(images: torch.Tensor, perm: torch.Tensor, cell_size: int) -> torch.Tensor:
    """Rearrange the grid cells of each image: cell ``j`` of the output is cell ``perm[b, j]`` of image ``b``.

    Args:
        images: ``(B, C, H, W)`` crops whose sides are multiples of ``cell_size``.
        perm: ``(B, N)`` permutations of the ``N = (H / cell) * (W / cell)`` cells in raster order.
        cell_size: cell side in pixels.

    Example:
        >>> import torch
        >>> x = torch.arange(4.0).view(1, 1, 2, 2)
        >>> permute_cells(x, torch.tensor([[3, 2, 1, 0]]), cell_size=1).flatten().tolist()
        [3.0, 2.0, 1.0, 0.0]
    """
    b, c, h, w = images.shape
    rows, cols = h // cell_size, w // cell_size
    cells = images.reshape(b, c, rows, cell_size, cols, cell_size).permute(0, 2, 4, 1, 3, 5).reshape(b, rows * cols, -1)
    cells = cells.gather(1, perm[..., None].expand(-1, -1, cells.shape[-1]))
    return cells.reshape(b, rows, cols, c, cell_size, cell_size).permute(0, 3, 1, 4, 2, 5).reshape(b, c, h, w)


def is_geometric(transform: Any) -> bool:
    """Whether a MONAI transform moves pixels (spatial, crop/pad or lazy transforms), which would break the grid."""
    if isinstance(transform, Compose):  # a container (itself invertible): its steps are judged one by one
        return False
    module = type(transform).__module__
    return (
        isinstance(transform, (InvertibleTransform, LazyTrait))
        or module.startswith(("monai.transforms.spatial", "monai.transforms.croppad"))
        or "Elastic" in type(transform).__name__
    )


def intensity_only(transform: Callable | None) -> Callable | None:
    """A copy of a (nested) MONAI ``Compose`` without its geometric transforms, which would break the grid.

    ``Compose`` keeps its other steps; a geometric branch of ``OneOf`` becomes an identity with the same weight, so
    the remaining branches keep their probabilities. Dropped transforms are logged once.

    Example:
        >>> from monai.transforms import Compose, RandFlipd, RandScaleIntensityd
        >>> kept = intensity_only(Compose([RandFlipd("image", prob=1.0), RandScaleIntensityd("image", factors=0.1)]))
        >>> [type(t).__name__ for t in kept.transforms]
        ['RandScaleIntensityd']
    """
    if transform is None:
        return None
    dropped: list[str] = []

    def keep(t: Any) -> Any:
        if isinstance(t, OneOf):
            branches = [_identity if is_geometric(c) else keep(c) for c in t.transforms]
            dropped.extend(type(c).__name__ for c in t.transforms if is_geometric(c))
            return OneOf(branches, weights=list(t.weights), log_stats=t.log_stats)
        if isinstance(t, Compose):
            dropped.extend(type(c).__name__ for c in t.transforms if is_geometric(c))
            return Compose([keep(c) for c in t.transforms if not is_geometric(c)], log_stats=t.log_stats)
        return t

    if is_geometric(transform):
        logger.info("grid-matched views: dropped the geometric view transform %s", type(transform).__name__)
        return None
    kept = keep(transform)
    if dropped:
        logger.info("grid-matched views: dropped geometric view transforms %s", ", ".join(dropped))
    return kept


def _identity(data: Any) -> Any:
    return data


class GridMatchedViewsd(Randomizable, MapTransform):
    """Make two grid-matched crops (``view_0``, ``view_1``) of an image and their cell correspondence.

    Outputs, besides the views: ``peac_mask_0``/``peac_mask_1`` (:func:`overlap_masks`), ``peac_offset_0``/
    ``peac_offset_1`` (each crop's ``(row, col)`` offset in cells) and ``peac_origin`` (the grid's sub-cell shift in
    pixels). ``view_transform`` (intensity augmentation; see :func:`intensity_only`) runs on each crop after cropping,
    so it never moves a pixel out of its cell.

    Args:
        keys: the image key (one key), a ``(C, H, W)`` tensor.
        spec: the grid geometry.
        view_transform: dict transform applied independently to each crop (``{key: crop}``), or None.
        delete_source: drop the source image from the output.

    Example:
        >>> import torch
        >>> out = GridMatchedViewsd("image", GridSpec(40, 4, 7))({"image": torch.rand(1, 28, 28)})
        >>> out["view_0"].shape, int(out["peac_mask_0"].sum()) == int(out["peac_mask_1"].sum())
        (torch.Size([1, 28, 28]), True)
    """

    def __init__(
        self,
        keys: KeysCollection,
        spec: GridSpec | None = None,
        view_transform: Callable | None = None,
        delete_source: bool = True,
    ) -> None:
        MapTransform.__init__(self, keys)
        if len(self.keys) != 1:
            raise ValueError(f"GridMatchedViewsd takes one image key, got {self.keys}.")
        self.spec = spec or GridSpec()
        self.view_transform = view_transform
        self.delete_source = delete_source
        self.resize = Resize((self.spec.image_size, self.spec.image_size), mode="bilinear", anti_aliasing=False)
        self._origin = (0, 0)
        self._offsets = ((0, 0), (0, 0))

    def set_random_state(
        self, seed: int | None = None, state: np.random.RandomState | None = None
    ) -> GridMatchedViewsd:
        super().set_random_state(seed, state)
        if isinstance(self.view_transform, Randomizable):
            self.view_transform.set_random_state(seed=int(self.R.randint(2**31 - 1)))
        return self

    def randomize(self, data: Any = None) -> None:
        """Draw the grid origin's sub-cell shift and the two crop offsets."""
        spec = self.spec
        shift = spec.cell_size if spec.jitter else 1
        self._origin = (int(self.R.randint(shift)), int(self.R.randint(shift)))
        self._offsets = tuple(  # type: ignore[assignment]
            (int(self.R.randint(spec.offsets)), int(self.R.randint(spec.offsets))) for _ in range(2)
        )

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        key = self.keys[0]
        image = torch.as_tensor(d[key])
        if image.ndim != 3:
            raise ValueError(f"GridMatchedViewsd takes 2D (C, H, W) images; '{key}' has shape {tuple(image.shape)}.")
        if tuple(image.shape[1:]) != (self.spec.image_size,) * 2:
            image = self.resize(image)
        self.randomize()
        masks = overlap_masks(*self._offsets, self.spec.crop_cells)
        for i, offset in enumerate(self._offsets):
            crop = crop_on_grid(image, self._origin, offset, self.spec).clone()
            if self.view_transform is not None:
                crop = self.view_transform({key: crop})[key]
            d[view_key(i)] = crop
            d[MASK_KEY.format(i)] = masks[i]
            d[OFFSET_KEY.format(i)] = torch.tensor(offset)
        d[ORIGIN_KEY] = torch.tensor(self._origin)
        if self.delete_source:
            del d[key]
        return d
