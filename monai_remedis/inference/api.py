"""Run a backbone or classifier over items that need no label: folders, datalists or CSVs of new images."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from monai.data import DataLoader, Dataset

from monai_remedis.data.readers import DICOM_SUFFIXES, NIFTI_SUFFIXES, PIL_SUFFIXES, TIFF_SUFFIXES
from monai_remedis.engines.runtime import collate_items

IMAGE_SUFFIXES = (*DICOM_SUFFIXES, *NIFTI_SUFFIXES, *PIL_SUFFIXES, *TIFF_SUFFIXES)
"""File endings :func:`image_items` picks up in a folder (DICOM, NIfTI, PNG/JPEG/PGM..., TIFF)."""


def _is_image(path: Path) -> bool:
    name = path.name.lower()
    return path.is_file() and not name.startswith(".") and name.endswith(IMAGE_SUFFIXES)


def image_items(source: str | Path | None, split: str | None = None) -> list[dict[str, Any]]:
    """Items ``{"image": path, "id": ...}`` for new images; a ``label`` is kept where the source has one.

    Args:
        source: a folder (searched recursively for :data:`IMAGE_SUFFIXES`, sorted), a decathlon-style datalist
            JSON (every split, or ``split``), or a CSV with an ``image`` or ``path`` column (relative paths resolve
            against the CSV's folder).
        split: with a datalist JSON, the one split to read (``training``, ``validation``, ``test``...).

    Raises:
        FileNotFoundError: naming ``source`` when it does not exist or holds no image.
        ValueError: naming the CSV when it has neither an ``image`` nor a ``path`` column, or when ``source`` is
            None (the inference config's ``images`` key was not set).
    """
    if source is None:
        raise ValueError("no images given: set `images` (a folder, a datalist .json, a .csv or an image file).")
    source = Path(source)
    if source.is_dir():
        items = [{"image": str(p), "id": str(p.relative_to(source))} for p in sorted(source.rglob("*")) if _is_image(p)]
    elif source.suffix.lower() == ".json" and source.is_file():
        items = _datalist_items(source, split)
    elif source.suffix.lower() == ".csv" and source.is_file():
        items = _csv_items(source)
    elif source.is_file() and _is_image(source):
        items = [{"image": str(source), "id": source.name}]
    else:
        raise FileNotFoundError(f"no images at '{source}': give a folder, a datalist .json, a .csv or an image file.")
    if not items:
        raise FileNotFoundError(f"'{source}' holds no image ({', '.join(IMAGE_SUFFIXES)}).")
    return items


def _datalist_items(path: Path, split: str | None) -> list[dict[str, Any]]:
    data = json.loads(path.read_text())
    splits = {"items": data} if isinstance(data, list) else {k: v for k, v in data.items() if isinstance(v, list)}
    if split is not None:
        if split not in splits:
            raise KeyError(f"datalist '{path}' has no split '{split}'; it has {', '.join(sorted(splits))}.")
        splits = {split: splits[split]}
    items = []
    for name, entries in splits.items():
        for i, entry in enumerate(entries):
            if not isinstance(entry, Mapping) or "image" not in entry:
                continue  # e.g. class-name lists beside the splits
            image = entry["image"]
            image = str(path.parent / image) if not Path(image).is_absolute() else image
            items.append({**entry, "image": image, "id": entry.get("id", f"{name}/{i}")})
    return items


def _csv_items(path: Path) -> list[dict[str, Any]]:
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    column = next((c for c in ("image", "path") if rows and c in rows[0]), None)
    if column is None:
        raise ValueError(
            f"CSV '{path}' needs an 'image' or 'path' column; it has {', '.join(rows[0]) if rows else 'no rows'}."
        )
    items = []
    for row in rows:
        image = Path(row[column])
        image = image if image.is_absolute() else path.parent / image
        items.append({**{k: v for k, v in row.items() if k != column}, "image": str(image), "id": row[column]})
    return items


def unlabelled(items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Only ``image`` and ``id`` of each item: labels or metadata of any shape never reach the collate."""
    return [{"image": item["image"], "id": str(item.get("id", i))} for i, item in enumerate(items)]


@torch.no_grad()
def _run(
    network: Callable[[torch.Tensor], torch.Tensor],
    items: Sequence[Mapping[str, Any]],
    transform: Callable,
    batch_size: int,
    device: torch.device | str,
    num_workers: int,
) -> np.ndarray:
    if not items:
        raise ValueError("no items to run on.")
    loader = DataLoader(
        Dataset(unlabelled(items), transform=transform),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=collate_items,
    )
    outputs = [network(torch.as_tensor(batch["image"]).to(device)).float().cpu() for batch in loader]
    return torch.cat(outputs).numpy()


def embed(
    backbone: nn.Module,
    items: Sequence[Mapping[str, Any]],
    transform: Callable,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    num_workers: int = 0,
) -> np.ndarray:
    """Pooled backbone features ``(N, feature_dim)`` of ``items`` in order (eval mode, no labels needed).

    These are the features a frozen linear probe trains on
    (:func:`monai_remedis.evaluation.linear_probe.extract_features` gives the same numbers on labelled items).
    """
    backbone = backbone.to(device).eval()
    return _run(backbone, items, transform, batch_size, device, num_workers)


def predict_probabilities(
    classifier: nn.Module,
    items: Sequence[Mapping[str, Any]],
    transform: Callable,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    num_workers: int = 0,
) -> np.ndarray:
    """Softmax class probabilities ``(N, num_classes)`` of ``classifier`` on ``items`` in order (no labels needed)."""
    classifier = classifier.to(device).eval()
    return _run(
        lambda x: torch.softmax(classifier(x).float(), dim=1), items, transform, batch_size, device, num_workers
    )
