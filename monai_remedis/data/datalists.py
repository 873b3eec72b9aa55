"""Datalist builders: lists of dicts in MONAI's decathlon style.

Every item has ``"image"`` (a file path, or an in-memory channel-first ``numpy`` array for ``.npz`` sources) and
optionally ``"label"`` (int), ``"patient_id"``, ``"site"`` and ``"id"`` (a stable identifier used in reports and
duplicate checks).

Array layout: in-memory arrays follow MONAI's file-reader convention, not numpy's row-major image order. MONAI's
readers (``PILReader``, ``PydicomReader``, and this project's TIFF and DICOM readers) return an image of
``rows x columns`` pixels as ``(C, x, y)`` = ``(C, columns, rows)``, and stacks / multi-frame files as
``(C, x, y, z)`` with the frames or slices last. Arrays stored row-major (MedMNIST and CIFAR ``.npz``:
``(N, H, W[, C])``, or ``(N, D, H, W)`` for volumes) are therefore brought to ``(N, C, W, H)`` / ``(N, 1, W, H, D)``
by :func:`to_monai_layout`, so the same picture gives the same tensor whether it comes from an ``.npz`` or from a
PNG / NIfTI file exported from it, spatial transforms mean the same thing for both (``RandFlipd(spatial_axis=0)``
is a left-right mirror of a 2D image) and pixel-hash duplicate checks agree across sources. Show such an array the
familiar way with ``array[0].T``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".tif", ".tiff", ".dcm", ".nii", ".nii.gz")
MEDMNIST_SPLITS = ("train", "val", "test")


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


def _npz_arrays(path: Path, image_key: str, label_key: str | None) -> tuple[np.ndarray, np.ndarray | None]:
    if not path.is_file():
        raise FileNotFoundError(f"dataset file not found: {path}")
    with np.load(path, allow_pickle=False) as npz:
        if image_key not in npz:
            raise KeyError(f"{path} has no array '{image_key}'; arrays: {', '.join(npz.files)}.")
        images = npz[image_key]
        labels = npz[label_key].reshape(len(images), -1) if label_key and label_key in npz else None
    return images, labels


def medmnist_datalist(
    path: str | Path, split: str = "train", spatial_dims: int = 2, limit: int | None = None, site: str | None = None
) -> list[dict[str, Any]]:
    """Datalist from a MedMNIST ``.npz`` (keys ``{split}_images``, ``{split}_labels``).

    Images become channel-first ``uint8`` arrays in MONAI's file layout (see :func:`to_monai_layout`): ``(1, W, H)``
    for grayscale, ``(3, W, H)`` for RGB, ``(1, W, H, D)`` for 3D; single-label tasks get an ``int`` label,
    multi-label tasks a float vector.

    Args:
        path: the ``.npz`` file.
        split: ``train``, ``val`` or ``test``.
        spatial_dims: 2 for images, 3 for volumes (e.g. AdrenalMNIST3D).
        limit: keep only the first ``limit`` items (smoke tests).
        site: optional site name stored in each item.
    """
    if split not in MEDMNIST_SPLITS:
        raise ValueError(f"split must be one of {MEDMNIST_SPLITS}, got '{split}'.")
    path = Path(path)
    images, labels = _npz_arrays(path, f"{split}_images", f"{split}_labels")
    stop = len(images) if limit is None else min(limit, len(images))
    images = to_monai_layout(images[:stop], spatial_dims)
    items = []
    for i in range(stop):
        item: dict[str, Any] = {"image": images[i], "id": f"{path.stem}/{split}/{i}"}
        if labels is not None:
            item["label"] = int(labels[i, 0]) if labels.shape[1] == 1 else labels[i].astype(np.float32)
        if site:
            item["site"] = site
        items.append(item)
    return items


def natural_image_npz_datalist(
    path: str | Path, split: str = "train", limit: int | None = None
) -> list[dict[str, Any]]:
    """Datalist from a natural-image ``.npz`` with ``{split}_images`` (N,H,W,3) and ``{split}_labels``
    (e.g. ``cifar10_subset.npz``), for supervised pretraining.

    ``limit`` keeps a class-balanced head (the classes taken in turn, each in file order): the CIFAR-10 subset is
    sorted by class, so its first N items would be a single class.
    """
    items = medmnist_datalist(path, split=split, spatial_dims=2)
    return items if limit is None else round_robin_by_label(items, limit)


def round_robin_by_label(items: Sequence[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` items when the labels are taken in turn (each label's items in their order).

    Example:
        >>> [i["id"] for i in round_robin_by_label([{"id": n, "label": n // 2} for n in range(6)], 4)]
        [0, 2, 4, 1]
    """
    by_label: dict[Any, list[dict[str, Any]]] = {}
    for item in items:
        by_label.setdefault(item.get("label"), []).append(item)
    queues = list(by_label.values())
    picked: list[dict[str, Any]] = []
    depth = 0
    while len(picked) < limit and any(depth < len(q) for q in queues):
        picked.extend(q[depth] for q in queues if depth < len(q))
        depth += 1
    return picked[:limit]


def image_folder_datalist(
    root: str | Path, suffixes: Sequence[str] = IMAGE_SUFFIXES, class_names: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """Datalist from ``root/<class_name>/<image>`` folders; labels are indices into sorted class names.

    Raises:
        FileNotFoundError: when ``root`` does not exist or holds no class folder with images.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {root}")
    classes = list(class_names) if class_names else sorted(p.name for p in root.iterdir() if p.is_dir())
    items = []
    for label, name in enumerate(classes):
        for file in sorted((root / name).rglob("*")):
            if file.is_file() and file.name.lower().endswith(tuple(suffixes)):
                items.append({"image": str(file), "label": label, "id": str(file.relative_to(root))})
    if not items:
        raise FileNotFoundError(f"no images with suffixes {tuple(suffixes)} in class folders under {root}.")
    return items


def csv_datalist(
    csv_path: str | Path,
    image_column: str = "image",
    label_column: str | None = "label",
    base_dir: str | Path | None = None,
    suffix: str = "",
    extra_columns: Sequence[str] = ("patient_id", "site"),
) -> list[dict[str, Any]]:
    """Datalist from a CSV with one row per image.

    Args:
        csv_path: the CSV file.
        image_column: column holding the image path (relative paths are resolved against ``base_dir``).
        label_column: integer label column, or None for unlabelled data.
        base_dir: folder the image paths are relative to (default: the CSV's folder).
        suffix: appended to each image value (e.g. ``".png"`` when the CSV holds bare ids).
        extra_columns: copied into each item when present.

    Raises:
        KeyError: naming the missing column and the CSV's columns.
        ValueError: naming the row whose label is not an integer.
    """
    csv_path = Path(csv_path)
    base = Path(base_dir) if base_dir else csv_path.parent
    with open(csv_path, newline="") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        for needed in (image_column, label_column):
            if needed and needed not in columns:
                raise KeyError(f"{csv_path}: no column '{needed}'; columns are {', '.join(columns)}.")
        items = []
        for row_number, row in enumerate(reader, start=2):
            image = Path(row[image_column] + suffix)
            item: dict[str, Any] = {
                "image": str(image if image.is_absolute() else base / image),
                "id": row[image_column],
            }
            if label_column:
                try:
                    item["label"] = int(row[label_column])
                except ValueError:
                    raise ValueError(
                        f"{csv_path} line {row_number}: label '{row[label_column]}' in column '{label_column}' "
                        "is not an integer."
                    ) from None
            item.update({c: row[c] for c in extra_columns if c in row and row[c] != ""})
            items.append(item)
    return items


def load_datalist(path: str | Path, key: str = "training") -> list[dict[str, Any]]:
    """Read a decathlon-style JSON datalist (relative image paths resolve against the JSON's folder).

    An empty split (e.g. ``"test": []`` from ``datalist ... --test 0``) gives an empty list; MONAI's
    ``load_decathlon_datalist`` fails on one.
    """
    from monai.data import load_decathlon_datalist

    if Path(path).is_file() and json.loads(Path(path).read_text()).get(key, None) == []:
        return []
    return load_decathlon_datalist(str(path), is_segmentation=False, data_list_key=key)


def save_datalist(splits: dict[str, list[dict[str, Any]]], path: str | Path) -> Path:
    """Write file-based datalists as decathlon-style JSON (in-memory array items cannot be saved)."""
    for name, items in splits.items():
        for item in items:
            if not isinstance(item.get("image"), str):
                raise TypeError(f"split '{name}' item {item.get('id')}: only file-path items can be saved as JSON.")
    path = Path(path)
    path.write_text(json.dumps(splits, indent=2))
    return path
