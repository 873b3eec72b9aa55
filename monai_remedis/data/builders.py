"""The datalist API: lists of dicts in MONAI's decathlon style, behind the bundles' configs and
``python -m monai_remedis datalist``.

Every item has ``"image"`` (a file path, or an in-memory channel-first ``numpy`` array for ``.npz`` sources, in
MONAI's file layout: see :mod:`monai_remedis.data.layout`) and optionally ``"label"`` (int), ``"patient_id"``,
``"site"`` and ``"id"`` (a stable identifier used in reports and duplicate checks).

Sources: a folder of class subfolders (or a flat folder with the class in the file name, :func:`folder_datalist`),
a CSV table (:func:`table_datalist`), a DICOM folder walk with labels from a CSV (:func:`dicom_folder_datalist`), a
MedMNIST-style ``.npz`` (:func:`medmnist_datalist` for one split, :func:`npz_splits` for all three,
:func:`natural_image_npz_datalist` for class-balanced heads of natural images). JSON in and out:
:func:`load_datalist`, :func:`write_datalist` (and :func:`export_npz_splits` to turn arrays into files first).
Every datalist ends the same way: :func:`split_datalist`
(for sources without splits), then :func:`checked_splits`, which every bundle's ``common.yaml`` applies to its
``datalist`` (whatever source or command-line override it came from):

* **patient-level splits** when the items carry a patient id (whole patients go to one split, stratified by
  label), item-level stratified splits when none does, and an error when only some do;
* **no image in two splits**: pixel-content hashes are compared across splits (:func:`resolve_duplicates`). Policies
  (``on_duplicate``): ``error`` refuses any collision with an error naming both entries; ``drop`` removes the
  lower-priority copies; ``drop_validation`` removes copies that sit in the validation split and refuses every
  other collision (a training/test leak); ``ignore`` skips the check. Copies are kept in the split that matters
  most: ``test`` first (a published benchmark stays intact), then ``training``, then ``validation``.
  PneumoniaMNIST's 8 train/val duplicates therefore leave validation (524 -> 516 images; the cxr bundle's default
  ``drop_validation``), and BreastMNIST's train/test duplicate leaves training under ``drop`` (546 -> 545); test
  sets never change;
* **no image with two labels**: identical pixels within one split under different labels
  (:func:`resolve_label_conflicts`, ``on_label_conflict``: ``error``, ``drop`` -- both copies, since the true
  label is unknown -- or ``ignore``). mini-MIAS files ``mdb144`` under both ``benign/`` and ``malignant/`` (the
  mammography bundle drops both).

With ``limit`` (smoke runs) only the kept items are hashed, so a duplicate outside them is not seen.

Split names follow the MONAI decathlon JSON (``training``, ``validation``, ``test``); the bundles' short names
(``train``, ``val``, ``test``) are understood too.
"""

from __future__ import annotations

import csv
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monai_remedis.data.duplicates import (
    CrossSplitDuplicate,
    HashFn,
    LabelConflict,
    content_hash,
    find_cross_split_duplicates,
    find_label_conflicts,
)
from monai_remedis.data.layout import from_monai_layout, to_monai_layout
from monai_remedis.data.patient_split import add_patient_ids, check_patient_disjoint, patient_split
from monai_remedis.data.validation import check_label_strings

__all__ = [
    "DUPLICATE_POLICIES",
    "IMAGE_SUFFIXES",
    "LABEL_CONFLICT_POLICIES",
    "SPLIT_KEYS",
    "checked_splits",
    "dicom_folder_datalist",
    "encode_labels",
    "export_npz_splits",
    "folder_datalist",
    "limit_per_label",
    "load_datalist",
    "medmnist_datalist",
    "natural_image_npz_datalist",
    "npz_splits",
    "patient_id_function",
    "resolve_duplicates",
    "resolve_label_conflicts",
    "split_datalist",
    "table_datalist",
    "write_datalist",
]

logger = logging.getLogger("monai_remedis")

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".tif", ".tiff", ".dcm", ".nii", ".nii.gz")
MEDMNIST_SPLITS = ("train", "val", "test")
SPLIT_KEYS = ("training", "validation", "test")
DUPLICATE_POLICIES = ("error", "drop", "drop_validation", "ignore")
LABEL_CONFLICT_POLICIES = ("error", "drop", "ignore")
_VALIDATION = 2
_PRIORITY = {"test": 0, "training": 1, "train": 1, "validation": _VALIDATION, "val": _VALIDATION}
_NPZ_KEYS = dict(zip(MEDMNIST_SPLITS, SPLIT_KEYS, strict=True))
_PATH_KEYS = ("path", "name", "stem")


# ---- labels and patient ids ---------------------------------------------------------------------------------------


def encode_labels(
    items: Sequence[Mapping[str, Any]], class_names: Sequence[str] | None = None, label_key: str = "label"
) -> tuple[list[dict[str, Any]], list[str] | None]:
    """Integer labels from integer or class-name labels.

    Args:
        items: datalist whose ``label_key`` holds ints, integer strings or class names.
        class_names: class names in label order; default: sorted distinct names (integer labels need none).
        label_key: the label entry.

    Returns:
        ``(new_items, class_names)``; ``class_names`` is None when the labels were integers and none were given.

    Raises:
        ValueError: an item without a label, or a class name not in ``class_names``, named by index and id.
    """
    raw = []
    for i, item in enumerate(items):
        if item.get(label_key) in (None, ""):
            raise ValueError(f"item {i} ({item.get('id', item.get('image'))}) has no '{label_key}'.")
        raw.append(str(item[label_key]).strip())
    if not class_names:  # '1.0' among 0/1 would become a class of its own
        check_label_strings(raw, [item.get("id", item.get("image")) for item in items])
    numeric = all(re.fullmatch(r"-?\d+", v) for v in raw)
    if numeric and not class_names:
        return [{**item, label_key: int(v)} for item, v in zip(items, raw, strict=True)], None
    names = list(class_names) if class_names else sorted(set(raw))
    index = {name: i for i, name in enumerate(names)}
    out = []
    for i, (item, value) in enumerate(zip(items, raw, strict=True)):
        if value not in index and not (numeric and 0 <= int(value) < len(names)):
            raise ValueError(f"item {i} ({item.get('id', item.get('image'))}): label '{value}' not in {names}.")
        out.append({**item, label_key: index[value] if value in index else int(value)})
    return out, names


def _path_regex(spec: str, what: str) -> Callable[[Any], str]:
    """The match (first group if any) of a regular expression in a path; raises ValueError naming the path."""
    pattern = re.compile(spec)

    def from_regex(path: Any) -> str:
        match = pattern.search(str(path))
        if match is None:
            raise ValueError(f"{what} pattern {spec!r} does not match '{path}'.")
        return match.group(1) if pattern.groups else match.group(0)

    return from_regex


def patient_id_function(spec: str | Callable[[Any], str]) -> Callable[[Any], str]:
    """Patient id from an image path: a function (returned as is), a dataset convention named in
    :data:`monai_remedis.apps.PATIENT_ID_SCHEMES` (``"mini-mias"`` pairs consecutive mini-MIAS references, the
    left/right breast of one woman), or else a regular expression whose match (first group if any) in the path is
    the id.

    Raises:
        ValueError: (when called) a path the expression does not match.
    """
    if callable(spec):
        return spec
    from monai_remedis.apps import PATIENT_ID_SCHEMES  # dataset conventions live in the apps package

    return PATIENT_ID_SCHEMES.get(spec.lower()) or _path_regex(spec, "patient-id")


# ---- splits and duplicates ----------------------------------------------------------------------------------------


def split_datalist(
    items: Sequence[Mapping[str, Any]],
    val: float = 0.1,
    test: float = 0.1,
    seed: int = 0,
    patient_key: str = "patient_id",
    label_key: str | None = "label",
) -> dict[str, list[dict[str, Any]]]:
    """Deterministic ``training``/``validation``/``test`` split, patient-level when patient ids exist.

    Args:
        items: datalist.
        val: fraction of patients (or items) for validation.
        test: fraction for test.
        seed: split seed.
        patient_key: patient id entry; when every item has one, whole patients go to one split.
        label_key: label entry to stratify by (None: no stratification).

    Returns:
        split name -> items.

    Raises:
        ValueError: bad fractions, or only some items with a patient id (named).
    """
    if not 0 <= val < 1 or not 0 <= test < 1 or val + test >= 1:
        raise ValueError(f"val and test must be in [0, 1) with val + test < 1, got {val} and {test}.")
    with_id = [item.get(patient_key) not in (None, "") for item in items]
    if any(with_id) and not all(with_id):
        i = with_id.index(False)
        raise ValueError(
            f"item {i} ({items[i].get('id', items[i].get('image'))}) has no '{patient_key}' while others have one: "
            "give every item a patient id, or none for an item-level split."
        )
    key = patient_key if all(with_id) else "_item"
    keyed = [dict(item) if key == patient_key else {**item, key: i} for i, item in enumerate(items)]
    labelled = label_key if label_key and all(label_key in item for item in items) else None
    fractions = {"training": 1.0 - val - test, "validation": val, "test": test}
    splits = patient_split(keyed, fractions, seed=seed, patient_key=key, label_key=labelled)
    if key == patient_key:
        check_patient_disjoint(splits, patient_key)
    else:
        splits = {name: [{k: v for k, v in it.items() if k != key} for it in its] for name, its in splits.items()}
    return splits


def _by_priority(splits: Mapping[str, Sequence[Any]]) -> dict[str, Sequence[Any]]:
    names = sorted(splits, key=lambda n: (_PRIORITY.get(n, len(_PRIORITY)), list(splits).index(n)))
    return {name: splits[name] for name in names}


def _listed(found: Sequence[Any], max_listed: int) -> str:
    lines = [str(d) for d in found[:max_listed]]
    if len(found) > max_listed:
        lines.append(f"... and {len(found) - max_listed} more")
    return "\n  " + "\n  ".join(lines)


def _without(splits: Mapping[str, Sequence[Any]], drop: set[tuple[str, int]]) -> dict[str, list[Any]]:
    return {name: [item for i, item in enumerate(items) if (name, i) not in drop] for name, items in splits.items()}


def resolve_duplicates(
    splits: Mapping[str, Sequence[Any]],
    on_duplicate: str = "error",
    max_listed: int = 20,
    hash_fn: HashFn | None = None,
) -> tuple[dict[str, list[Any]], list[CrossSplitDuplicate]]:
    """Refuse or drop images whose pixels appear in two splits.

    Splits are compared in priority order (``test``, ``training``, ``validation``, then any other name), so the
    copy that is dropped is always the one in the less important split; the returned splits keep the input's
    names and order, and the items their order.

    Args:
        splits: split name -> datalist.
        on_duplicate: ``error`` (refuse), ``drop`` (remove the lower-priority copies), ``drop_validation`` (remove
            copies in the validation split, refuse any other collision such as a training/test leak) or
            ``ignore`` (no check).
        max_listed: duplicates spelled out in the error.
        hash_fn: item -> pixel hash (default :func:`~monai_remedis.data.duplicates.content_hash`).

    Returns:
        ``(splits, removed)`` with the splits in their original order.

    Raises:
        ValueError: a refused duplicate, naming both entries (split, index, id) of each one.
    """
    if on_duplicate not in DUPLICATE_POLICIES:
        raise ValueError(f"on_duplicate must be one of {DUPLICATE_POLICIES}, got '{on_duplicate}'.")
    if on_duplicate == "ignore":
        return {name: list(items) for name, items in splits.items()}, []
    found = find_cross_split_duplicates(_by_priority(splits), hash_fn=hash_fn)
    if on_duplicate == "error":
        refused = found
    elif on_duplicate == "drop_validation":
        refused = [d for d in found if _PRIORITY.get(d.split) != _VALIDATION]
    else:
        refused = []
    if refused:
        hint = (
            "only validation copies are dropped under on_duplicate='drop_validation'; fix the datalist"
            if on_duplicate == "drop_validation"
            else "drop the later copies with on_duplicate='drop' / --drop-duplicates"
        )
        raise ValueError(
            f"{len(refused)} image(s) appear in more than one split ({hint}):" + _listed(refused, max_listed)
        )
    if found:
        logger.warning(
            "dropped %d cross-split duplicate(s) (on_duplicate=%s):%s", len(found), on_duplicate, _listed(found, 50)
        )
    return _without(splits, {(d.split, d.index) for d in found}), found


def resolve_label_conflicts(
    splits: Mapping[str, Sequence[Any]],
    on_label_conflict: str = "error",
    max_listed: int = 20,
    hash_fn: HashFn | None = None,
) -> tuple[dict[str, list[Any]], list[LabelConflict]]:
    """Refuse or drop identical images that carry different labels within one split.

    Args:
        splits: split name -> datalist.
        on_label_conflict: ``error`` (refuse), ``drop`` (remove *every* item of a conflicting group: the true label
            is unknown) or ``ignore`` (no check).
        max_listed: conflicts spelled out in the error.
        hash_fn: item -> pixel hash (default :func:`~monai_remedis.data.duplicates.content_hash`).

    Returns:
        ``(splits, conflicts)`` with the splits in their original order.

    Raises:
        ValueError: ``on_label_conflict="error"`` and a conflict exists, naming every entry (split, index, id, label).
    """
    if on_label_conflict not in LABEL_CONFLICT_POLICIES:
        raise ValueError(f"on_label_conflict must be one of {LABEL_CONFLICT_POLICIES}, got '{on_label_conflict}'.")
    if on_label_conflict == "ignore":
        return {name: list(items) for name, items in splits.items()}, []
    found = find_label_conflicts(splits, hash_fn=hash_fn)
    if found and on_label_conflict == "error":
        raise ValueError(
            f"{len(found)} image(s) appear under different labels within one split (drop every copy with "
            "on_label_conflict='drop'):" + _listed(found, max_listed)
        )
    if found:
        logger.warning(
            "dropped %d items: %d image(s) under conflicting labels (on_label_conflict=drop):%s",
            sum(len(c.indices) for c in found),
            len(found),
            _listed(found, 50),
        )
    return _without(splits, {(c.split, i) for c in found for i in c.indices}), found


def limit_per_label(items: Sequence[Any], limit: int | None, interleave: bool = False) -> list[Any]:
    """The first ``limit`` items taken round-robin across labels (each label's items in their order).

    A folder datalist is sorted by class, so its first N items are often all one class; drawing in turn from each
    label keeps smoke runs (and their metrics) meaningful. Items without a label count as one group.

    Args:
        items: datalist.
        limit: items to keep; None keeps all.
        interleave: return the items in the order drawn (labels in turn) instead of their original order.

    Example:
        >>> [i["id"] for i in limit_per_label([{"id": n, "label": n // 2} for n in range(6)], 4, interleave=True)]
        [0, 2, 4, 1]
    """
    if limit is None or (limit >= len(items) and not interleave):
        return list(items)
    groups: dict[str, list[int]] = {}
    for index, item in enumerate(items):
        label = item.get("label") if isinstance(item, Mapping) else None
        groups.setdefault(str(label), []).append(index)
    queues = [iter(indices) for indices in groups.values()]
    chosen: list[int] = []
    wanted = min(limit, len(items))
    while len(chosen) < wanted:
        for queue in queues:
            index = next(queue, None)
            if index is not None and len(chosen) < wanted:
                chosen.append(index)
    return [items[i] for i in (chosen if interleave else sorted(chosen))]


def checked_splits(
    splits: Mapping[str, Sequence[Any]],
    limit: int | None = None,
    on_duplicate: str = "error",
    on_label_conflict: str = "error",
) -> dict[str, list[Any]]:
    """What every bundle does to its datalist: keep ``limit`` items of each split, then check the pixels.

    1. ``limit`` items of each split, round-robin across labels (:func:`limit_per_label`); ``None`` keeps all.
    2. The same image in two splits: :func:`resolve_duplicates` with ``on_duplicate``.
    3. The same image under two labels within a split: :func:`resolve_label_conflicts` with ``on_label_conflict``.

    Only the items kept by ``limit`` are decoded and hashed (each once), so smoke runs stay fast; a duplicate of a
    kept item among the items ``limit`` left out is not seen.

    Args:
        splits: split name -> datalist (``train``/``val``/``test`` or ``training``/``validation``/``test``).
        limit: items per split, or None.
        on_duplicate: see :func:`resolve_duplicates`.
        on_label_conflict: see :func:`resolve_label_conflicts`.

    Returns:
        the checked splits, with the input's names and order.

    Raises:
        ValueError: a refused duplicate or label conflict, naming the entries.
    """
    limited = {name: limit_per_label(items, limit) for name, items in splits.items()}
    digests: dict[int, str] = {}

    def cached_hash(item: Any) -> str:  # items stay alive in `limited` for the whole call, so ids are stable
        if id(item) not in digests:
            digests[id(item)] = content_hash(item)
        return digests[id(item)]

    kept, _ = resolve_duplicates(limited, on_duplicate, hash_fn=cached_hash)
    return resolve_label_conflicts(kept, on_label_conflict, hash_fn=cached_hash)[0]


# ---- sources ------------------------------------------------------------------------------------------------------


def _class_folder_items(root: Path, class_names: Sequence[str], suffixes: Sequence[str]) -> list[dict[str, Any]]:
    """Items of ``root/<class_name>/<image>``; labels are indices into ``class_names``."""
    items = []
    for label, name in enumerate(class_names):
        for file in sorted((root / name).rglob("*")):
            if file.is_file() and file.name.lower().endswith(tuple(suffixes)):
                items.append({"image": str(file), "label": label, "id": str(file.relative_to(root))})
    if not items:
        raise FileNotFoundError(f"no images with suffixes {tuple(suffixes)} in class folders under {root}.")
    return items


def _csv_items(
    csv_path: Path, image_column: str, base_dir: str | Path | None, suffix: str, columns: Sequence[str]
) -> list[dict[str, Any]]:
    """One item per CSV row: ``image`` (resolved against ``base_dir``, default the CSV's folder), ``id`` (the
    image value) and the non-empty ``columns``."""
    base = Path(base_dir) if base_dir else csv_path.parent
    with open(csv_path, newline="") as f:
        items = []
        for row in csv.DictReader(f):
            image = Path(row[image_column] + suffix)
            item: dict[str, Any] = {
                "image": str(image if image.is_absolute() else base / image),
                "id": row[image_column],
            }
            item.update({c: row[c] for c in columns if c in row and row[c] != ""})
            items.append(item)
    return items


def folder_datalist(
    root: str | Path,
    class_names: Sequence[str] | None = None,
    patient_from: str | None = None,
    suffixes: Sequence[str] = IMAGE_SUFFIXES,
    label_from: str | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Items from ``root/<class>/<image>``, or from every image under ``root`` with the class name in its path.

    Args:
        root: the folder.
        class_names: class names in label order (default: the sorted subfolder names, or with ``label_from`` the
            sorted names found).
        patient_from: patient ids from the path (see :func:`patient_id_function`), or None.
        suffixes: image file endings to take.
        label_from: None for class subfolders; else a regular expression whose match (first group if any) in each
            image path is its class name, for flat folders such as mini-MIAS ``original_pgm/mdb001_benign.pgm``
            (``"_(benign|malignant)"``).

    Returns:
        ``(items, class_names)``.

    Raises:
        FileNotFoundError: no folder, or no image in it.
        ValueError: with ``label_from``, a path the expression does not match or a class not in ``class_names``.
    """
    root = Path(root).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {root}")
    if label_from:
        label_of = _path_regex(label_from, "label")
        files = sorted(p for p in root.rglob("*") if p.is_file() and p.name.lower().endswith(tuple(suffixes)))
        if not files:
            raise FileNotFoundError(f"no images with suffixes {tuple(suffixes)} under {root}.")
        relative = [f.relative_to(root) for f in files]
        found = [{"image": str(f), "label": label_of(r), "id": str(r)} for f, r in zip(files, relative, strict=True)]
        items, names = encode_labels(found, class_names)
        names = names or list(class_names or [])
    else:
        names = list(class_names) if class_names else sorted(p.name for p in root.iterdir() if p.is_dir())
        items = _class_folder_items(root, names, suffixes)
    if patient_from:
        items = add_patient_ids(items, patient_id_function(patient_from))
    return items, names


def table_datalist(
    csv_path: str | Path,
    image_column: str | None = None,
    label_column: str | None = "label",
    base_dir: str | Path | None = None,
    suffix: str = "",
    patient_column: str | None = "patient_id",
    site_column: str | None = "site",
    class_names: Sequence[str] | None = None,
) -> tuple[list[dict[str, Any]], list[str] | None]:
    """Items from a CSV with one row per image; labels may be integers or class names.

    The ``patient_column`` (e.g. HAM10000's ``lesion_id``) becomes ``patient_id`` and ``site_column`` becomes
    ``site`` when present.

    Args:
        csv_path: the CSV.
        image_column: column of image paths; None: ``image`` if the CSV has it, else ``path``.
        label_column: label column (ints or class names), or None for unlabelled data.
        base_dir: folder relative image paths start from (default: the CSV's folder).
        suffix: appended to each image value (e.g. ``".jpg"`` for bare ids).
        patient_column: column renamed to ``patient_id`` when present.
        site_column: column renamed to ``site`` when present.
        class_names: class names in label order (default: sorted names found; integer labels need none).

    Returns:
        ``(items, class_names)``.

    Raises:
        KeyError: a missing image or label column, naming the CSV's columns.
    """
    with open(csv_path, newline="") as f:
        columns = csv.DictReader(f).fieldnames or []
    if image_column is None:
        image_column = next((c for c in ("image", "path") if c in columns), None)
        if image_column is None:
            raise KeyError(
                f"{csv_path}: no image column ('image' or 'path'; name another with --image-column / image_column); "
                f"columns are {', '.join(columns)}."
            )
    if label_column and label_column not in columns:
        raise KeyError(f"{csv_path}: no column '{label_column}'; columns are {', '.join(columns)}.")
    extra = [c for c in (label_column, patient_column, site_column) if c]
    items = _csv_items(Path(csv_path), image_column, base_dir, suffix, extra)
    renames = {patient_column: "patient_id", site_column: "site"}
    items = [{renames.get(k, k): v for k, v in item.items()} for item in items]
    if not label_column:
        return items, None
    if label_column != "label":
        items = [{("label" if k == label_column else k): v for k, v in item.items()} for item in items]
    return encode_labels(items, class_names)


def _dicom_header(path: Path) -> Any:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, OSError, ValueError):
        return None
    return ds if "Rows" in ds else None  # DICOMDIR, structured reports, ... hold no image


def _dicom_key(ds: Any, path: Path, root: Path, match_on: str) -> str:
    if match_on == "path":
        return path.relative_to(root).as_posix()
    if match_on == "name":
        return path.name
    if match_on == "stem":
        return path.stem
    return str(ds.get(match_on, "") or "")


def _read_label_table(csv_path: str | Path, key_column: str, label_column: str) -> dict[str, str]:
    with open(csv_path, newline="") as f:
        reader = csv.DictReader(f)
        for needed in (key_column, label_column):
            if needed not in (reader.fieldnames or []):
                raise KeyError(f"{csv_path}: no column '{needed}'; columns are {', '.join(reader.fieldnames or [])}.")
        return {row[key_column].strip(): row[label_column] for row in reader}


def dicom_folder_datalist(
    root: str | Path,
    labels_csv: str | Path | None = None,
    key_column: str = "image",
    label_column: str = "label",
    match_on: str = "path",
    class_names: Sequence[str] | None = None,
    modalities: Sequence[str] | None = None,
    grayscale_only: bool = False,
    single_frame_only: bool = False,
    missing_label: str = "error",
) -> tuple[list[dict[str, Any]], list[str] | None]:
    """Walk a folder for DICOM images (any file name; headers only) and make one item per file.

    Items get ``image`` (absolute path), ``id`` (path relative to ``root``), ``patient_id`` (PatientID, when not
    empty), ``site`` (InstitutionName) and ``modality``. Files that are not DICOM, or DICOM without pixels, are
    skipped.

    Args:
        root: folder to walk (recursively).
        labels_csv: CSV with a key column and a label column (ints or class names); None for unlabelled data.
        key_column: CSV column matched against each file's key.
        label_column: CSV label column.
        match_on: the file's key: ``path`` (relative to ``root``), ``name``, ``stem``, or a DICOM keyword such as
            ``SOPInstanceUID``, ``StudyInstanceUID`` (study-level labels) or ``AccessionNumber``.
        class_names: class names in label order (default: sorted names found in the CSV).
        modalities: keep only these Modality values (e.g. ``["CR", "DX"]``).
        grayscale_only: keep only MONOCHROME1/MONOCHROME2 images.
        single_frame_only: keep only single-frame images.
        missing_label: what to do with images the CSV does not label: ``error``, ``drop`` or ``keep`` (unlabelled).

    Returns:
        ``(items, class_names)``.

    Raises:
        FileNotFoundError: ``root`` is not a folder, or holds no DICOM image that passes the filters.
        ValueError: an unknown ``match_on``/``missing_label``, or unlabelled images with ``missing_label="error"``.
    """
    from pydicom.datadict import tag_for_keyword

    root = Path(root).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"DICOM folder not found: {root}")
    if match_on not in _PATH_KEYS and tag_for_keyword(match_on) is None:
        raise ValueError(f"match_on must be one of {_PATH_KEYS} or a DICOM keyword, got '{match_on}'.")
    if missing_label not in ("error", "drop", "keep"):
        raise ValueError(f"missing_label must be error, drop or keep, got '{missing_label}'.")
    table = _read_label_table(labels_csv, key_column, label_column) if labels_csv else None
    wanted = {m.upper() for m in modalities} if modalities else None
    items, unlabelled, skipped = [], [], 0
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")):
        ds = _dicom_header(path)
        if ds is None:
            skipped += 1
            continue
        if wanted and str(ds.get("Modality", "")).upper() not in wanted:
            continue
        if grayscale_only and not str(ds.get("PhotometricInterpretation", "")).startswith("MONOCHROME"):
            continue
        if single_frame_only and int(ds.get("NumberOfFrames", 1) or 1) > 1:
            continue
        item: dict[str, Any] = {"image": str(path), "id": path.relative_to(root).as_posix()}
        for keyword, key in (("PatientID", "patient_id"), ("InstitutionName", "site"), ("Modality", "modality")):
            if str(ds.get(keyword, "") or "").strip():
                item[key] = str(ds.get(keyword)).strip()
        if table is not None:
            label = table.get(_dicom_key(ds, path, root, match_on))
            if label in (None, ""):
                unlabelled.append(item["id"])
                if missing_label == "drop":
                    continue
            else:
                item["label"] = label
        items.append(item)
    logger.info("DICOM walk of %s: %d images kept, %d non-DICOM or pixel-less files skipped", root, len(items), skipped)
    if not items:
        raise FileNotFoundError(f"no DICOM image under {root} passes the filters.")
    if unlabelled and missing_label == "error":
        raise ValueError(
            f"{len(unlabelled)} DICOM image(s) have no label in {labels_csv} (matched on {match_on}): "
            f"{', '.join(unlabelled[:10])}. Use missing_label='drop' or 'keep'."
        )
    labelled = [item for item in items if "label" in item]
    if not labelled:
        return items, None
    encoded, names = encode_labels(labelled, class_names)
    by_id = {item["id"]: item for item in encoded}
    return [by_id.get(item["id"], item) for item in items], names


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
    """Datalist of one split of a MedMNIST-style ``.npz`` (keys ``{split}_images``, ``{split}_labels``).

    Images become channel-first ``uint8`` arrays in MONAI's file layout (see
    :func:`~monai_remedis.data.layout.to_monai_layout`): ``(1, W, H)`` for grayscale, ``(3, W, H)`` for RGB,
    ``(1, W, H, D)`` for 3D; single-label tasks get an ``int`` label, multi-label tasks a float vector.

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

    ``limit`` keeps a class-balanced head, the classes taken in turn (:func:`limit_per_label` with
    ``interleave=True``): the CIFAR-10 subset is sorted by class, so its first N items would be a single class.
    """
    items = medmnist_datalist(path, split=split, spatial_dims=2)
    return items if limit is None else limit_per_label(items, limit, interleave=True)


def npz_splits(
    npz_path: str | Path, spatial_dims: int | None = None, site: str | None = None
) -> dict[str, list[dict[str, Any]]]:
    """A MedMNIST-style ``.npz``'s own train/val/test splits as ``training``/``validation``/``test`` (in memory).

    Args:
        npz_path: the file.
        spatial_dims: 2 or 3; default: 3 for ``(N, D, H, W)`` arrays whose last axis is not 3 (RGB), else 2.
        site: optional site name for every item.
    """
    if spatial_dims is None:
        with np.load(npz_path, allow_pickle=False) as npz:
            shape = npz["train_images"].shape
        spatial_dims = 3 if len(shape) == 4 and shape[-1] not in (1, 3, 4) else 2
    return {_NPZ_KEYS[s]: medmnist_datalist(npz_path, s, spatial_dims=spatial_dims, site=site) for s in MEDMNIST_SPLITS}


def export_npz_splits(
    splits: Mapping[str, Sequence[Mapping[str, Any]]], export_dir: str | Path
) -> dict[str, list[dict[str, Any]]]:
    """Write in-memory items as image files (PNG for 2D, NIfTI for 3D) and return path-based items.

    Files go to ``export_dir/<split>/<index>.png`` (or ``.nii.gz``), the index being the item's position in its
    source split, so ids and file names agree. Items are ``(C, x, y[, z])`` (see
    :func:`~monai_remedis.data.layout.to_monai_layout`) and the files read back through MONAI's readers as the
    same arrays: PNGs are written row-major (``(y, x)``), NIfTI data as ``(x, y, z)`` with an identity affine.
    """
    import nibabel as nib
    from PIL import Image

    out: dict[str, list[dict[str, Any]]] = {}
    for name, items in splits.items():
        folder = Path(export_dir).resolve() / name
        folder.mkdir(parents=True, exist_ok=True)
        out[name] = []
        for item in items:
            array = np.asarray(item["image"])  # channel first
            stem = str(item.get("id", len(out[name]))).rsplit("/", 1)[-1]
            if array.ndim == 4:
                path = folder / f"{stem}.nii.gz"
                nib.save(nib.Nifti1Image(np.moveaxis(array, 0, -1).squeeze(-1), np.eye(4)), str(path))
            else:
                path = folder / f"{stem}.png"
                pixels = from_monai_layout(array)  # (y, x, C): PIL writes rows
                Image.fromarray((pixels[..., 0] if pixels.shape[-1] == 1 else pixels).astype(np.uint8)).save(path)
            out[name].append({**{k: v for k, v in item.items() if k != "image"}, "image": str(path)})
    return out


def load_datalist(path: str | Path, key: str = "training") -> list[dict[str, Any]]:
    """Read one split of a decathlon-style JSON datalist (relative image paths resolve against the JSON's folder).

    An empty split (e.g. ``"test": []`` from ``datalist ... --test 0``) gives an empty list; MONAI's
    ``load_decathlon_datalist`` fails on one.
    """
    from monai.data import load_decathlon_datalist

    if Path(path).is_file() and json.loads(Path(path).read_text()).get(key, None) == []:
        return []
    return load_decathlon_datalist(str(path), is_segmentation=False, data_list_key=key)


def write_datalist(
    splits: Mapping[str, Sequence[Mapping[str, Any]]],
    path: str | Path,
    class_names: Sequence[str] | None = None,
    removed: Sequence[CrossSplitDuplicate] = (),
    source: str | None = None,
) -> Path:
    """Write a decathlon-style JSON (``training``/``validation``/``test`` plus ``labels``, ``num*`` counts and the
    dropped duplicates), readable with :func:`load_datalist`.

    Raises:
        TypeError: an item whose image is not a file path (export in-memory arrays first).
    """
    for name, items in splits.items():
        for item in items:
            if not isinstance(item.get("image"), str):
                raise TypeError(f"split '{name}' item {item.get('id')}: only file-path items can be saved as JSON.")
    payload: dict[str, Any] = {"source": source} if source else {}
    if class_names:
        payload["labels"] = {str(i): name for i, name in enumerate(class_names)}
    payload.update({f"num_{name}": len(items) for name, items in splits.items()})
    if removed:
        payload["dropped_duplicates"] = [str(d) for d in removed]
    payload.update({name: [_jsonable(item) for item in items] for name, items in splits.items()})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2))
    return path


def _jsonable(item: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: (v.tolist() if isinstance(v, np.ndarray) else v.item() if isinstance(v, np.generic) else v)
        for k, v in item.items()
    }
