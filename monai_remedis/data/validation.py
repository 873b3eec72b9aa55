"""Input validation at the door: bit depth, non-finite pixels, labels and degenerate splits.

Each check names the file or the item it refuses and says what to do. The policies:

* **Bit depth.** The bundles scale intensities with ``ScaleIntensityRanged(0, 255)`` (8-bit display range). A PNG,
  TIFF, JPEG or PGM stored with more than 8 bits per sample (PIL mode ``I;16``, a ``uint16`` TIFF) is therefore
  rescaled to 0..255 by its bit depth when it is read (:func:`to_display_range`), so 16-bit exports of the same
  images give the same inputs as 8-bit ones instead of saturating. DICOM and NIfTI values are physical (HU, windowed
  or percentile-scaled by the bundle) and are never rescaled. A file whose values fit no bit depth up to 16 is
  refused, naming the file.
* **NaN / Inf.** Refused when the image is loaded (:func:`check_finite`), naming the file or item: one NaN voxel
  makes the loss NaN and exports a NaN model.
* **Labels.** Integer labels in ``[0, num_classes)`` (:func:`check_labels`); a CSV whose label column mixes integers
  with non-integer numbers (``1.0`` among ``0``/``1``) or with names is refused (:func:`check_label_strings`) rather
  than turned into an extra class.
* **Degenerate splits** (:func:`check_splits`): a training set with one class is refused (nothing to learn); a
  validation set with one class is refused (AUC is undefined, so selection would keep epoch 1); a validation set
  with fewer than :data:`MIN_VAL_PER_CLASS` items of some class is warned about (its AUC is too noisy to select on).
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

logger = logging.getLogger("monai_remedis")

DISPLAY_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".pgm", ".ppm", ".pnm", ".bmp")
"""File types whose integer values are display levels (rescaled by bit depth); DICOM/NIfTI are not."""
MIN_VAL_PER_CLASS = 5
"""Fewer validation items than this in some class: a warning that the validation AUC is too noisy to select on."""
_INT_RE = re.compile(r"-?\d+")
_NUMBER_RE = re.compile(r"-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


class InvalidInputError(ValueError):
    """An image, label or split refused at the door; the message names the file or item and what to do."""


def _describe(source: Any, item_id: Any = None) -> str:
    if isinstance(source, (str, Path)):
        return f"image '{source}'"
    return f"in-memory image of item {item_id if item_id is not None else '?'}"


def source_bit_depth(image: Any, source: Any) -> int | None:
    """Bits per sample of a display-format file (PNG/TIFF/JPEG/PGM), or None for other sources.

    Read from the PIL mode in the image's metadata (``I;16*`` = 16) or the array dtype (``uint16`` = 16); an
    integer image whose values exceed 255 counts as 16-bit.
    """
    if not isinstance(source, (str, Path)) or Path(source).suffix.lower() not in DISPLAY_SUFFIXES:
        return None
    mode = str(getattr(image, "meta", {}).get("mode", ""))
    if mode.startswith("I;16"):
        return 16
    dtype = image.dtype if hasattr(image, "dtype") else np.asarray(image).dtype
    if dtype in (torch.uint16, np.uint16):
        return 16
    if dtype in (torch.float16, torch.float32, torch.float64, np.float32, np.float64):
        return None
    values = torch.as_tensor(np.asarray(image)) if not isinstance(image, torch.Tensor) else image
    return 8 if values.numel() == 0 or float(values.max()) <= 255 else 16


def to_display_range(image: torch.Tensor, source: Any, bits: int | None) -> torch.Tensor:
    """Rescale a display-format image of ``bits`` > 8 to 0..255; refuse values beyond 16 bits.

    Raises:
        InvalidInputError: naming the file when its values exceed 65535 (no bit depth fits).
    """
    if bits is None or bits <= 8:
        return image
    high = float(image.max()) if image.numel() else 0.0
    if high > 2**16 - 1:
        raise InvalidInputError(
            f"{_describe(source)} holds values up to {high:g}, beyond 16 bits: the bundle's 0..255 intensity scaling "
            "cannot represent it. Convert it to 8 or 16 bits, or use a NIfTI/DICOM file with an explicit intensity "
            "normalisation in the bundle's load_transform."
        )
    return image * (255.0 / (2**bits - 1))


def check_finite(image: torch.Tensor, source: Any, item_id: Any = None) -> None:
    """Refuse an image with NaN or infinite values.

    Raises:
        InvalidInputError: naming the file (or item) and how many values are not finite.
    """
    if image.is_floating_point() and not bool(torch.isfinite(image).all()):
        bad = int((~torch.isfinite(image)).sum())
        raise InvalidInputError(
            f"{_describe(source, item_id)} has {bad} NaN/Inf value(s) of {image.numel()}: a single one makes the loss "
            "NaN. Fix or drop the file (e.g. replace NaN with the background value) and rerun."
        )


def check_label_strings(raw: Sequence[str], names: Sequence[Any]) -> None:
    """Refuse a label column that mixes integers with non-integer numbers or with class names.

    Args:
        raw: the label strings, stripped.
        names: per-item descriptions (id or path) used in the message.

    Raises:
        InvalidInputError: naming the first item whose label breaks the column's type.
    """
    ints = [bool(_INT_RE.fullmatch(v)) for v in raw]
    if all(ints) or not any(ints):
        numbers = [bool(_NUMBER_RE.fullmatch(v)) for v in raw]
        if not any(ints) and any(numbers):
            i = numbers.index(True)
            raise InvalidInputError(
                f"item {i} ({names[i]}): label '{raw[i]}' is a non-integer number; class labels must be integers "
                "0..C-1 or class names. Fix the label column."
            )
        return
    i = ints.index(False)
    kind = "a non-integer number" if _NUMBER_RE.fullmatch(raw[i]) else "a name"
    raise InvalidInputError(
        f"item {i} ({names[i]}): label '{raw[i]}' is {kind} among integer labels ({sum(ints)} of {len(raw)} are "
        "integers); it would become a class of its own. Fix the label column (or pass class names for every value)."
    )


def _item_name(item: Mapping[str, Any], index: int) -> str:
    image = item.get("image")
    where = item.get("id", image if isinstance(image, (str, Path)) else "?")
    return f"item {index} ({where})"


def check_labels(items: Sequence[Mapping[str, Any]], num_classes: int, split: str = "training") -> Counter:
    """Check that every item has an integer label in ``[0, num_classes)``; returns the class counts.

    Raises:
        InvalidInputError: naming the first offending item of ``split``.
    """
    counts: Counter = Counter()
    for i, item in enumerate(items):
        label = item.get("label")
        if isinstance(label, (torch.Tensor, np.ndarray)) and np.size(label) == 1:
            label = label.item()
        if isinstance(label, float) and label.is_integer():
            label = int(label)
        if isinstance(label, bool) or not isinstance(label, (int, np.integer)):
            raise InvalidInputError(
                f"{split} {_item_name(item, i)}: label {label!r} is not an integer class index. Labels must be "
                f"integers 0..{num_classes - 1}."
            )
        if not 0 <= int(label) < num_classes:
            raise InvalidInputError(
                f"{split} {_item_name(item, i)}: label {int(label)} is outside 0..{num_classes - 1} "
                f"(num_classes={num_classes}). Fix the datalist or set num_classes."
            )
        counts[int(label)] += 1
    return counts


def check_splits(
    train: Sequence[Mapping[str, Any]],
    val: Sequence[Mapping[str, Any]] | None,
    num_classes: int,
    min_val_per_class: int = MIN_VAL_PER_CLASS,
) -> None:
    """Validate labels and refuse (or warn about) degenerate training/validation splits, per the module policy.

    Raises:
        InvalidInputError: a label out of range, a one-class training set or a one-class validation set.
    """
    train_counts = check_labels(train, num_classes, "training")
    if len(train_counts) < 2:
        raise InvalidInputError(
            f"the training set has one class only ({dict(train_counts)} of num_classes={num_classes}): a classifier "
            "cannot learn from it. Check the label column, the label fraction and the split."
        )
    if not val:
        return
    val_counts = check_labels(val, num_classes, "validation")
    if len(val_counts) < 2:
        raise InvalidInputError(
            f"the validation set has one class only ({dict(val_counts)}): its AUC is undefined, so checkpoint "
            "selection would silently keep epoch 1. Give the validation split items of at least two classes."
        )
    small = {c: n for c, n in sorted(val_counts.items()) if n < min_val_per_class}
    missing = sorted(set(train_counts) - set(val_counts))
    if small or missing:
        logger.warning(
            "validation set is too small for a reliable AUC: class counts %s%s (fewer than %d per class); "
            "checkpoint selection on it is noisy.",
            dict(sorted(val_counts.items())),
            f", classes {missing} absent" if missing else "",
            min_val_per_class,
        )


def admit_image(loaded: Any, image: torch.Tensor, source: Any, item_id: Any = None) -> torch.Tensor:
    """The checks :class:`~monai_remedis.data.EnsureImaged` runs on every image: bit depth, then finiteness.

    Args:
        loaded: the image as read (keeps the file's dtype and PIL mode).
        image: ``loaded`` as a float tensor.
        source: the file path (or the in-memory array) it came from, for messages.
        item_id: the datalist item's id, for in-memory images.

    Returns:
        ``image``, rescaled to 0..255 when the file stores more than 8 bits per sample.
    """
    image = to_display_range(image, source, source_bit_depth(loaded, source))
    check_finite(image, source, item_id)
    return image
