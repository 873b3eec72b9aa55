"""Bundle transforms: arrays and paths load alike; MultiViewd makes independent, reproducible views."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from monai.transforms import Compose, RandFlipd, RandScaleCropd, Resized

from monai_remedis.data import EnsureImaged, MultiViewd, medmnist_datalist


def _views(num_views: int = 2) -> MultiViewd:
    view = Compose(
        [
            RandScaleCropd("image", roi_scale=0.4, random_size=True),
            Resized("image", (28, 28)),
            RandFlipd("image", prob=0.5, spatial_axis=1),
        ]
    )
    return MultiViewd("image", view, num_views=num_views)


def test_array_items_become_float_tensors(pneumonia_npz: Path) -> None:
    item = medmnist_datalist(pneumonia_npz, "train", limit=1)[0]
    out = EnsureImaged("image")(item)
    assert out["image"].dtype == torch.float32 and out["image"].shape == (1, 28, 28)
    assert torch.equal(out["image"], torch.as_tensor(item["image"], dtype=torch.float32))


def test_dicom_path_items_load_through_the_medical_reader(data_dir: Path) -> None:
    out = EnsureImaged("image")({"image": str(data_dir / "dicom_samples" / "CT_small.dcm")})
    assert out["image"].shape[0] == 1 and out["image"].dtype == torch.float32


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="gone.png"):
        EnsureImaged("image")({"image": str(tmp_path / "gone.png"), "id": "x"})


def test_multiview_makes_distinct_views_reproducibly(pneumonia_npz: Path) -> None:
    item = EnsureImaged("image")(medmnist_datalist(pneumonia_npz, "train", limit=1)[0])
    t = _views(3)
    t.set_random_state(seed=0)
    a = t(item)
    t.set_random_state(seed=0)
    b = t(item)
    assert set(a) >= {"view_0", "view_1", "view_2"} and "image" not in a
    assert not torch.equal(torch.as_tensor(a["view_0"]), torch.as_tensor(a["view_1"]))
    for k in ("view_0", "view_1", "view_2"):
        assert torch.equal(torch.as_tensor(a[k]), torch.as_tensor(b[k]))


def test_multiview_rejects_mismatched_view_lists() -> None:
    with pytest.raises(ValueError, match="num_views"):
        MultiViewd("image", [lambda d: d], num_views=2)


def test_images_of_the_wrong_shape_are_refused_by_name(pneumonia_npz: Path, data_dir: Path) -> None:
    item = medmnist_datalist(pneumonia_npz, "train", limit=1)[0]
    assert EnsureImaged("image", channels=1, spatial_dims=2)(item)["image"].shape == (1, 28, 28)
    with pytest.raises(ValueError, match=r"item pneumoniamnist/train/0 .*\(1, 28, 28\).*3 channel"):
        EnsureImaged("image", channels=3)(item)
    with pytest.raises(ValueError, match=r"US1_UNCI.dcm.*\(3, 640, 480\)"):
        EnsureImaged("image", channels=1, spatial_dims=2)({"image": str(data_dir / "dicom_samples" / "US1_UNCI.dcm")})
