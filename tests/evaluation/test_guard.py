"""The model-selection guard refuses validation data that is (or copies) test or OOD data."""

from __future__ import annotations

import numpy as np
import pytest

from monai_remedis.evaluation.guard import SelectionLeakError, check_selection_data, tag_split


def _item(i: int, **extra) -> dict:
    return {"image": np.full((1, 4, 4), i, dtype=np.uint8), "label": i % 2, "id": f"img{i}", **extra}


VAL = [_item(i) for i in range(5)]
TEST = [_item(i) for i in range(10, 15)]


def test_disjoint_sets_pass() -> None:
    check_selection_data(VAL, {"test": TEST, "ood": [_item(20)]})
    check_selection_data([], {"test": TEST})
    check_selection_data(VAL, {})


@pytest.mark.parametrize("tag", ["test", "ood", "TEST"])
def test_held_out_split_tag_is_refused(tag: str) -> None:
    with pytest.raises(SelectionLeakError, match=f"split='{tag}'"):
        check_selection_data([*VAL, _item(99, split=tag)], {})


def test_same_pixels_under_another_id_are_refused() -> None:
    copy = dict(VAL[2], id="renamed-copy")
    with pytest.raises(SelectionLeakError, match=r"pixel content.*renamed-copy.*held-out set 'ood'"):
        check_selection_data(VAL, {"test": TEST, "ood": [copy]})


def test_same_id_with_other_pixels_is_refused() -> None:
    shifted = dict(VAL[1], image=VAL[1]["image"] + 100)  # e.g. the OOD copy went through an acquisition shift
    with pytest.raises(SelectionLeakError, match="shares its id"):
        check_selection_data(VAL, {"test": [shifted]})


def test_same_patient_is_refused_per_site() -> None:
    val = [_item(1, patient_id="p7", site="a")]
    with pytest.raises(SelectionLeakError, match="patient p7 \\(site a\\)"):
        check_selection_data(val, {"test": [_item(50, patient_id="p7", site="a")]})
    check_selection_data(val, {"test": [_item(50, patient_id="p7", site="b")]})  # another hospital's p7
    check_selection_data(val, {"test": [_item(50, patient_id="p7", site="a")]}, check_patients=False)


def test_tag_split_copies_and_keeps_existing_tags() -> None:
    items = [_item(1), _item(2, split="val")]
    tagged = tag_split(items, "test")
    assert [d["split"] for d in tagged] == ["test", "val"] and "split" not in items[0]
    assert [d["split"] for d in tag_split(items, "ood", overwrite=True)] == ["ood", "ood"]
