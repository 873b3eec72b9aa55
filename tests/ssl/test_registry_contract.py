"""Every registered strategy (built-in or from an installed plugin) takes a training step on real images.

Parametrised over the registry, timm style: the batch comes from PneumoniaMNIST through the strategy's own data
pipeline (:meth:`~monai_remedis.ssl.base.SSLStrategy.data_transform`) or, when it has none, the default one
(``num_views`` augmented views, :class:`~monai_remedis.data.MultiViewd`). Heads are kept small through whichever
of the usual size arguments the strategy accepts.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import pytest
import torch
from monai.data import list_data_collate
from monai.transforms import Compose, RandFlipd, RandGaussianNoised, ScaleIntensityRanged

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ssl_test_utils import TinyBackbone  # noqa: E402

from monai_remedis.data import EnsureImaged, MultiViewd, medmnist_datalist  # noqa: E402
from monai_remedis.plugins.manager import get_registries  # noqa: E402
from monai_remedis.ssl import create_strategy, list_strategies  # noqa: E402
from monai_remedis.ssl.factory import strategy_data_transform  # noqa: E402

SMALL = {"hidden_dim": 32, "projection_dim": 16, "queue_size": 16}
"""Size arguments passed to every strategy whose constructor takes them."""


def _small_kwargs(name: str) -> dict[str, int]:
    params = inspect.signature(get_registries()["strategy"].get(name).factory).parameters
    return {k: v for k, v in SMALL.items() if k in params}


@pytest.fixture(scope="module")
def items(pneumonia_npz: Path) -> list[dict]:
    return medmnist_datalist(pneumonia_npz, "train", limit=8)


@pytest.mark.parametrize("name", list_strategies())
def test_strategy_takes_a_training_step(name: str, items: list[dict]) -> None:
    torch.manual_seed(0)
    kwargs = _small_kwargs(name)
    strategy = create_strategy(name, backbone=TinyBackbone(32), **kwargs)
    load = Compose(
        [
            EnsureImaged(keys="image", channels=1, spatial_dims=2),
            ScaleIntensityRanged(keys="image", a_min=0, a_max=255, b_min=0.0, b_max=1.0, clip=True),
        ]
    )
    view = Compose([RandFlipd(keys="image", prob=0.5, spatial_axis=0), RandGaussianNoised(keys="image", std=0.05)])
    pipeline = strategy_data_transform(name, load, view, kwargs) or Compose(
        [load, MultiViewd(keys="image", view_transform=view, num_views=strategy.num_views)]
    )
    batch = list_data_collate([pipeline(dict(item)) for item in items])

    trainable = [p for p in strategy.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in trainable]
    optimizer = torch.optim.AdamW(trainable, lr=1e-3)
    out = strategy.training_step(batch)
    assert out["loss"].ndim == 0 and torch.isfinite(out["loss"])
    optimizer.zero_grad()
    out["loss"].backward()
    optimizer.step()
    strategy.after_step(0.0)
    assert any(not torch.equal(p, b) for p, b in zip(trainable, before, strict=True)), "no parameter was updated"
    assert strategy.transferable_state_dict().keys() == strategy.encoder.state_dict().keys()
