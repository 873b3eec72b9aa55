"""Pixel-content duplicates across train/val/test splits.

An image that sits in two splits leaks the answer into evaluation. Checks here compare *decoded pixel content*, not
file bytes or names: two files with different headers or names but the same pixels are duplicates, while
visually similar but not identical images (re-encoded JPEGs, resized copies) are not -- this is an exact check.

* :func:`content_hash` hashes the decoded pixels of a datalist item (in-memory array under ``"image"`` or a path,
  decoded with :func:`monai_remedis.data.readers.read_image`).
* :func:`find_cross_split_duplicates` lists every item whose content already appeared in an earlier split.
* :func:`check_disjoint_splits` raises ``ValueError`` naming both entries (split, index, id) of each duplicate.
* :func:`drop_cross_split_duplicates` removes the later copies and returns what it removed.
* :func:`find_label_conflicts` lists groups of identical images *within* one split that carry different labels
  (mini-MIAS files mdb144 under both ``benign/`` and ``malignant/``): the image's true label is unknown.

Duplicates *within* one split with the same label are not leakage and are left alone (PneumoniaMNIST has 18 within
train).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_ID_KEYS",
    "CrossSplitDuplicate",
    "LabelConflict",
    "array_hash",
    "check_disjoint_splits",
    "content_hash",
    "describe_item",
    "drop_cross_split_duplicates",
    "find_cross_split_duplicates",
    "find_label_conflicts",
]

DEFAULT_ID_KEYS = ("id", "image_id")

HashFn = Callable[[Any], str]


def array_hash(array: Any) -> str:
    """SHA-256 of an array's values and shape, independent of dtype and memory layout.

    Values are compared as float64 (exact for every integer type up to 2**53 and every float32), so a ``uint8``
    array and the same values read back as ``float32`` hash the same; shapes must match exactly.

    Args:
        array: ``numpy`` array, ``torch`` tensor (incl. ``MetaTensor``) or anything ``np.asarray`` accepts.

    Returns:
        hex digest.
    """
    if hasattr(array, "detach"):
        array = array.detach().cpu().numpy()
    values = np.ascontiguousarray(np.asarray(array), dtype=np.float64) + 0.0  # + 0.0 folds -0.0 into 0.0
    digest = hashlib.sha256()
    digest.update(repr(values.shape).encode())
    digest.update(values.tobytes())
    return digest.hexdigest()


def content_hash(item: Any, key: str = "image", reader_fn: Callable[[Any], Any] | None = None) -> str:
    """Hash of the decoded pixel content of a datalist item.

    Args:
        item: a dict whose ``key`` holds an array/tensor or a path, or directly an array or a path.
        key: the image key of dict items.
        reader_fn: decodes a path; returns an array or ``(array, meta)``. Default
            :func:`monai_remedis.data.readers.read_image` (float32 channel-first, DICOM rescale applied).

    Returns:
        hex digest of :func:`array_hash` of the pixels.

    Raises:
        KeyError: a dict item without ``key``.
        monai_remedis.data.readers.UnreadableImageError: a path that cannot be decoded.
    """
    image = item[key] if isinstance(item, Mapping) else item
    if isinstance(image, (str, Path)):
        if reader_fn is None:
            from monai_remedis.data.readers import read_image

            reader_fn = read_image
        image = reader_fn(image)
        if isinstance(image, tuple):
            image = image[0]
    return array_hash(image)


def describe_item(item: Any, key: str = "image", id_keys: Sequence[str] = DEFAULT_ID_KEYS) -> str:
    """Short human name of an item: its first id key, else its image path, else ``"<in-memory array>"``.

    Args:
        item: datalist item.
        key: the image key.
        id_keys: keys tried in order.

    Returns:
        the description.
    """
    if isinstance(item, Mapping):
        for k in id_keys:
            if item.get(k) is not None:
                return str(item[k])
        image = item.get(key)
    else:
        image = item
    return str(image) if isinstance(image, (str, Path)) else "<in-memory array>"


@dataclass(frozen=True)
class CrossSplitDuplicate:
    """An item whose pixel content already appeared in an earlier split.

    Attributes:
        digest: the content hash.
        first_split: split of the earlier occurrence (first one seen, in split order).
        first_index: its index in that split.
        first_id: its description (see :func:`describe_item`).
        split: split of the later (duplicate) item.
        index: its index in that split.
        id: its description.
    """

    digest: str
    first_split: str
    first_index: int
    first_id: str
    split: str
    index: int
    id: str

    def __str__(self) -> str:
        return (
            f"{self.split}[{self.index}] ({self.id}) has the same pixels as "
            f"{self.first_split}[{self.first_index}] ({self.first_id})"
        )


def find_cross_split_duplicates(
    splits: Mapping[str, Sequence[Any]],
    key: str = "image",
    hash_fn: HashFn | None = None,
    id_keys: Sequence[str] = DEFAULT_ID_KEYS,
) -> list[CrossSplitDuplicate]:
    """Every item whose content appeared in an earlier split (splits are taken in mapping order).

    Each duplicate is reported once, paired with the first earlier occurrence.

    Args:
        splits: e.g. ``{"train": [...], "val": [...], "test": [...]}``.
        key: the image key.
        hash_fn: item -> hash; default ``content_hash(item, key)``.
        id_keys: keys used to name items in the report.

    Returns:
        the duplicates, in split order then index order.
    """
    hash_fn = hash_fn or (lambda item: content_hash(item, key=key))
    first_seen: dict[str, tuple[str, int, str]] = {}
    found: list[CrossSplitDuplicate] = []
    for split_name, items in splits.items():
        for index, item in enumerate(items):
            digest = hash_fn(item)
            seen = first_seen.get(digest)
            if seen is None:
                first_seen[digest] = (split_name, index, describe_item(item, key, id_keys))
            elif seen[0] != split_name:
                found.append(CrossSplitDuplicate(digest, *seen, split_name, index, describe_item(item, key, id_keys)))
    return found


def check_disjoint_splits(
    splits: Mapping[str, Sequence[Any]],
    key: str = "image",
    hash_fn: HashFn | None = None,
    id_keys: Sequence[str] = DEFAULT_ID_KEYS,
    max_listed: int = 20,
) -> None:
    """Raise if the same pixel content appears in two splits.

    Args:
        splits: split name -> datalist.
        key: the image key.
        hash_fn: item -> hash; default ``content_hash(item, key)``.
        id_keys: keys used to name items in the message.
        max_listed: how many duplicates the message spells out.

    Raises:
        ValueError: naming both entries (split, index and id/path) of each duplicate.
    """
    duplicates = find_cross_split_duplicates(splits, key=key, hash_fn=hash_fn, id_keys=id_keys)
    if not duplicates:
        return
    lines = [str(d) for d in duplicates[:max_listed]]
    if len(duplicates) > max_listed:
        lines.append(f"... and {len(duplicates) - max_listed} more")
    raise ValueError(
        f"{len(duplicates)} image(s) appear in more than one split "
        "(use drop_cross_split_duplicates to remove the later copies):\n  " + "\n  ".join(lines)
    )


def drop_cross_split_duplicates(
    splits: Mapping[str, Sequence[Any]],
    key: str = "image",
    hash_fn: HashFn | None = None,
    id_keys: Sequence[str] = DEFAULT_ID_KEYS,
) -> tuple[dict[str, list[Any]], list[CrossSplitDuplicate]]:
    """Remove items whose content appeared in an earlier split (e.g. val copies of train images).

    The earliest split keeps its items (so put ``train`` first to keep training data intact, or ``test`` first to
    keep a fixed benchmark intact). The input is not modified.

    Args:
        splits: split name -> datalist, in priority order.
        key: the image key.
        hash_fn: item -> hash; default ``content_hash(item, key)``.
        id_keys: keys used to name items in the report.

    Returns:
        ``(new_splits, removed)``: the splits without the later copies, and one :class:`CrossSplitDuplicate` per
        removed item.
    """
    removed = find_cross_split_duplicates(splits, key=key, hash_fn=hash_fn, id_keys=id_keys)
    drop = {(d.split, d.index) for d in removed}
    new_splits = {
        name: [item for index, item in enumerate(items) if (name, index) not in drop] for name, items in splits.items()
    }
    return new_splits, removed


@dataclass(frozen=True)
class LabelConflict:
    """Items of one split with identical pixels and different labels.

    Attributes:
        digest: the content hash.
        split: the split.
        indices: positions of the items in the split.
        ids: their descriptions (see :func:`describe_item`).
        labels: their labels, as written in the items.
    """

    digest: str
    split: str
    indices: tuple[int, ...]
    ids: tuple[str, ...]
    labels: tuple[Any, ...]

    def __str__(self) -> str:
        entries = ", ".join(
            f"{self.split}[{i}] ({name}, label {label})"
            for i, name, label in zip(self.indices, self.ids, self.labels, strict=True)
        )
        return f"same pixels, different labels: {entries}"


def _label_key(label: Any) -> str:
    """Comparable form of an int, a class name or a multi-label vector."""
    if hasattr(label, "detach"):
        label = label.detach().cpu().numpy()
    return repr(np.asarray(label).tolist())


def find_label_conflicts(
    splits: Mapping[str, Sequence[Any]],
    key: str = "image",
    label_key: str = "label",
    hash_fn: HashFn | None = None,
    id_keys: Sequence[str] = DEFAULT_ID_KEYS,
) -> list[LabelConflict]:
    """Groups of identical images within one split whose labels disagree.

    Items without a label are ignored (they cannot conflict). Identical images across splits are the business of
    :func:`find_cross_split_duplicates`.

    Args:
        splits: split name -> datalist.
        key: the image key.
        label_key: the label key.
        hash_fn: item -> hash; default ``content_hash(item, key)``.
        id_keys: keys used to name items in the report.

    Returns:
        one :class:`LabelConflict` per group, in split order then by first index.
    """
    hash_fn = hash_fn or (lambda item: content_hash(item, key=key))
    found: list[LabelConflict] = []
    for split_name, items in splits.items():
        groups: dict[str, list[int]] = {}
        for index, item in enumerate(items):
            if isinstance(item, Mapping) and item.get(label_key) is not None:
                groups.setdefault(hash_fn(item), []).append(index)
        for digest, members in groups.items():
            labels = [items[i][label_key] for i in members]
            if len({_label_key(label) for label in labels}) > 1:
                ids = tuple(describe_item(items[i], key, id_keys) for i in members)
                found.append(LabelConflict(digest, split_name, tuple(members), ids, tuple(labels)))
    return found
