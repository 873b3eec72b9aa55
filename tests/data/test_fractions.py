"""Label fractions: stratified, deterministic per seed, nested across fractions."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from monai_remedis.data import label_fraction, medmnist_datalist


@pytest.fixture(scope="module")
def train(pneumonia_npz: Path) -> list[dict]:
    return medmnist_datalist(pneumonia_npz, "train")


def test_fraction_is_stratified(train: list[dict]) -> None:
    full = Counter(d["label"] for d in train)
    subset = Counter(d["label"] for d in label_fraction(train, 0.1, seed=0))
    for label, n in full.items():
        assert abs(subset[label] - 0.1 * n) <= 1


def test_fraction_is_deterministic_and_seed_dependent(train: list[dict]) -> None:
    ids = lambda items: [d["id"] for d in items]  # noqa: E731
    assert ids(label_fraction(train, 0.05, seed=1)) == ids(label_fraction(train, 0.05, seed=1))
    assert ids(label_fraction(train, 0.05, seed=1)) != ids(label_fraction(train, 0.05, seed=2))


def test_smaller_fraction_is_subset_of_larger(train: list[dict]) -> None:
    small = {d["id"] for d in label_fraction(train, 0.01, seed=3)}
    large = {d["id"] for d in label_fraction(train, 0.1, seed=3)}
    assert small < large


def test_every_class_kept_and_bad_inputs_refused(train: list[dict]) -> None:
    tiny = label_fraction(train, 0.0001, seed=0)
    assert {d["label"] for d in tiny} == {0, 1}
    with pytest.raises(ValueError, match="fraction"):
        label_fraction(train, 0.0)
    with pytest.raises(ValueError, match="item 0"):
        label_fraction([{"image": "a.png"}], 0.5)
