"""Array layout of in-memory images: MONAI's file-reader convention, not numpy's row-major image order.

MONAI's readers (``PILReader``, ``PydicomReader``, and this project's TIFF and DICOM readers) return an image of
``rows x columns`` pixels as ``(C, x, y)`` = ``(C, columns, rows)``, and stacks / multi-frame files as
``(C, x, y, z)`` with the frames or slices last. Arrays stored row-major (MedMNIST and CIFAR ``.npz``:
``(N, H, W[, C])``, or ``(N, D, H, W)`` for volumes) are therefore brought to ``(N, C, W, H)`` / ``(N, 1, W, H, D)``
by :func:`to_monai_layout`, so the same picture gives the same tensor whether it comes from an ``.npz`` or from a
PNG / NIfTI file exported from it, spatial transforms mean the same thing for both (``RandFlipd(spatial_axis=0)``
is a left-right mirror of a 2D image) and pixel-hash duplicate checks agree across sources. Show such an array the
familiar way with ``array[0].T``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["from_monai_layout", "to_monai_layout"]


def to_monai_layout(images: np.ndarray, spatial_dims: int) -> np.ndarray:
    """Row-major image batches as MONAI lays out images read from files: channel first, spatial axes reversed.

    ``(N, H, W)`` -> ``(N, 1, W, H)``; ``(N, H, W, C)`` -> ``(N, C, W, H)``; ``(N, D, H, W)`` -> ``(N, 1, W, H, D)``;
    ``(N, D, H, W, C)`` -> ``(N, C, W, H, D)``. The result is a view of ``images`` (no copy).

    Args:
        images: a batch in numpy's row-major order (rows before columns, slices before rows).
        spatial_dims: 2 for images, 3 for volumes.

    Returns:
        the batch as ``(N, C, x, y[, z])``.

    Raises:
        ValueError: a shape that fits neither ``(N, *spatial)`` nor ``(N, *spatial, C)``.
    """
    if images.ndim == spatial_dims + 1:
        images = images[:, None]
    elif images.ndim == spatial_dims + 2:
        images = np.moveaxis(images, -1, 1)
    else:
        raise ValueError(f"images of shape {images.shape} do not fit spatial_dims={spatial_dims}.")
    return np.transpose(images, (0, 1, *range(images.ndim - 1, 1, -1)))


def from_monai_layout(image: np.ndarray) -> np.ndarray:
    """One ``(C, x, y[, z])`` image back in numpy's row-major order ``(y, x, C)`` / ``(z, y, x, C)``, the inverse
    of :func:`to_monai_layout` for one item (e.g. to save it with PIL)."""
    return np.transpose(image, (*range(image.ndim - 1, 0, -1), 0))
