"""Models Genesis distortions on real images: each changes the input as the paper specifies, the target never."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from monai.transforms import LoadImage, ScaleIntensityRangePercentiles

from monai_remedis.data.genesis import (
    RandBezierIntensity,
    RandBezierIntensityd,
    RandGenesisPaint,
    RandGenesisPaintd,
    RandLocalPixelShuffle,
    RandLocalPixelShuffled,
    genesis_pipeline,
)


@pytest.fixture(scope="module")
def adrenal_volume(data_dir) -> torch.Tensor:
    """A real AdrenalMNIST3D volume, (1, 28, 28, 28) in [0, 1]."""
    with np.load(data_dir / "medmnist_adrenal3d" / "adrenalmnist3d.npz") as z:
        return torch.as_tensor(z["train_images"][0][None] / 255.0, dtype=torch.float32)


@pytest.fixture(scope="module")
def mri_volume(data_dir) -> torch.Tensor:
    """A real T1 brain MRI volume (1, 33, 41, 25), percentile-scaled to [0, 1]."""
    image = LoadImage(image_only=True, ensure_channel_first=True)(str(data_dir / "nifti_samples" / "anatomical.nii"))
    scaled = ScaleIntensityRangePercentiles(0.5, 99.5, 0.0, 1.0, clip=True)(image)
    return torch.as_tensor(np.asarray(scaled), dtype=torch.float32)


@pytest.fixture(scope="module")
def xray(data_dir) -> torch.Tensor:
    """A real PneumoniaMNIST chest X-ray, (1, 28, 28) in [0, 1]."""
    with np.load(data_dir / "medmnist_pneumonia" / "pneumoniamnist.npz") as z:
        return torch.as_tensor(z["train_images"][0][None] / 255.0, dtype=torch.float32)


@pytest.fixture(params=["adrenal_volume", "mri_volume", "xray"])
def image(request) -> torch.Tensor:
    return request.getfixturevalue(request.param)


def test_bezier_curve_is_monotone_and_maps_the_unit_interval_onto_itself(image: torch.Tensor) -> None:
    ramp = torch.linspace(0, 1, 101)[None]
    directions = set()
    for seed in range(10):
        transform = RandBezierIntensity(prob=1.0).set_random_state(seed)
        out = transform(image)
        curve = transform(ramp, randomize=False)[0]
        steps = torch.diff(curve)
        assert bool((steps >= -1e-6).all()) or bool((steps <= 1e-6).all()), f"seed {seed}: curve not monotone"
        assert {round(float(curve[0])), round(float(curve[-1]))} == {0, 1}
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
        order = torch.argsort(image.flatten())
        mapped = out.flatten()[order]
        assert bool((torch.diff(mapped) >= -1e-6).all()) or bool((torch.diff(mapped) <= 1e-6).all())
        increasing = float(curve[-1]) > float(curve[0])
        grey = bool(((image > 0.05) & (image < 0.95)).any())  # AdrenalMNIST3D volumes are binary masks
        if grey or not increasing:
            assert not torch.allclose(out, image, atol=1e-3)
        directions.add(increasing)
    assert directions == {True, False}, "the decreasing (inverted) curve should also be drawn"


def test_one_shuffled_window_is_a_permutation_and_nothing_else_moves(image: torch.Tensor) -> None:
    for seed in range(5):
        transform = RandLocalPixelShuffle(prob=1.0, num_blocks=1, max_block_fraction=0.3).set_random_state(seed)
        out = transform(image)
        (window,) = transform.windows
        index = (slice(None), *window)
        assert Counter(out[index].flatten().tolist()) == Counter(image[index].flatten().tolist())
        outside = torch.ones_like(image, dtype=torch.bool)
        outside[index] = False
        assert torch.equal(out[outside], image[outside])


def test_default_shuffling_moves_voxels_only_inside_windows_and_keeps_the_values(image: torch.Tensor) -> None:
    transform = RandLocalPixelShuffle(prob=1.0).set_random_state(0)
    out = transform(image)
    covered = torch.zeros_like(image, dtype=torch.bool)
    for window in transform.windows:
        assert all(w.stop - w.start <= max(1, round(0.1 * s)) for w, s in zip(window, image.shape[1:], strict=True))
        covered[(slice(None), *window)] = True
    assert torch.equal(out[~covered], image[~covered])
    assert torch.equal(out.flatten().sort().values, image.flatten().sort().values)
    assert not torch.equal(out, image)


def test_inpainting_changes_only_inside_the_boxes(image: torch.Tensor) -> None:
    for seed in range(5):
        transform = RandGenesisPaint(prob=1.0, inpaint_prob=1.0).set_random_state(seed)
        out = transform(image)
        inside = torch.as_tensor(transform.mask(image.shape[1:]))[None]
        assert transform.inpaint and 1 <= len(transform.boxes) <= 5
        assert torch.equal(out[~inside], image[~inside])
        assert not torch.equal(out[inside], image[inside])
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_outpainting_changes_only_outside_the_boxes(image: torch.Tensor) -> None:
    for seed in range(5):
        transform = RandGenesisPaint(prob=1.0, inpaint_prob=0.0).set_random_state(seed)
        out = transform(image)
        inside = torch.as_tensor(transform.mask(image.shape[1:]))[None]
        assert not transform.inpaint
        assert torch.equal(out[inside], image[inside])
        assert not torch.equal(out[~inside], image[~inside])


def test_painting_mode_follows_the_paper_split() -> None:
    transform = RandGenesisPaint(prob=1.0).set_random_state(0)
    modes = []
    for _ in range(400):
        transform.randomize((1, 16, 16))
        modes.append(transform.inpaint)
    assert 0.14 < np.mean(modes) < 0.26  # in-painting 20%, out-painting 80%


@pytest.mark.parametrize(
    "cls, kwargs",
    [
        (RandBezierIntensityd, {"prob": 1.0}),
        (RandLocalPixelShuffled, {"prob": 1.0}),
        (RandGenesisPaintd, {"prob": 1.0}),
    ],
)
def test_dictionary_forms_are_seeded_and_leave_other_keys_alone(cls, kwargs, adrenal_volume) -> None:
    first = cls(keys="view_0", **kwargs).set_random_state(3)({"image": adrenal_volume, "view_0": adrenal_volume})
    again = cls(keys="view_0", **kwargs).set_random_state(3)({"image": adrenal_volume, "view_0": adrenal_volume})
    other = cls(keys="view_0", **kwargs).set_random_state(4)({"image": adrenal_volume, "view_0": adrenal_volume})
    assert torch.equal(first["view_0"], again["view_0"]) and not torch.equal(first["view_0"], other["view_0"])
    assert first["image"] is adrenal_volume


def test_pipeline_target_is_the_original_and_flips_move_both(image: torch.Tensor) -> None:
    never_flip = genesis_pipeline(distortion={"flip_prob": 0.0, "shuffle_prob": 1.0, "nonlinear_prob": 1.0})
    out = never_flip.set_random_state(0)({"image": image})
    assert torch.equal(out["image"], image) and not torch.equal(out["view_0"], image)

    always_flip = genesis_pipeline(
        distortion={"flip_prob": 1.0, "shuffle_prob": 0.0, "nonlinear_prob": 0.0, "paint_prob": 0.0}
    )
    out = always_flip.set_random_state(0)({"image": image})
    flipped = [torch.flip(image, dims=(axis,)) for axis in range(1, image.ndim)]
    assert any(torch.equal(out["image"], f) for f in flipped)
    assert torch.equal(out["view_0"], out["image"])
