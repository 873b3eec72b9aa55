"""mini-MIAS abnormality classes as a multi-label task (an Ark source with its own label set).

``Info.txt`` lists one row per abnormality: ``ref tissue class severity x y radius``; a mammogram with several
abnormalities has several rows, so an image's label is the set of its abnormality classes (multi-hot).

Reference:
    Suckling et al., "The Mammographic Image Analysis Society Digital Mammogram Database", 1994.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from monai_remedis.data.builders import split_datalist
from monai_remedis.data.patient_split import mini_mias_patient_id

MIAS_ABNORMALITIES: tuple[str, ...] = ("CALC", "CIRC", "SPIC", "MISC", "ARCH", "ASYM")
"""Abnormality classes of mini-MIAS: calcification, circumscribed/spiculated/ill-defined mass, architectural
distortion, asymmetry (``NORM`` rows are normal mammograms, not an abnormality)."""


def read_mias_info(info_file: str | Path) -> dict[str, set[str]]:
    """``{ref: set of abnormality classes}`` from a mini-MIAS ``Info.txt`` (``NORM`` rows give an empty set)."""
    classes: dict[str, set[str]] = {}
    for line in Path(info_file).read_text().splitlines():
        fields = line.split()
        if len(fields) < 3 or not fields[0].lower().startswith("mdb"):
            continue
        found = classes.setdefault(fields[0].lower(), set())
        if fields[2].upper() != "NORM":
            found.add(fields[2].upper())
    return classes


def mias_abnormality_datalist(
    images_dir: str | Path, info_file: str | Path, classes: tuple[str, ...] | list[str] = MIAS_ABNORMALITIES
) -> list[dict[str, Any]]:
    """One item per mammogram under ``images_dir`` (any depth), labelled with its abnormality classes.

    Args:
        images_dir: folder of ``mdbNNN.*`` images (e.g. ``mini_mias_abnormal/images_512``).
        info_file: the database's ``Info.txt``.
        classes: class order of the multi-hot label.

    Returns:
        Items ``{"image": path, "label": float32 multi-hot, "patient_id", "id"}`` sorted by reference; a
        reference found twice (mini-MIAS ``mdb144`` sits under two folders) is kept once.

    Raises:
        FileNotFoundError: no image under ``images_dir``.
        ValueError: an image whose reference ``Info.txt`` does not list, or an unknown class in ``classes``.
    """
    info = read_mias_info(info_file)
    known = set().union(*info.values()) if info else set()
    unknown = [c for c in classes if c not in known]
    if unknown:
        raise ValueError(f"classes {unknown} never occur in {info_file}. Known: {', '.join(sorted(known))}.")
    paths = {p.stem.lower(): p for p in sorted(Path(images_dir).rglob("mdb*.*")) if p.is_file()}
    if not paths:
        raise FileNotFoundError(f"no mini-MIAS images (mdbNNN.*) under {images_dir}.")
    items = []
    for ref, path in sorted(paths.items()):
        if ref not in info:
            raise ValueError(f"{path}: reference '{ref}' is not listed in {info_file}.")
        label = np.array([c in info[ref] for c in classes], dtype=np.float32)
        items.append({"image": str(path), "label": label, "patient_id": mini_mias_patient_id(ref), "id": ref})
    return items


def mias_abnormality_splits(
    images_dir: str | Path,
    info_file: str | Path,
    val: float = 0.2,
    test: float = 0.2,
    seed: int = 0,
    classes: tuple[str, ...] | list[str] = MIAS_ABNORMALITIES,
) -> dict[str, list[dict[str, Any]]]:
    """Woman-level ``training``/``validation``/``test`` split of :func:`mias_abnormality_datalist`."""
    items = mias_abnormality_datalist(images_dir, info_file, classes)
    return split_datalist(items, val=val, test=test, seed=seed, label_key=None)
