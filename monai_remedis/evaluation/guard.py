"""Refuse model selection on held-out data: validation items must not be test or out-of-distribution items.

Early stopping and checkpoint selection look at the validation set. If any validation image is also in the test
set or in an OOD set, the reported test/OOD numbers are optimistically biased. :func:`check_selection_data`
compares the validation datalist with every held-out datalist on four keys, and refuses on the first overlap:

1. a ``split`` tag of ``test`` or ``ood`` on a validation item (the tag set where datalists are built);
2. the same pixel content (:func:`monai_remedis.data.duplicates.content_hash`): the same image under another name;
3. the same item ``id`` (the same source record, even if a transform or a re-encode changed its pixels);
4. the same patient (``patient_id``, qualified by ``site`` when present): another image of a held-out patient.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from monai_remedis.data.duplicates import content_hash, describe_item

__all__ = ["HELD_OUT_SPLITS", "SelectionLeakError", "check_selection_data", "tag_split"]

HELD_OUT_SPLITS = ("test", "ood")
"""``split`` tags that must never drive model selection (also used by ``stages.supervised``)."""


class SelectionLeakError(ValueError):
    """Validation data overlaps a held-out (test or OOD) set."""


def tag_split(datalist: Sequence[Mapping[str, Any]], split: str, overwrite: bool = False) -> list[dict[str, Any]]:
    """Shallow copies of the items with ``split`` set (kept when already present, unless ``overwrite``).

    Args:
        datalist: items.
        split: the tag, e.g. ``"test"`` or ``"ood"``.
        overwrite: replace an existing tag.

    Returns:
        the tagged copies (the input items are not modified).
    """
    return [dict(item, split=split) if overwrite or "split" not in item else dict(item) for item in datalist]


def _patient(item: Mapping[str, Any]) -> tuple[str, str] | None:
    pid = item.get("patient_id")
    return None if pid in (None, "") else (str(item.get("site", "")), str(pid))


def check_selection_data(
    val_datalist: Sequence[Mapping[str, Any]],
    held_out: Mapping[str, Sequence[Mapping[str, Any]]],
    hash_fn: Callable[[Any], str] | None = None,
    check_patients: bool = True,
) -> None:
    """Raise when a validation item is (or shares its image, id or patient with) a test or OOD item.

    Args:
        val_datalist: the items used for early stopping / checkpoint or hyper-parameter selection.
        held_out: set name -> items of each test and OOD set.
        hash_fn: item -> pixel-content hash; default :func:`~monai_remedis.data.duplicates.content_hash`.
        check_patients: also refuse a patient (``patient_id``, per ``site``) present in both.

    Raises:
        SelectionLeakError: naming the validation item, the held-out set and item, and what they share.
    """
    hash_fn = hash_fn or content_hash
    for i, item in enumerate(val_datalist):
        tag = str(item.get("split", "")).lower()
        if tag in HELD_OUT_SPLITS:
            raise SelectionLeakError(
                f"validation item {i} ({describe_item(item)}) is tagged split='{item['split']}': test and OOD data "
                "must not be used for early stopping or checkpoint selection. Pass a validation split instead."
            )
    if not val_datalist or not held_out:
        return
    val_hashes = {hash_fn(item): i for i, item in enumerate(val_datalist)}
    val_ids = {str(item["id"]): i for i, item in enumerate(val_datalist) if item.get("id") is not None}
    val_patients = {p: i for i, item in enumerate(val_datalist) if (p := _patient(item)) is not None}
    for name, items in held_out.items():
        for j, other in enumerate(items):
            shared = None
            if other.get("id") is not None and str(other["id"]) in val_ids:
                shared, i = "id", val_ids[str(other["id"])]
            elif check_patients and (p := _patient(other)) is not None and p in val_patients:
                shared, i = f"patient {p[1]}" + (f" (site {p[0]})" if p[0] else ""), val_patients[p]
            elif (digest := hash_fn(other)) in val_hashes:
                shared, i = "pixel content", val_hashes[digest]
            if shared is not None:
                raise SelectionLeakError(
                    f"validation item {i} ({describe_item(val_datalist[i])}) shares its {shared} with item {j} "
                    f"({describe_item(other)}) of held-out set '{name}': model selection would see test/OOD data. "
                    "Use a validation split disjoint from every test and OOD set "
                    "(monai_remedis.data.duplicates.drop_cross_split_duplicates can remove the copies)."
                )
