"""APTOS 2019 (Aravind Eye Hospital, India): the second site of the diabetic-retinopathy cross-site scenario.

The shared subset (``aptos2019_dr``, see its ``SOURCE.md``) holds 600 fundus photographs graded on the same 0-4
ICDR scale as RetinaMNIST (DeepDRiD, Shanghai), as a 28x28 ``.npz`` in RetinaMNIST layout and as 128 px PNGs.
It contains six pairs of pixel-identical images, two of them with *conflicting* grades. :func:`aptos_datalist`
finds the pairs by pixel-content hash (not from a hard-coded list) and

* drops **both** images of every group whose grades disagree (the true grade is unknown), and
* keeps **one** image (the smallest ``id_code``) of every group whose grades agree,

so 600 images become 592. There are no patient ids, so :func:`aptos_splits` splits at image level (stratified by
grade): images of one patient may fall in two splits (said in every report that uses it).
"""

from __future__ import annotations

import csv
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from monai_remedis.data.builders import split_datalist
from monai_remedis.data.duplicates import content_hash
from monai_remedis.data.layout import to_monai_layout
from monai_remedis.data.paths import data_path

__all__ = [
    "APTOS_SITE",
    "AptosCleaning",
    "aptos_datalist",
    "aptos_splits",
    "clean_duplicates",
]

logger = logging.getLogger("monai_remedis")

APTOS_SITE = "aravind"
APTOS_DIR = "aptos2019_dr"
NPZ_NAME = "aptos2019_28.npz"
SOURCES = ("npz", "png")


@dataclass
class AptosCleaning:
    """What :func:`clean_duplicates` removed.

    Attributes:
        conflicting: groups of ids with the same pixels and different grades (all dropped), as
            ``[[(id, grade), ...], ...]``.
        consistent: groups with the same pixels and the same grade (first id kept, others dropped).
        dropped: every dropped id.
    """

    conflicting: list[list[tuple[str, int]]] = field(default_factory=list)
    consistent: list[list[tuple[str, int]]] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


def _npz_items(root: Path) -> list[dict[str, Any]]:
    path = root / NPZ_NAME
    if not path.is_file():
        raise FileNotFoundError(f"APTOS npz not found: {path} (set REMEDIS_DATA or pass root).")
    with np.load(path, allow_pickle=False) as npz:
        images, labels, codes = npz["images"], npz["labels"].reshape(-1), npz["id_codes"]
    images = to_monai_layout(images, spatial_dims=2)  # (N, 3, x, y), as the PNGs read
    return [{"image": images[i], "label": int(labels[i]), "id": f"aptos2019/{codes[i]}"} for i in range(len(images))]


def _png_items(root: Path) -> list[dict[str, Any]]:
    table = root / "labels.csv"
    if not table.is_file():
        raise FileNotFoundError(f"APTOS labels not found: {table} (set REMEDIS_DATA or pass root).")
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f))
    items = []
    for row in rows:
        image = root / "images_128" / f"{row['id_code']}.png"
        if not image.is_file():
            raise FileNotFoundError(f"APTOS image listed in {table} is missing: {image}")
        items.append({"image": str(image), "label": int(row["diagnosis"]), "id": f"aptos2019/{row['id_code']}"})
    return items


def clean_duplicates(
    items: Sequence[Mapping[str, Any]], hashes: Sequence[str] | None = None
) -> tuple[list[dict[str, Any]], AptosCleaning]:
    """Drop pixel-identical images: all of a group with conflicting labels, all but the first id otherwise.

    Args:
        items: labelled items with ``id``.
        hashes: their pixel-content hashes (default :func:`~monai_remedis.data.duplicates.content_hash`).

    Returns:
        ``(kept_items, cleaning)``; kept items stay in input order.
    """
    digests = list(hashes) if hashes is not None else [content_hash(item) for item in items]
    groups: dict[str, list[int]] = defaultdict(list)
    for i, digest in enumerate(digests):
        groups[digest].append(i)
    cleaning = AptosCleaning()
    drop: set[int] = set()
    for members in groups.values():
        if len(members) < 2:
            continue
        members = sorted(members, key=lambda i: str(items[i]["id"]))
        described = [(str(items[i]["id"]), int(items[i]["label"])) for i in members]
        if len({label for _, label in described}) > 1:
            cleaning.conflicting.append(described)
            drop.update(members)
        else:
            cleaning.consistent.append(described)
            drop.update(members[1:])
    cleaning.dropped = sorted(str(items[i]["id"]) for i in drop)
    return [dict(item) for i, item in enumerate(items) if i not in drop], cleaning


def aptos_datalist(
    root: str | Path | None = None,
    source: str = "npz",
    clean: bool = True,
    site: str = APTOS_SITE,
    split: str | None = None,
    return_cleaning: bool = False,
) -> list[dict[str, Any]] | tuple[list[dict[str, Any]], AptosCleaning]:
    """The APTOS 2019 subset as a datalist (``image``, ``label`` 0-4, ``id`` = ``aptos2019/<id_code>``, ``site``).

    Args:
        root: the ``aptos2019_dr`` folder (default: ``$REMEDIS_DATA/aptos2019_dr``).
        source: ``npz`` (28x28 RGB arrays, RetinaMNIST layout, as ``(3, x, y)`` like files are read) or ``png``
            (128 px file paths).
        clean: drop the pixel-identical duplicates (see the module docstring): 600 -> 592 images.
        site: site tag of every item.
        split: optional ``split`` tag of every item (e.g. ``"ood"`` when the whole set is an external test set).
        return_cleaning: also return the :class:`AptosCleaning` record.

    Returns:
        the items (in ``id_code`` order), and the cleaning record when asked.

    Raises:
        ValueError: unknown ``source``.
        FileNotFoundError: missing files.
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got '{source}'.")
    folder = Path(root) if root is not None else data_path(APTOS_DIR)
    items = _npz_items(folder) if source == "npz" else _png_items(folder)
    for item in items:
        item["site"] = site
        if split:
            item["split"] = split
    cleaning = AptosCleaning()
    if clean:
        items, cleaning = clean_duplicates(items)
        logger.info(
            "APTOS: dropped %d images (%d conflicting-grade groups, %d same-grade duplicate groups); %d left",
            len(cleaning.dropped),
            len(cleaning.conflicting),
            len(cleaning.consistent),
            len(items),
        )
    items.sort(key=lambda item: item["id"])
    return (items, cleaning) if return_cleaning else items


def aptos_splits(
    items: Sequence[Mapping[str, Any]],
    val: float = 0.15,
    test: float = 0.35,
    seed: int = 0,
    limit: int | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Image-level stratified ``train``/``val``/``test`` split of APTOS items, each item tagged with ``split``.

    APTOS has no patient ids, so the split is by image (see the module docstring). The defaults keep a test set
    large enough for a usable AUC interval (about 207 of 592 images) and a validation set for model selection.

    Args:
        items: APTOS items (already cleaned).
        val: validation fraction.
        test: test fraction.
        seed: split seed.
        limit: keep only the first ``limit`` items of each split (smoke runs).

    Returns:
        ``{"train": [...], "val": [...], "test": [...]}``.
    """
    splits = split_datalist(items, val=val, test=test, seed=seed)
    names = {"training": "train", "validation": "val", "test": "test"}
    return {names[k]: [dict(item, split=names[k]) for item in v[:limit]] for k, v in splits.items()}
