"""mini-MIAS abnormality classes as a multi-label datalist, on the real Info.txt and images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from monai_remedis.data.mias import (
    MIAS_ABNORMALITIES,
    mias_abnormality_datalist,
    mias_abnormality_splits,
    read_mias_info,
)


@pytest.fixture(scope="module")
def mias(data_dir: Path) -> Path:
    return data_dir / "mini_mias_abnormal"


def test_info_gives_each_reference_its_abnormality_classes(mias: Path) -> None:
    info = read_mias_info(mias / "Info.txt")
    assert info["mdb001"] == {"CIRC"} and info["mdb013"] == {"MISC"}
    assert info["mdb003"] == set()  # a normal mammogram has no abnormality


def test_datalist_labels_each_image_once_with_a_multi_hot_vector(mias: Path) -> None:
    items = mias_abnormality_datalist(mias / "images_512", mias / "Info.txt")
    refs = [item["id"] for item in items]
    assert len(refs) == len(set(refs)) == 114  # 115 files, mdb144 under both benign/ and malignant/
    labels = np.stack([item["label"] for item in items])
    assert labels.shape == (114, len(MIAS_ABNORMALITIES)) and labels.dtype == np.float32
    assert (labels.sum(axis=1) >= 1).all()  # every abnormal image has at least one class
    first = items[0]
    assert first["id"] == "mdb001" and first["patient_id"] == "mdb001-002"
    assert labels[0].tolist() == [float(c == "CIRC") for c in MIAS_ABNORMALITIES]


def test_splits_keep_both_breasts_of_a_woman_together(mias: Path) -> None:
    splits = mias_abnormality_splits(mias / "images_512", mias / "Info.txt", val=0.2, test=0.2)
    women = {name: {item["patient_id"] for item in items} for name, items in splits.items()}
    assert not women["training"] & women["validation"] and not women["training"] & women["test"]
    assert sum(len(items) for items in splits.values()) == 114


def test_unknown_class_is_refused_with_the_known_ones(mias: Path) -> None:
    with pytest.raises(ValueError, match="Known: ARCH, ASYM, CALC"):
        mias_abnormality_datalist(mias / "images_512", mias / "Info.txt", classes=["TUMOUR"])
