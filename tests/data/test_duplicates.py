"""Cross-split duplicate detection on real data (PneumoniaMNIST, mini-MIAS, DICOM)."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import pydicom
import pytest

from monai_remedis.data.duplicates import (
    array_hash,
    check_disjoint_splits,
    content_hash,
    drop_cross_split_duplicates,
    find_cross_split_duplicates,
)
from monai_remedis.data.readers import read_image

DATA = Path(os.environ.get("REMEDIS_DATA", Path(__file__).resolve().parents[2] / ".." / "shared" / "data"))
PNEUMONIA = DATA / "medmnist_pneumonia" / "pneumoniamnist.npz"
MIAS = DATA / "mini_mias_abnormal" / "images_512"
DICOM = DATA / "dicom_samples"

# val index -> train indices with byte-identical images (SOURCE.md: 8 train/val duplicates; found by hashing)
PNEUMONIA_VAL_IN_TRAIN = {
    61: {2041},
    105: {4193},
    172: {289, 3170},
    236: {662},
    244: {4036},
    253: {1440, 3874},
    302: {3130},
    473: {1834},
}

needs_pneumonia = pytest.mark.skipif(not PNEUMONIA.is_file(), reason=f"{PNEUMONIA} not found")


@functools.cache
def _pneumonia_splits() -> dict[str, list[dict]]:
    splits = {}
    with np.load(PNEUMONIA) as npz:
        for split in ("train", "val", "test"):
            images, labels = npz[f"{split}_images"], npz[f"{split}_labels"]
            splits[split] = [
                {"image": images[i][None], "label": int(labels[i, 0]), "id": f"pneumoniamnist/{split}/{i}"}
                for i in range(len(images))
            ]
    return splits


@needs_pneumonia
def test_pneumoniamnist_has_exactly_the_8_known_train_val_duplicates():
    found = find_cross_split_duplicates(_pneumonia_splits())
    assert len(found) == 8
    assert {d.index for d in found} == set(PNEUMONIA_VAL_IN_TRAIN)
    for d in found:
        assert (d.split, d.first_split) == ("val", "train")
        assert d.first_index == min(PNEUMONIA_VAL_IN_TRAIN[d.index])  # paired with the first copy in train
        assert d.id == f"pneumoniamnist/val/{d.index}"


@needs_pneumonia
def test_check_disjoint_splits_names_both_entries():
    with pytest.raises(ValueError) as excinfo:
        check_disjoint_splits(_pneumonia_splits())
    message = str(excinfo.value)
    assert message.startswith("8 image(s)")
    assert "val[61] (pneumoniamnist/val/61)" in message and "train[2041] (pneumoniamnist/train/2041)" in message
    assert "val[473]" in message and "train[1834]" in message


@needs_pneumonia
def test_duplicates_within_one_split_are_not_leakage():
    train = _pneumonia_splits()["train"]
    check_disjoint_splits({"train": train})  # 18 within-train duplicates: allowed
    assert len({content_hash(item) for item in train}) == len(train) - 18


@needs_pneumonia
def test_drop_cross_split_duplicates_removes_the_later_copies_only():
    splits = _pneumonia_splits()
    cleaned, removed = drop_cross_split_duplicates(splits)
    assert [len(cleaned[s]) for s in ("train", "val", "test")] == [4708, 524 - 8, 624]
    assert {d.index for d in removed} == set(PNEUMONIA_VAL_IN_TRAIN)
    kept_val_ids = {item["id"] for item in cleaned["val"]}
    assert not any(f"pneumoniamnist/val/{i}" in kept_val_ids for i in PNEUMONIA_VAL_IN_TRAIN)
    check_disjoint_splits(cleaned)  # no longer raises
    assert len(splits["val"]) == 524  # input untouched


def test_priority_follows_split_order():
    a, b = np.arange(16).reshape(4, 4), np.ones((4, 4))
    splits = {"test": [{"image": a, "id": "t0"}], "train": [{"image": b, "id": "x0"}, {"image": a.copy(), "id": "x1"}]}
    cleaned, removed = drop_cross_split_duplicates(splits)
    assert [item["id"] for item in cleaned["train"]] == ["x0"] and len(cleaned["test"]) == 1
    assert str(removed[0]) == "train[1] (x1) has the same pixels as test[0] (t0)"


def test_array_hash_compares_values_and_shape_not_dtype_or_layout():
    img = np.random.default_rng(0).integers(0, 256, size=(1, 28, 28), dtype=np.uint8)
    assert array_hash(img) == array_hash(img.astype(np.float32)) == array_hash(np.asfortranarray(img))
    assert array_hash(img) != array_hash(img.reshape(1, 14, 56))
    assert array_hash(img) != array_hash(np.swapaxes(img, 1, 2))
    changed = img.copy()
    changed[0, 5, 5] ^= 1
    assert array_hash(img) != array_hash(changed)


@pytest.mark.skipif(not MIAS.is_dir(), reason=f"{MIAS} not found")
def test_mini_mias_image_filed_under_both_labels_is_caught_by_path():
    benign, malignant = MIAS / "benign" / "mdb144.png", MIAS / "malignant" / "mdb144.png"
    assert content_hash({"image": str(benign)}) == content_hash({"image": str(malignant)})
    assert content_hash({"image": str(benign)}) != content_hash({"image": str(MIAS / "benign" / "mdb001.png")})
    assert content_hash(str(benign)) == array_hash(read_image(benign)[0])  # a path hashes its decoded pixels
    splits = {
        "train": [{"image": str(MIAS / "benign" / "mdb001.png")}, {"image": str(benign)}],
        "test": [{"image": str(malignant)}],
    }
    with pytest.raises(ValueError, match=r"test\[0\] \(.*malignant/mdb144.png\).*train\[1\] \(.*benign/mdb144.png\)"):
        check_disjoint_splits(splits)


@pytest.mark.skipif(not DICOM.is_dir(), reason=f"{DICOM} not found")
def test_dicom_copy_with_other_header_has_the_same_content_hash(tmp_path):
    ds = pydicom.dcmread(DICOM / "CT_small.dcm")
    ds.PatientName = "Someone^Else"
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    copy = tmp_path / "renamed_copy.dcm"
    ds.save_as(copy)
    original = DICOM / "CT_small.dcm"
    assert copy.read_bytes() != original.read_bytes()
    assert content_hash(str(copy)) == content_hash(str(original))
    assert content_hash(str(original)) != content_hash(str(DICOM / "MR_small.dcm"))
