"""Datalist sources on the real shared data: MedMNIST-style npz, CSV tables, class folders; the array layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from monai_remedis.data import folder_datalist, medmnist_datalist, natural_image_npz_datalist, table_datalist
from monai_remedis.data.layout import from_monai_layout, to_monai_layout


def test_medmnist_pneumonia_splits_match_the_official_counts(pneumonia_npz: Path) -> None:
    counts = {split: len(medmnist_datalist(pneumonia_npz, split)) for split in ("train", "val", "test")}
    assert counts == {"train": 4708, "val": 524, "test": 624}
    item = medmnist_datalist(pneumonia_npz, "test", limit=1)[0]
    assert item["image"].shape == (1, 28, 28) and item["image"].dtype == np.uint8
    assert isinstance(item["label"], int) and item["id"] == "pneumoniamnist/test/0"
    labels = [d["label"] for d in medmnist_datalist(pneumonia_npz, "test")]
    assert labels.count(0) == 234 and labels.count(1) == 390


def test_rgb_npz_is_channel_first(cifar_npz: Path, data_dir: Path) -> None:
    item = natural_image_npz_datalist(cifar_npz, "train", limit=1)[0]
    assert item["image"].shape == (3, 32, 32)
    retina = medmnist_datalist(data_dir / "medmnist_retina" / "retinamnist.npz", "train", limit=1)[0]
    assert retina["image"].shape == (3, 28, 28)


def test_3d_npz(data_dir: Path) -> None:
    item = medmnist_datalist(data_dir / "medmnist_adrenal3d" / "adrenalmnist3d.npz", "val", spatial_dims=3, limit=1)[0]
    assert item["image"].shape == (1, 28, 28, 28)


def test_unknown_split_and_missing_file_are_named(pneumonia_npz: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="split"):
        medmnist_datalist(pneumonia_npz, "training")
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        medmnist_datalist(tmp_path / "missing.npz")


def test_table_datalist_on_ham10000(data_dir: Path) -> None:
    root = data_dir / "ham10000_subset"
    items, names = table_datalist(
        root / "labels.csv",
        image_column="image_id",
        label_column="label",
        base_dir=root / "images",
        suffix=".jpg",
        patient_column="lesion_id",
    )
    assert len(items) == 1487 and names is None  # integer labels need no class names
    assert {d["label"] for d in items} == set(range(7))
    assert all(Path(d["image"]).is_file() for d in items[:20])
    assert items[0]["patient_id"].startswith("HAM_")


def test_table_errors_name_the_missing_column(tmp_path: Path) -> None:
    csv_path = tmp_path / "list.csv"
    csv_path.write_text("file,label\na.png,1\n")
    with pytest.raises(KeyError, match="no image column.*file, label"):
        table_datalist(csv_path)
    with pytest.raises(KeyError, match="'grade'.*file, label"):
        table_datalist(csv_path, image_column="file", label_column="grade")


def test_folder_datalist_labels_sorted_class_folders(tmp_path: Path) -> None:
    for cls in ("normal", "pneumonia"):
        (tmp_path / cls).mkdir()
        (tmp_path / cls / f"{cls}_1.png").write_bytes(b"")
    items, names = folder_datalist(tmp_path)
    assert names == ["normal", "pneumonia"]
    assert [(Path(d["image"]).parent.name, d["label"]) for d in items] == [("normal", 0), ("pneumonia", 1)]
    with pytest.raises(FileNotFoundError):
        folder_datalist(tmp_path / "none")


def test_row_major_batches_take_monai_file_layout_and_back() -> None:
    rng = np.random.default_rng(0)
    for batch, expected in (
        (rng.integers(0, 255, (2, 5, 7)), (2, 1, 7, 5)),  # (N, H, W) -> (N, 1, W, H)
        (rng.integers(0, 255, (2, 5, 7, 3)), (2, 3, 7, 5)),  # RGB
        (rng.integers(0, 255, (2, 4, 5, 7)), (2, 1, 7, 5, 4)),  # (N, D, H, W) -> (N, 1, W, H, D)
    ):
        spatial_dims = 3 if batch.ndim == 4 and batch.shape[-1] != 3 else 2
        out = to_monai_layout(batch, spatial_dims)
        assert out.shape == expected
        if spatial_dims == 2:  # pixel at row 4, column 6 sits at x = 6, y = 4
            assert out[0, 0, 6, 4] == (batch[0, 4, 6] if batch.ndim == 3 else batch[0, 4, 6, 0])
        back = from_monai_layout(out[0])
        np.testing.assert_array_equal(back.squeeze(-1) if back.shape[-1] == 1 else back, batch[0])
    with pytest.raises(ValueError, match="spatial_dims=2"):
        to_monai_layout(np.zeros((2, 3)), 2)


def test_natural_image_limit_keeps_every_class(cifar_npz: Path) -> None:
    """The CIFAR-10 subset is sorted by class: a limited stage-1 run must still see (and be scored on) all ten."""
    items = natural_image_npz_datalist(cifar_npz, "test", limit=25)
    labels = [item["label"] for item in items]
    assert len(items) == 25 and sorted(set(labels)) == list(range(10))
    assert max(labels.count(c) for c in range(10)) - min(labels.count(c) for c in range(10)) <= 1


def test_natural_image_limit_takes_the_classes_in_turn(cifar_npz: Path) -> None:
    """The head interleaves the classes (class of item i is i mod 10 here), as stage 1 has always drawn it."""
    labels = [item["label"] for item in natural_image_npz_datalist(cifar_npz, "train", limit=20)]
    assert labels == [*range(10), *range(10)]
