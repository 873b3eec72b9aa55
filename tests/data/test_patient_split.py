"""Patient-level splits, with mini-MIAS left/right pairs as the real case."""

from __future__ import annotations

import csv
import os
import random
from collections import Counter
from pathlib import Path

import pytest

from monai_remedis.apps.mini_mias import mini_mias_patient_id
from monai_remedis.data.duplicates import check_disjoint_splits
from monai_remedis.data.patient_split import add_patient_ids, check_patient_disjoint, patient_split

DATA = Path(os.environ.get("REMEDIS_DATA", Path(__file__).resolve().parents[2] / ".." / "shared" / "data"))
MIAS = DATA / "mini_mias_abnormal"

needs_mias = pytest.mark.skipif(not (MIAS / "labels.csv").is_file(), reason=f"{MIAS} not found")


def _mias_items() -> list[dict]:
    """One item per labels.csv row (mdb144 is filed under both benign and malignant)."""
    with open(MIAS / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    items = [
        {"image": str(MIAS / "images_512" / r["label"] / f"{r['ref']}.png"), "label": r["label"], "id": r["ref"]}
        for r in rows
    ]
    return add_patient_ids(items, mini_mias_patient_id)


def _split_of(splits: dict[str, list[dict]]) -> dict[str, set[str]]:
    """image path -> names of the splits holding it."""
    where: dict[str, set[str]] = {}
    for name, items in splits.items():
        for item in items:
            where.setdefault(item["image"], set()).add(name)
    return where


@needs_mias
def test_mini_mias_split_keeps_both_breasts_of_a_woman_together():
    items = _mias_items()
    assert len(items) == 115 and all((Path(i["image"])).is_file() for i in items)
    patients = Counter(i["patient_id"] for i in items)
    assert len(patients) == 107  # 7 women with both breasts abnormal, mdb144 listed twice
    assert patients["mdb001-002"] == 2 and patients["mdb143-144"] == 2

    splits = patient_split(items, seed=0)
    check_patient_disjoint(splits)
    assert sorted(i["id"] for s in splits.values() for i in s) == sorted(i["id"] for i in items)  # each once
    where = _split_of(splits)
    for left, right in (("benign/mdb001", "benign/mdb002"), ("benign/mdb091", "malignant/mdb092")):
        path = str(MIAS / "images_512" / "{}.png")
        assert where[path.format(left)] == where[path.format(right)]
    check_disjoint_splits(splits)  # mdb144's two copies share a patient, so no pixel leak either

    n_patients = {name: len({i["patient_id"] for i in s}) for name, s in splits.items()}
    assert abs(n_patients["train"] - 0.7 * 107) <= 2 and abs(n_patients["val"] - 0.15 * 107) <= 2
    overall = sum(i["label"] == "malignant" for i in items) / len(items)
    for s in splits.values():
        assert abs(sum(i["label"] == "malignant" for i in s) / len(s) - overall) < 0.1  # stratified


@needs_mias
def test_split_is_deterministic_order_independent_and_seeded():
    items = _mias_items()
    first = patient_split(items, seed=3)
    shuffled = items[:]
    random.Random(1).shuffle(shuffled)
    again = patient_split(shuffled, seed=3)
    assert {k: {i["id"] for i in v} for k, v in first.items()} == {k: {i["id"] for i in v} for k, v in again.items()}
    other = patient_split(items, seed=4)
    assert {i["id"] for i in other["test"]} != {i["id"] for i in first["test"]}
    assert [i["id"] for i in first["train"]] == [i["id"] for i in items if i in first["train"]]  # original order


def test_stratification_gives_each_split_its_share_of_each_label():
    items = [{"patient_id": f"p{p}", "label": int(p < 20), "id": f"p{p}/{v}"} for p in range(100) for v in range(2)]
    splits = patient_split(items, {"train": 0.6, "val": 0.2, "test": 0.2}, seed=0)
    check_patient_disjoint(splits)
    positives = {name: len({i["patient_id"] for i in s if i["label"] == 1}) for name, s in splits.items()}
    negatives = {name: len({i["patient_id"] for i in s if i["label"] == 0}) for name, s in splits.items()}
    assert positives == {"train": 12, "val": 4, "test": 4}
    assert negatives == {"train": 48, "val": 16, "test": 16}


def test_rounding_leftovers_keep_overall_sizes_on_target():
    # 10 strata of 3 patients: per-stratum rounding alone would put 20-30 patients in train
    items = [{"patient_id": f"{c}-{p}", "label": c} for c in range(10) for p in range(3)]
    splits = patient_split(items, {"train": 0.7, "val": 0.15, "test": 0.15}, seed=0)
    sizes = {name: len(s) for name, s in splits.items()}
    assert sizes["train"] == 21 and sorted([sizes["val"], sizes["test"]]) == [4, 5]


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="item 1 has no 'patient_id'"):
        patient_split([{"patient_id": "a"}, {"label": 0}])
    with pytest.raises(ValueError, match="sum to 1"):
        patient_split([{"patient_id": "a"}], {"train": 0.8, "test": 0.3})


def test_check_patient_disjoint_names_the_shared_patient():
    splits = {
        "train": [{"patient_id": "p1"}, {"patient_id": "p2"}],
        "test": [{"patient_id": "p3"}, {"patient_id": "p2"}],
    }
    with pytest.raises(ValueError, match=r"'p2': train\[1\], test\[1\]"):
        check_patient_disjoint(splits)
    check_patient_disjoint({"train": splits["train"][:1], "test": splits["test"]})
