"""HED stain augmentation on real H&E tiles: identity is exact, the stains move the right way, and the random
transform is reproducible and shared across keys."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from monai.data import MetaTensor
from skimage.color import hed2rgb, hed_from_rgb, rgb2hed

from monai_remedis.data.stain import AdjustHEDd, RandHEDJitter, RandHEDJitterd, hed_adjust


@pytest.fixture(scope="module")
def tiles(data_dir: Path) -> list[np.ndarray]:
    """Three real H&E tiles as (3, H, W) float32 in [0, 1]."""
    paths = sorted((data_dir / "crc_he_tiles_tif" / "kather2016_150px").glob("0[124]_*/*.tif"))[::3]
    return [np.moveaxis(tifffile.imread(p), -1, 0).astype(np.float32) / 255.0 for p in paths]


def _stain_means(image: np.ndarray) -> np.ndarray:
    """Mean H, E, D concentration (optical density deconvolved with the Ruifrok-Johnston matrix)."""
    od = -np.log(np.clip(np.moveaxis(image, 0, -1).astype(np.float64), 1e-6, 1.0))
    return (od @ hed_from_rgb).reshape(-1, 3).mean(0)


def test_identity_adjustment_returns_the_tile_unlike_an_skimage_round_trip(tiles) -> None:
    for tile in tiles:
        np.testing.assert_allclose(hed_adjust(tile, (1, 1, 1), (0, 0, 0)), tile, atol=1e-5)
    # skimage clips negative concentrations, so rgb2hed -> hed2rgb alone changes some tiles a lot
    worst = max(
        np.abs(hed2rgb(rgb2hed(np.moveaxis(t, 0, -1))) - np.moveaxis(t, 0, -1)).max() for t in tiles
    )  # fmt: skip
    assert worst > 0.05


def test_scaling_a_stain_changes_that_stain_and_spares_the_others(tiles) -> None:
    tile = tiles[0]
    before = _stain_means(tile)
    after = _stain_means(hed_adjust(tile, (1.3, 1.0, 1.0), (0, 0, 0)))
    assert after[0] > before[0] * 1.15  # more haematoxylin (clipping at black loses a little)
    assert abs(after[1] - before[1]) < 0.1 * abs(before[1]) + 0.01


def test_output_keeps_type_dtype_shape_and_range(tiles) -> None:
    tile = tiles[1]
    for image in (tile, torch.from_numpy(tile), MetaTensor(torch.from_numpy(tile))):
        out = hed_adjust(image, (1.2, 0.8, 1.0), (0.1, -0.1, 0.0))
        assert type(out) is type(image) and out.shape == (3, *tile.shape[1:])
        assert str(out.dtype).endswith("float32") and 0.0 <= float(out.min()) and float(out.max()) <= 1.0


def test_random_jitter_is_reproducible_and_shared_across_keys(tiles) -> None:
    data = {"image": torch.from_numpy(tiles[0]), "copy": torch.from_numpy(tiles[0].copy())}
    first = RandHEDJitterd(["image", "copy"], sigma=0.2, bias=0.1, prob=1.0).set_random_state(7)(data)
    again = RandHEDJitterd(["image", "copy"], sigma=0.2, bias=0.1, prob=1.0).set_random_state(7)(data)
    assert torch.equal(first["image"], first["copy"]) and torch.equal(first["image"], again["image"])
    assert float((first["image"] - data["image"]).abs().mean()) > 0.005
    untouched = RandHEDJitterd("image", prob=0.0)(data)["image"]
    assert untouched is data["image"]


def test_fixed_adjustment_dict_transform_matches_the_function(tiles) -> None:
    out = AdjustHEDd("image", alpha=(1.25, 0.8, 1.0), beta=(0.05, -0.05, 0.0))({"image": tiles[2]})["image"]
    np.testing.assert_array_equal(out, hed_adjust(tiles[2], (1.25, 0.8, 1.0), (0.05, -0.05, 0.0)))


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="RGB image"):
        hed_adjust(np.zeros((1, 4, 4), np.float32), (1, 1, 1), (0, 0, 0))
    with pytest.raises(ValueError, match="one value per stain"):
        hed_adjust(np.zeros((3, 4, 4), np.float32), (1, 1), (0, 0, 0))
    with pytest.raises(ValueError, match=">= 0"):
        RandHEDJitter(sigma=-0.1)
