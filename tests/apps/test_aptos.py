"""APTOS 2019 datalist: duplicates removed as SOURCE.md says, image-level stratified splits tagged with 'split'."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from monai_remedis.apps.aptos import APTOS_SITE, aptos_datalist, aptos_splits, clean_duplicates
from monai_remedis.data.duplicates import content_hash

# pairs of pixel-identical images listed in aptos2019_dr/SOURCE.md (id_code: grade)
CONFLICTING = [("2df07eb5779f", "b91ef82e723a"), ("521d3e264d71", "fe0fc67c7980")]
CONSISTENT = [
    ("1e8a1fdee5b9", "a47432cd41e7"),
    ("7a3ea1779b13", "c027e5482e8c"),
    ("bb7e0a2544cd", "e76a9cbb2a8c"),
    ("ce887b196c23", "e7a7187066ad"),
]


@pytest.fixture(scope="module")
def aptos(data_dir: Path):
    return aptos_datalist(data_dir / "aptos2019_dr", return_cleaning=True)


def test_cleaning_matches_the_duplicates_listed_in_source_md(aptos) -> None:
    items, cleaning = aptos
    ids = {item["id"].split("/")[-1] for item in items}
    assert len(items) == 592
    for a, b in CONFLICTING:  # both dropped: the true grade is unknown
        assert a not in ids and b not in ids
    for a, b in CONSISTENT:  # one kept
        assert (a in ids) != (b in ids)
    assert sorted(tuple(x.split("/")[-1] for x, _ in g) for g in cleaning.conflicting) == CONFLICTING
    assert sorted(tuple(x.split("/")[-1] for x, _ in g) for g in cleaning.consistent) == CONSISTENT
    assert all(len({grade for _, grade in g}) == 2 for g in cleaning.conflicting)


def test_items_are_unique_rgb_grades_from_one_site(aptos) -> None:
    items, _ = aptos
    assert len({content_hash(item) for item in items}) == len(items) == len({item["id"] for item in items})
    assert {item["label"] for item in items} == {0, 1, 2, 3, 4}
    assert {item["site"] for item in items} == {APTOS_SITE}
    image = items[0]["image"]
    assert image.shape == (3, 28, 28) and image.dtype == np.uint8
    assert "split" not in items[0]


def test_png_source_gives_the_same_images_and_labels(aptos, data_dir: Path) -> None:
    npz_items, _ = aptos
    png_items = aptos_datalist(data_dir / "aptos2019_dr", source="png", split="ood")
    assert [(d["id"], d["label"]) for d in png_items] == [(d["id"], d["label"]) for d in npz_items]
    assert all(Path(d["image"]).is_file() and d["split"] == "ood" for d in png_items)


def test_uncleaned_set_has_all_600(data_dir: Path) -> None:
    items = aptos_datalist(data_dir / "aptos2019_dr", clean=False)
    assert len(items) == 600
    assert Counter(d["label"] for d in items) == {0: 150, 1: 120, 2: 150, 3: 90, 4: 90}


def test_clean_duplicates_rules_on_synthetic_items() -> None:
    a, b = np.zeros((1, 2, 2)), np.ones((1, 2, 2))
    items = [
        {"image": a, "label": 0, "id": "x2"},
        {"image": a, "label": 0, "id": "x1"},
        {"image": b, "label": 1, "id": "y1"},
        {"image": b, "label": 2, "id": "y2"},
        {"image": np.full((1, 2, 2), 2.0), "label": 3, "id": "z"},
    ]
    kept, cleaning = clean_duplicates(items)
    assert [d["id"] for d in kept] == ["x1", "z"]
    assert cleaning.dropped == ["x2", "y1", "y2"]


def test_splits_are_disjoint_stratified_tagged_and_deterministic(aptos) -> None:
    items, _ = aptos
    splits = aptos_splits(items)
    sizes = {k: len(v) for k, v in splits.items()}
    assert sum(sizes.values()) == 592 and sizes["test"] > sizes["val"] > 50
    ids = [{d["id"] for d in v} for v in splits.values()]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    for name, split in splits.items():
        assert {d["split"] for d in split} == {name}
        assert {d["label"] for d in split} == {0, 1, 2, 3, 4}
    assert [d["id"] for d in aptos_splits(items)["test"]] == [d["id"] for d in splits["test"]]
    assert [d["id"] for d in aptos_splits(items, seed=1)["test"]] != [d["id"] for d in splits["test"]]
    assert {k: len(v) for k, v in aptos_splits(items, limit=7).items()} == {"train": 7, "val": 7, "test": 7}
    assert "split" not in items[0]  # the input is not modified


def test_unknown_source_is_refused() -> None:
    with pytest.raises(ValueError, match="source must be one of"):
        aptos_datalist(source="jpeg")
