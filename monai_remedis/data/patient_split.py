"""Patient-level train/val/test splits.

Images of one patient (both breasts, follow-up scans, several views) are strongly correlated: putting them in
different splits inflates validation and test scores. :func:`patient_split` assigns whole patients to splits,
deterministically for a given seed, stratified by label where the data allow it. :func:`check_patient_disjoint`
verifies any set of splits. Dataset conventions for patient ids (mini-MIAS) live in :mod:`monai_remedis.apps`.
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

__all__ = [
    "DEFAULT_FRACTIONS",
    "add_patient_ids",
    "check_patient_disjoint",
    "patient_split",
]

DEFAULT_FRACTIONS: dict[str, float] = {"train": 0.7, "val": 0.15, "test": 0.15}


def __getattr__(name: str) -> Any:
    """Deprecated re-export: ``mini_mias_patient_id`` moved to :mod:`monai_remedis.apps.mini_mias`."""
    if name == "mini_mias_patient_id":
        from monai_remedis.apps.mini_mias import mini_mias_patient_id

        return mini_mias_patient_id
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def add_patient_ids(
    items: Sequence[Mapping[str, Any]],
    id_fn: Callable[[Any], Hashable],
    key: str = "image",
    patient_key: str = "patient_id",
) -> list[dict[str, Any]]:
    """Copies of the items with ``patient_key`` set to ``id_fn(item[key])``.

    Args:
        items: datalist.
        id_fn: e.g. :func:`monai_remedis.apps.mini_mias.mini_mias_patient_id`.
        key: item entry passed to ``id_fn`` (the image path by default).
        patient_key: where to store the id.

    Returns:
        new list of new dicts (the input is not modified).
    """
    return [{**item, patient_key: id_fn(item[key])} for item in items]


def _normalise_fractions(fractions: Mapping[str, float]) -> dict[str, float]:
    if not fractions or any(f < 0 for f in fractions.values()):
        raise ValueError(f"fractions must be non-negative and non-empty, got {dict(fractions)}")
    total = sum(fractions.values())
    if not math.isclose(total, 1.0, abs_tol=1e-6):
        raise ValueError(f"fractions must sum to 1, got {dict(fractions)} (sum {total})")
    return dict(fractions)


def _group_by_patient(items: Sequence[Mapping[str, Any]], patient_key: str) -> dict[Hashable, list[int]]:
    groups: dict[Hashable, list[int]] = defaultdict(list)
    for index, item in enumerate(items):
        if item.get(patient_key) is None:
            raise ValueError(f"item {index} has no {patient_key!r}; every item needs one for a patient-level split")
        groups[item[patient_key]].append(index)
    return groups


def _patient_stratum(indices: list[int], items: Sequence[Mapping[str, Any]], label_key: str | None) -> str:
    """The most common label of a patient's items (ties: smallest as text); ``""`` without labels."""
    if label_key is None:
        return ""
    labels = Counter(str(items[i][label_key]) for i in indices if items[i].get(label_key) is not None)
    if not labels:
        return ""
    best = max(labels.values())
    return min(label for label, count in labels.items() if count == best)


def _allocate(n: int, fractions: dict[str, float], assigned: Counter, total_so_far: int) -> dict[str, int]:
    """Split ``n`` patients of one stratum: floor of each share, leftovers to the splits furthest below target."""
    counts = {name: math.floor(n * f) for name, f in fractions.items()}
    for _ in range(n - sum(counts.values())):
        deficit = {name: total_so_far * f - assigned[name] - counts[name] for name, f in fractions.items() if f > 0}
        counts[max(deficit, key=lambda name: deficit[name])] += 1  # ties: first split in order
    return counts


def patient_split(
    items: Sequence[Mapping[str, Any]],
    fractions: Mapping[str, float] | None = None,
    seed: int = 0,
    patient_key: str = "patient_id",
    label_key: str | None = "label",
) -> dict[str, list[Any]]:
    """Assign whole patients to splits, stratified by each patient's majority label.

    Patients (not images) are counted against ``fractions``. Within each label stratum the patients are shuffled
    with ``random.Random(seed)`` after sorting by id, so the result depends only on the items' content and the
    seed, not on their order. Rounding leftovers go to whichever split is furthest below its overall target, so
    split sizes stay close to the fractions even with many small strata. A stratum with fewer patients than
    splits cannot be represented everywhere; its patients go where the totals need them.

    Args:
        items: datalist; every item needs ``patient_key``.
        fractions: split name -> fraction of patients, summing to 1 (default 0.7/0.15/0.15 train/val/test).
        seed: shuffling seed.
        patient_key: the patient id entry (use e.g. ``"lesion_id"`` where no patient id exists).
        label_key: label entry for stratification; ``None`` (or items without labels) for no stratification.

    Returns:
        split name -> items of that split, in their original order.

    Raises:
        ValueError: bad fractions, or an item without a patient id.
    """
    fractions = _normalise_fractions(fractions or DEFAULT_FRACTIONS)
    groups = _group_by_patient(items, patient_key)
    strata: dict[str, list[Hashable]] = defaultdict(list)
    for patient in sorted(groups, key=str):
        strata[_patient_stratum(groups[patient], items, label_key)].append(patient)
    rng = random.Random(seed)
    assigned: Counter = Counter()
    split_of_patient: dict[Hashable, str] = {}
    total_so_far = 0
    for stratum in sorted(strata):
        patients = strata[stratum]
        rng.shuffle(patients)
        total_so_far += len(patients)
        counts = _allocate(len(patients), fractions, assigned, total_so_far)
        start = 0
        for name, count in counts.items():
            split_of_patient.update((p, name) for p in patients[start : start + count])
            start += count
        assigned.update(counts)
    out: dict[str, list[Any]] = {name: [] for name in fractions}
    for item in items:
        out[split_of_patient[item[patient_key]]].append(item)
    return out


def check_patient_disjoint(splits: Mapping[str, Sequence[Mapping[str, Any]]], patient_key: str = "patient_id") -> None:
    """Raise if a patient has items in more than one split.

    Args:
        splits: split name -> datalist.
        patient_key: the patient id entry (items without it are ignored).

    Raises:
        ValueError: naming each shared patient and the splits and indices where it appears.
    """
    where: dict[Hashable, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for name, items in splits.items():
        for index, item in enumerate(items):
            if item.get(patient_key) is not None:
                where[item[patient_key]][name].append(index)
    shared = {p: dict(s) for p, s in where.items() if len(s) > 1}
    if shared:
        lines = [f"{p!r}: " + ", ".join(f"{n}{idx}" for n, idx in s.items()) for p, s in list(shared.items())[:20]]
        raise ValueError(f"{len(shared)} patient(s) appear in more than one split:\n  " + "\n  ".join(lines))
