"""Every registered strategy (built-in or from an installed plugin) takes a training step on real images.

Parametrised over the registry, timm style: the batch comes from MedMNIST (PneumoniaMNIST in 2D, AdrenalMNIST3D in
3D) through the strategy's own data pipeline (:meth:`~monai_remedis.ssl.base.SSLStrategy.data_transform`) or, when
it has none, the default one (``num_views`` augmented views, :class:`~monai_remedis.data.MultiViewd`). A strategy
that refuses a dimensionality when it is built (``ValueError``) is tried in the other; at least one must train.
Heads are kept small through whichever of the usual size arguments the strategy accepts.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from monai.data import list_data_collate
from monai.transforms import Compose, RandFlipd, RandGaussianNoised, Resized, ScaleIntensityRanged

from monai_remedis.backbones import create_backbone
from monai_remedis.data import EnsureImaged, MultiViewd, medmnist_datalist
from monai_remedis.plugins.manager import get_registries
from monai_remedis.ssl import SSLStrategy, create_strategy, list_strategies
from monai_remedis.ssl.factory import strategy_data_transform

SMALL = {"hidden_dim": 32, "projection_dim": 16, "queue_size": 16}
"""Size arguments passed to every strategy whose constructor takes them."""


class _Tiny(nn.Module):
    """A conv encoder ``(B, 1, *spatial) -> (B, 32)`` without normalisation layers, 2D or 3D."""

    def __init__(self, spatial_dims: int) -> None:
        super().__init__()
        conv, pool = (nn.Conv2d, nn.AdaptiveAvgPool2d) if spatial_dims == 2 else (nn.Conv3d, nn.AdaptiveAvgPool3d)
        self.spatial_dims, self.feature_dim = spatial_dims, 32
        self.net = nn.Sequential(conv(1, 8, 3, padding=1), nn.ReLU(), pool(2), nn.Flatten(), nn.LazyLinear(32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _small_kwargs(name: str) -> dict[str, int]:
    params = inspect.signature(get_registries()["strategy"].get(name).factory).parameters
    return {k: v for k, v in SMALL.items() if k in params}


@pytest.fixture(scope="module")
def items(data_dir: Path) -> dict[int, list[dict]]:
    return {
        2: medmnist_datalist(data_dir / "medmnist_pneumonia" / "pneumoniamnist.npz", "train", limit=8),
        3: medmnist_datalist(data_dir / "medmnist_adrenal3d" / "adrenalmnist3d.npz", "train", 3, limit=8),
    }


def _build(name: str, spatial_dims: int, kwargs: dict) -> SSLStrategy | None:
    """The strategy around a tiny backbone (its lazy layer materialised), or None when it refuses these dims."""
    factory = get_registries()["strategy"].get(name).factory
    if getattr(factory, "needs_feature_maps", False):  # reads stage/patch features: a real registered backbone
        small = "bit_resnet18" if spatial_dims == 2 else "resnet10_3d"
        try:
            backbone = create_backbone(small, in_channels=1, spatial_dims=spatial_dims)
        except (KeyError, ValueError):
            return None
    else:
        backbone = _Tiny(spatial_dims)
        backbone(torch.zeros(1, 1, *([8] * spatial_dims)))
    try:
        return create_strategy(name, backbone=backbone, **kwargs)
    except ValueError:
        return None


def _batch(name: str, strategy: SSLStrategy, spatial_dims: int, kwargs: dict, items: list[dict]) -> dict:
    load = Compose(
        [
            EnsureImaged(keys="image", channels=1, spatial_dims=spatial_dims),
            ScaleIntensityRanged(keys="image", a_min=0, a_max=255, b_min=0.0, b_max=1.0, clip=True),
            Resized(keys="image", spatial_size=[16] * spatial_dims),  # tiny: the contract, not the model, is tested
        ]
    )
    view = Compose([RandFlipd(keys="image", prob=0.5, spatial_axis=0), RandGaussianNoised(keys="image", std=0.05)])
    pipeline = strategy_data_transform(name, load, view, kwargs) or Compose(
        [load, MultiViewd(keys="image", view_transform=view, num_views=strategy.num_views)]
    )
    return list_data_collate([pipeline(dict(item)) for item in items])


@pytest.mark.parametrize("name", list_strategies())
def test_strategy_takes_a_training_step(name: str, items: dict[int, list[dict]]) -> None:
    kwargs = _small_kwargs(name)
    trained = []
    for spatial_dims in (2, 3):
        torch.manual_seed(0)
        strategy = _build(name, spatial_dims, kwargs)
        if strategy is None:
            continue
        try:
            batch = _batch(name, strategy, spatial_dims, kwargs, items[spatial_dims])
        except RuntimeError as exc:  # MONAI wraps it: the strategy's own views refuse these dims (PEAC is 2D only)
            if isinstance(exc.__cause__, ValueError):
                continue
            raise
        trainable = [p for p in strategy.parameters() if p.requires_grad]
        before = [p.detach().clone() for p in trainable]
        optimizer = torch.optim.AdamW(trainable, lr=1e-3)
        out = strategy.training_step(batch)
        assert out["loss"].ndim == 0 and torch.isfinite(out["loss"]), f"{name} {spatial_dims}D: {out['loss']}"
        optimizer.zero_grad()
        out["loss"].backward()
        optimizer.step()
        strategy.after_step(0.0)
        assert any(not torch.equal(p, b) for p, b in zip(trainable, before, strict=True)), "no parameter was updated"
        assert strategy.transferable_state_dict().keys() == strategy.encoder.state_dict().keys()
        trained.append(spatial_dims)
    assert trained, f"strategy '{name}' refused both 2D and 3D backbones"
