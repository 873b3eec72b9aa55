"""What every bundle promises about its data: in-memory arrays and image files load as the same tensors in MONAI's
``(C, x, y[, z])`` layout, a horizontal flip mirrors left and right, and any datalist -- default or overridden --
goes through the pixel check, so an image in two splits is refused naming both entries; stage 1's grey option
(``natural_grayscale``) shows it the luminance of the crops it would have seen in colour."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from monai.transforms import Flipd, RandFlipd
from PIL import Image

from monai_remedis.data.builders import export_npz_splits, natural_image_npz_datalist, npz_splits
from monai_remedis.data.color import Grayscale
from monai_remedis.data.paths import PROJECT_ROOT

BUNDLES = sorted(p.parent.parent.name for p in (PROJECT_ROOT / "bundles").glob("*/configs/common.yaml"))
# spatial axes flipped by each 2D bundle's augmentations: axis 0 (x, columns) is the horizontal mirror
FLIP_AXES = {"cxr": {0}, "mammography": {0}, "dermatology": {0, 1}, "fundus": {0, 1}, "pathology": {0, 1}}


def _first_items(npz: Path, n: int = 3) -> dict[str, list[dict]]:
    return {"test": npz_splits(npz)["test"][:n]}


@pytest.mark.parametrize(
    ("bundle", "npz"),
    [("cxr", "medmnist_pneumonia/pneumoniamnist.npz"), ("fundus", "medmnist_retina/retinamnist.npz")],
)
def test_an_npz_image_and_its_exported_png_load_identically(
    bundle_config, data_dir: Path, tmp_path: Path, bundle: str, npz: str
) -> None:
    arrays = _first_items(data_dir / npz)
    files = export_npz_splits(arrays, tmp_path)  # the project's own npz export (`datalist npz --export-dir`)
    load = bundle_config(bundle).get_parsed_content("load_transform")
    with np.load(data_dir / npz) as raw:
        rows_first = raw["test_images"][:3]  # (N, H, W[, 3]) as stored
    for in_memory, on_disk, stored in zip(arrays["test"], files["test"], rows_first, strict=True):
        from_array, from_png = load(in_memory)["image"], load(on_disk)["image"]
        torch.testing.assert_close(from_array, from_png, atol=0, rtol=0)
        pixels = np.asarray(Image.open(on_disk["image"]))
        np.testing.assert_array_equal(pixels, stored)  # the PNG is the npz image, rows first
        # both are (C, x, y): transposing the two spatial axes gives the stored rows-first image back
        expected = stored[None] if stored.ndim == 2 else np.moveaxis(stored, -1, 0)
        np.testing.assert_allclose(from_array.numpy().transpose(0, 2, 1) * 255, expected, atol=1e-3)


def test_a_3d_npz_volume_and_its_nifti_export_load_identically(bundle_config, data_dir: Path, tmp_path: Path) -> None:
    """Volumes are (C, x, y, z) too: a (D, H, W) MedMNIST3D array becomes (W, H, D), slices last, as a multi-frame
    DICOM or a TIFF stack reads; a NIfTI file keeps its own voxel order (reorient with Orientationd if needed)."""
    npz = data_dir / "medmnist_adrenal3d" / "adrenalmnist3d.npz"
    arrays = _first_items(npz, 2)
    files = export_npz_splits(arrays, tmp_path)
    load = bundle_config("ct3d").get_parsed_content("load_transform")
    with np.load(npz) as raw:
        stored = raw["test_images"][:2]  # (N, D, H, W)
    for in_memory, on_disk, volume in zip(arrays["test"], files["test"], stored, strict=True):
        from_array, from_nifti = load(in_memory)["image"], load(on_disk)["image"]
        torch.testing.assert_close(from_array, from_nifti, atol=0, rtol=0)
        np.testing.assert_allclose(from_array[0].numpy() * 255, volume.transpose(2, 1, 0), atol=1e-3)


def _flip_axes(transform: object) -> set[int]:
    found: set[int] = set()
    for t in getattr(transform, "transforms", ()):
        if isinstance(t, RandFlipd):
            found.add(int(t.flipper.spatial_axis))
        found |= _flip_axes(t)
    return found


@pytest.mark.parametrize("bundle", sorted(FLIP_AXES))
def test_every_2d_bundle_flips_horizontally_on_spatial_axis_0(bundle_config, bundle: str) -> None:
    cfg = bundle_config(bundle, "pretrain")
    for name in ("ssl_view_transform", "train_transform"):
        assert _flip_axes(cfg.get_parsed_content(name)) == FLIP_AXES[bundle], f"{bundle}: {name}"
    assert _flip_axes(cfg.get_parsed_content("natural_train_transform")) == {0}  # CIFAR: left-right only


def test_natural_grayscale_shows_stage_1_the_luminance_of_the_same_augmented_images(
    bundle_config, data_dir: Path
) -> None:
    items = natural_image_npz_datalist(data_dir / "cifar10_subset" / "cifar10_subset.npz", "train", limit=4)
    for name in ("natural_train_transform", "natural_load_transform"):
        colour, grey = (
            bundle_config("cxr", "pretrain", natural_grayscale=flag).get_parsed_content(name) for flag in (False, True)
        )
        seen = [[torch.as_tensor(t.set_random_state(7)(dict(item))["image"]) for item in items] for t in (colour, grey)]
        assert max(float((image[0] - image[1]).abs().max()) for image in seen[0]) > 0.1, "CIFAR images are in colour"
        for in_colour, in_grey in zip(*seen, strict=True):
            assert in_grey.shape == (3, 32, 32)
            torch.testing.assert_close(in_grey, Grayscale()(in_colour), atol=1e-5, rtol=0)


def test_spatial_axis_0_is_the_left_right_mirror_of_a_file_and_of_an_array(
    bundle_config, data_dir: Path, tmp_path: Path
) -> None:
    arrays = _first_items(data_dir / "medmnist_pneumonia" / "pneumoniamnist.npz", 1)
    png = export_npz_splits(arrays, tmp_path)["test"][0]
    Image.fromarray(np.fliplr(np.asarray(Image.open(png["image"])))).save(tmp_path / "mirrored.png")
    load = bundle_config("cxr").get_parsed_content("load_transform")
    mirrored = load({"image": str(tmp_path / "mirrored.png")})["image"]
    for item in (png, arrays["test"][0]):
        flipped = Flipd("image", spatial_axis=0)(load(item))["image"]
        torch.testing.assert_close(torch.as_tensor(flipped), mirrored, atol=0, rtol=0)


@pytest.mark.parametrize("bundle", BUNDLES)
def test_a_training_image_in_the_test_split_is_refused_naming_both_entries(bundle_config, bundle: str) -> None:
    """Overriding a split (``--datalist#test ...``) does not skip the pixel check."""
    train = bundle_config(bundle, limit=3).get_parsed_content("checked_datalist")["train"]
    cfg = bundle_config(bundle, limit=3)
    cfg["datalist#test"] = [{**train[0], "id": "leaked-copy"}]
    with pytest.raises(RuntimeError) as err:
        cfg.get_parsed_content("checked_datalist")
    message = str(err.value.__cause__)
    assert f"train[0] ({train[0]['id']}) has the same pixels as test[0] (leaked-copy)" in message, message
