"""Models Genesis as a strategy: restores real images, learns in a short real run, and hands stage 3 its encoder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from monai.transforms import Compose, ScaleIntensityd

from monai_remedis.backbones import create_backbone
from monai_remedis.data import medmnist_datalist
from monai_remedis.models.skip_decoder import SkipDecoder
from monai_remedis.ssl import Genesis, create_strategy, list_strategies
from monai_remedis.ssl.factory import strategy_data_transform
from monai_remedis.stages import FinetuneStage, OptimConfig, RuntimeConfig, SSLStage

BACKBONES = [("bit_resnet18", 2, (28, 28)), ("resnet10_3d", 3, (28, 28, 28))]


@pytest.fixture(scope="module")
def xray_items(data_dir) -> list[dict]:
    """96 real PneumoniaMNIST training images (arrays, both labels)."""
    return medmnist_datalist(data_dir / "medmnist_pneumonia" / "pneumoniamnist.npz", "train", limit=96)


def _load() -> Compose:
    return Compose([ScaleIntensityd(keys="image", minv=0.0, maxv=1.0)])


def test_genesis_is_registered_and_builds_its_own_batches(xray_items) -> None:
    assert "genesis" in list_strategies()
    pipeline = strategy_data_transform("genesis", _load(), lambda d: pytest.fail("no contrastive views"), {})
    out = pipeline.set_random_state(0)(xray_items[0])
    assert set(out) >= {"image", "view_0"} and out["image"].shape == out["view_0"].shape == (1, 28, 28)
    assert float(out["image"].min()) >= 0.0 and float(out["image"].max()) <= 1.0
    off = strategy_data_transform("genesis", _load(), None, {"distortion": {"flip_prob": 0.0, "shuffle_prob": 0.0}})
    kept = off.set_random_state(0)(xray_items[0])
    assert torch.equal(kept["image"], _load()(xray_items[0])["image"])


@pytest.mark.parametrize("name, dims, size", BACKBONES)
def test_restoration_has_the_input_shape_and_the_encoder_is_the_backbone(name, dims, size) -> None:
    backbone = create_backbone(name, in_channels=1, spatial_dims=dims)
    strategy = create_strategy("genesis", backbone=backbone)
    x = torch.rand(2, 1, *size)
    restored = strategy.restore(x).detach()
    assert restored.shape == x.shape and float(restored.min()) >= 0.0 and float(restored.max()) <= 1.0
    out = strategy([x, x])
    out["loss"].backward()
    assert out["loss"].ndim == 0 and float(out["distortion_mse"]) == 0.0
    unused = [n for n, p in strategy.named_parameters() if p.grad is None]
    assert not unused, f"parameters without gradient break DDP: {unused}"  # the loss trains every encoder weight
    assert strategy.encoder is backbone
    assert strategy.transferable_state_dict().keys() == backbone.state_dict().keys()


def test_decoder_takes_every_encoder_stage() -> None:
    decoder = SkipDecoder(2, [64, 64, 128, 256, 512], out_channels=1)
    assert len(decoder.blocks) == 4
    with pytest.raises(ValueError, match="needs 4 entries"):
        SkipDecoder(2, [64, 64, 128, 256, 512], out_channels=1, decoder_channels=[32, 32])


def test_missing_keys_name_what_genesis_needs() -> None:
    strategy = Genesis(create_backbone("bit_resnet18", in_channels=1))
    with pytest.raises(KeyError, match="distorted input"):
        strategy.views({"view_0": torch.zeros(1), "view_1": torch.zeros(1)})


def test_restoration_loss_falls_and_the_encoder_loads_into_stage_3_bit_exactly(xray_items, tmp_path: Path) -> None:
    torch.manual_seed(0)
    result = SSLStage(
        xray_items,
        transform=None,
        backbone=create_backbone("bit_resnet18", in_channels=1),
        output_dir=tmp_path / "ssl",
        strategy="genesis",
        load_transform=_load(),
        view_transform=lambda d: d,
        optim=OptimConfig(max_epochs=3, batch_size=32, optimizer="adamw", learning_rate=3e-3, warmup_epochs=0),
        runtime=RuntimeConfig(log_every=0),
    ).run()
    history = json.loads(Path(result["history"]).read_text())
    assert history["loss"][-1] < 0.75 * history["loss"][0], history["loss"]
    # the network restores: its error ends below the error of the distorted input itself
    assert history["loss"][-1] < history["distortion_mse"][-1], history
    previews = sorted((Path(result["run_dir"]) / "previews").glob("epoch_*.png"))
    assert [p.name for p in previews] == ["epoch_001.png", "epoch_002.png", "epoch_003.png"]

    exported = torch.load(result["backbone"], weights_only=True)
    stage3 = FinetuneStage(
        backbone=create_backbone("bit_resnet18", in_channels=1),
        num_classes=2,
        train_datalist=xray_items,
        val_datalist=xray_items[:8],
        train_transform=_load(),
        val_transform=_load(),
        output_dir=tmp_path / "finetune",
        init_weights=result["backbone"],
    )
    loaded = stage3.build_model().backbone.state_dict()
    assert set(exported) == set(create_backbone("bit_resnet18", in_channels=1).state_dict())  # no decoder keys
    assert loaded.keys() == exported.keys()
    assert all(torch.equal(loaded[k], exported[k]) for k in exported)
    assert any(not torch.equal(v, torch.zeros_like(v)) for v in exported.values())


@pytest.mark.slow
def test_restoration_loss_falls_on_real_mri_crops(data_dir, tmp_path: Path) -> None:
    from monai.transforms import LoadImaged, RandSpatialCropd, ScaleIntensityRangePercentilesd

    load = Compose(
        [
            LoadImaged(keys="image", ensure_channel_first=True, image_only=True),
            ScaleIntensityRangePercentilesd(keys="image", lower=0.5, upper=99.5, b_min=0.0, b_max=1.0, clip=True),
            RandSpatialCropd(keys="image", roi_size=(24, 24, 16), random_size=False),
        ]
    )
    items = [{"image": str(data_dir / "nifti_samples" / "anatomical.nii")}] * 32
    torch.manual_seed(0)
    np.random.seed(0)
    result = SSLStage(
        items,
        transform=None,
        backbone=create_backbone("resnet10_3d", in_channels=1, spatial_dims=3),
        output_dir=tmp_path,
        strategy="genesis",
        load_transform=load,
        view_transform=lambda d: d,
        optim=OptimConfig(max_epochs=3, batch_size=8, optimizer="adamw", learning_rate=3e-3, warmup_epochs=0),
        runtime=RuntimeConfig(log_every=0),
    ).run()
    history = json.loads(Path(result["history"]).read_text())
    assert history["loss"][-1] < 0.6 * history["loss"][0], history["loss"]


@pytest.mark.parametrize("module", ["monai_remedis.ssl.genesis", "monai_remedis.data.genesis"])
def test_docstring_examples_run(module: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
