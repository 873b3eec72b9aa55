"""Colour jitter and random grayscale for RGB images (MONAI has no hue/saturation jitter)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Compose, Randomizable, RandSpatialCropd
from PIL import Image

from monai_remedis.data.color import (
    Grayscale,
    Grayscaled,
    RandColorJitter,
    RandColorJitterd,
    RandGrayscale,
    RandGrayscaled,
)


@pytest.fixture(scope="module")
def lesion(data_dir: Path) -> torch.Tensor:
    """A real dermoscopy image as (3, H, W) float32 in [0, 1]."""
    path = sorted((data_dir / "ham10000_subset" / "images").glob("*.jpg"))[0]
    return torch.from_numpy(np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)


def test_saturation_and_hue_leave_gray_pixels_alone(lesion: torch.Tensor) -> None:
    gray = lesion.mean(0, keepdim=True).repeat(3, 1, 1)
    jitter = RandColorJitter(brightness=0, contrast=0, saturation=0.8, hue=0.3, prob=1.0).set_random_state(0)
    for _ in range(3):
        torch.testing.assert_close(jitter(gray), gray, atol=2e-3, rtol=0)
        changed = jitter(lesion)
        assert float((changed - lesion).abs().mean()) > 0.005  # but a coloured lesion changes


def test_brightness_only_scales_the_image(lesion: torch.Tensor) -> None:
    jitter = RandColorJitter(brightness=0.5, contrast=0, saturation=0, hue=0, prob=1.0).set_random_state(1)
    out = jitter(lesion)
    factor = jitter.factors["brightness"]
    assert 0.5 <= factor <= 1.5 and set(jitter.factors) == {"brightness"}
    torch.testing.assert_close(out, (lesion * factor).clamp(0, 1))


def test_dict_version_shares_one_draw_and_is_reproducible(lesion: torch.Tensor) -> None:
    data = {"image": MetaTensor(lesion.clone()), "copy": lesion.clone()}
    out = RandColorJitterd(["image", "copy"], prob=1.0).set_random_state(5)(data)
    again = RandColorJitterd(["image", "copy"], prob=1.0).set_random_state(5)(data)
    assert isinstance(out["image"], MetaTensor)
    torch.testing.assert_close(out["image"].as_tensor(), out["copy"])
    torch.testing.assert_close(out["copy"], again["copy"])
    assert 0.0 <= float(out["copy"].min()) and float(out["copy"].max()) <= 1.0
    assert RandColorJitterd("image", prob=0.0)(data)["image"] is data["image"]


def test_grayscale_uses_luminance_weights_on_three_equal_channels(lesion: torch.Tensor) -> None:
    out = RandGrayscaled("image", prob=1.0)({"image": lesion})["image"]
    expected = 0.299 * lesion[0] + 0.587 * lesion[1] + 0.114 * lesion[2]
    assert out.shape == lesion.shape
    for channel in out:
        torch.testing.assert_close(channel, expected, atol=2e-4, rtol=0)
    assert RandGrayscale(prob=0.0)(lesion) is lesion


def test_grayscaled_always_converts_and_leaves_the_other_transforms_random_draws_alone(lesion: torch.Tensor) -> None:
    out = Grayscaled("image")({"image": MetaTensor(lesion.clone())})["image"]
    assert isinstance(out, MetaTensor)
    torch.testing.assert_close(out.as_tensor(), RandGrayscale(prob=1.0)(lesion))
    assert not isinstance(Grayscaled("image"), Randomizable)

    def crops(*first: object) -> torch.Tensor:
        pipeline = Compose([*first, RandSpatialCropd("image", roi_size=(64, 64), random_size=False)])
        return pipeline.set_random_state(3)({"image": lesion})["image"]

    # a seeded pipeline crops the same place with or without the grey step in front of it
    torch.testing.assert_close(torch.as_tensor(crops(Grayscaled("image"))), Grayscale()(crops()))


def test_non_rgb_images_and_bad_strengths_are_refused() -> None:
    with pytest.raises(ValueError, match="3 channels"):
        RandColorJitter(prob=1.0)(torch.rand(1, 8, 8))
    with pytest.raises(ValueError, match="RGB"):
        RandGrayscale(prob=1.0)(torch.rand(1, 8, 8))
    with pytest.raises(ValueError, match="Grayscale needs a 2D RGB image"):
        Grayscale()(torch.rand(1, 8, 8))
    with pytest.raises(ValueError, match="hue <= 0.5"):
        RandColorJitter(hue=0.6)
    # brightness/contrast alone work on one channel (grayscale modalities)
    out = RandColorJitter(brightness=0.3, contrast=0.3, saturation=0, hue=0, prob=1.0)(torch.rand(1, 8, 8))
    assert out.shape == (1, 8, 8)
