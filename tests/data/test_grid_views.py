"""Grid-matched crops: the cells paired by the overlap masks show the same pixels of a real chest X-ray."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser

from monai_remedis.configs import bundle_config_files, bundle_dir
from monai_remedis.data.grid_views import (
    MASK_KEY,
    OFFSET_KEY,
    ORIGIN_KEY,
    PAPER_GRID,
    GridMatchedViewsd,
    GridSpec,
    intensity_only,
    is_geometric,
    overlap_masks,
    permute_cells,
)


@pytest.fixture(scope="module")
def xrays(pneumonia_npz: Path) -> np.ndarray:
    """The first 8 PneumoniaMNIST training X-rays, (8, 28, 28) floats in [0, 1]."""
    with np.load(pneumonia_npz) as data:
        return data["train_images"][:8].astype(np.float32) / 255.0


def _cells(crop: torch.Tensor, cell: int) -> torch.Tensor:
    """(C, H, W) crop -> (N, C, cell, cell) cells in raster order."""
    c, h, w = crop.shape
    return crop.reshape(c, h // cell, cell, w // cell, cell).permute(1, 3, 0, 2, 4).reshape(-1, c, cell, cell)


@pytest.mark.parametrize("spec", [GridSpec(40, 4, 7), GridSpec(64, 8, 6), GridSpec(28, 4, 5, jitter=False)])
def test_matched_cells_show_the_same_pixels_of_a_real_xray(xrays: np.ndarray, spec: GridSpec) -> None:
    views = GridMatchedViewsd("image", spec).set_random_state(seed=0)
    for image in xrays:
        out = views({"image": torch.from_numpy(image)[None]})
        cells0, cells1 = _cells(out["view_0"], spec.cell_size), _cells(out["view_1"], spec.cell_size)
        m0, m1 = out[MASK_KEY.format(0)], out[MASK_KEY.format(1)]
        dy, dx = (out[OFFSET_KEY.format(0)] - out[OFFSET_KEY.format(1)]).abs().tolist()
        assert int(m0.sum()) == int(m1.sum()) == (spec.crop_cells - dy) * (spec.crop_cells - dx)
        assert torch.equal(cells0[m0], cells1[m1])  # exact: both crops cut from one resized image on one grid
        if dy or dx:  # pairing cells by raster position instead would compare different anatomy
            assert not torch.equal(cells0[m0], cells1[m0])


def test_crops_sit_on_the_grid_of_the_resized_image(xrays: np.ndarray) -> None:
    spec = GridSpec(40, 4, 7)
    out = GridMatchedViewsd("image", spec, delete_source=False).set_random_state(seed=3)({"image": xrays[0][None]})
    resized = GridMatchedViewsd("image", spec).resize(torch.from_numpy(xrays[0])[None])
    top, left = out[ORIGIN_KEY].tolist()
    for i in range(2):
        row, col = (out[OFFSET_KEY.format(i)] * spec.cell_size).tolist()
        window = resized[:, top + row : top + row + spec.crop_size, left + col : left + col + spec.crop_size]
        assert torch.equal(out[f"view_{i}"], window)


def test_permuted_cells_carry_the_pixels_of_their_source_cells(xrays: np.ndarray) -> None:
    crop = torch.from_numpy(xrays[2][None, None])  # (1, 1, 28, 28): 7 x 7 cells of 4 px
    perm = torch.randperm(49, generator=torch.Generator().manual_seed(0))[None]
    shuffled = permute_cells(crop, perm, cell_size=4)
    assert torch.equal(_cells(shuffled[0], 4), _cells(crop[0], 4)[perm[0]])
    assert torch.equal(permute_cells(shuffled, perm.argsort(dim=1), cell_size=4), crop)


def test_overlap_masks_pair_cells_in_raster_order() -> None:
    a, b = overlap_masks((0, 1), (2, 0), crop_cells=3)
    assert a.view(3, 3).tolist() == [[False] * 3, [False] * 3, [True, True, False]]
    assert b.view(3, 3).tolist() == [[False, True, True], [False] * 3, [False] * 3]
    none_a, none_b = overlap_masks((0, 0), (3, 3), crop_cells=3)
    assert not none_a.any() and not none_b.any()


def test_paper_geometry_and_bad_specs() -> None:
    assert (PAPER_GRID.grid_cells, PAPER_GRID.crop_size, PAPER_GRID.offsets) == (18, 448, 5)  # offsets 0-4
    with pytest.raises(ValueError, match="does not fit"):
        GridSpec(image_size=28, cell_size=4, crop_cells=7, jitter=True)


def test_offsets_and_origin_stay_in_range_and_are_reproducible(xrays: np.ndarray) -> None:
    spec = GridSpec(40, 4, 7, max_offset=1)
    draws = [GridMatchedViewsd("image", spec).set_random_state(seed=7)({"image": xrays[0][None]}) for _ in range(2)]
    assert torch.equal(draws[0]["view_0"], draws[1]["view_0"])
    views = GridMatchedViewsd("image", spec).set_random_state(seed=1)
    seen = {tuple(views({"image": xrays[0][None]})[OFFSET_KEY.format(0)].tolist()) for _ in range(40)}
    assert seen == {(0, 0), (0, 1), (1, 0), (1, 1)}


def test_volumes_are_refused() -> None:
    with pytest.raises(ValueError, match="2D"):
        GridMatchedViewsd("image")({"image": torch.zeros(1, 28, 28, 28)})


@pytest.mark.parametrize(("bundle", "channels"), [("cxr", 1), ("fundus", 3)])
def test_peac_builds_its_views_from_a_bundle_transforms(data_dir: Path, bundle: str, channels: int) -> None:
    from monai_remedis.ssl.peac import PEAC

    parser = ConfigParser()
    parser.read_config(bundle_config_files(bundle_dir(bundle), "ssl"))
    parser["limit"] = 4
    item = parser.get_parsed_content("checked_datalist")["train"][0]
    transform = PEAC.data_transform(
        parser.get_parsed_content("load_transform"), parser.get_parsed_content("ssl_view_transform"), {}
    )
    out = transform(item)
    assert out["view_0"].shape == out["view_1"].shape == (channels, 28, 28)
    assert out[MASK_KEY.format(0)].sum() == out[MASK_KEY.format(1)].sum() >= 25


def test_the_bundle_view_policy_keeps_only_its_intensity_transforms(xrays: np.ndarray) -> None:
    parser = ConfigParser()
    parser.read_config(bundle_config_files(bundle_dir("cxr"), "ssl"))
    policy = parser.get_parsed_content("ssl_view_transform")
    kept = intensity_only(policy)
    names = [type(t).__name__ for t in kept.flatten().transforms]
    assert not any(is_geometric(t) for t in kept.flatten().transforms)
    assert "RandScaleIntensityd" in names and "RandFlipd" not in names and "RandScaleCropd" not in names
    spec = GridSpec(40, 4, 7)
    out = GridMatchedViewsd("image", spec, view_transform=kept).set_random_state(seed=0)({"image": xrays[1][None]})
    assert out["view_0"].shape == (1, spec.crop_size, spec.crop_size)  # no resize or crop moved the grid
