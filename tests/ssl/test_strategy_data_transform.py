"""A strategy can build its own SSL data pipeline from the bundle's load and view transforms."""

from __future__ import annotations

import numpy as np
import pytest

from monai_remedis.backbones import create_backbone
from monai_remedis.plugins.manager import get_registries
from monai_remedis.ssl.factory import strategy_data_transform
from monai_remedis.ssl.simclr import SimCLR
from monai_remedis.stages import SSLStage


class _OwnPipeline(SimCLR):
    @classmethod
    def data_transform(cls, load_transform, view_transform, strategy_kwargs):
        def pipeline(item):
            image = load_transform(item)["image"]
            return {"view_0": view_transform({"image": image})["image"], "view_1": image * strategy_kwargs["scale"]}

        return pipeline


@pytest.fixture
def own_pipeline_strategy():
    registry = get_registries()["strategy"]
    registry.register("own_pipeline_test", _OwnPipeline)
    yield "own_pipeline_test"
    registry._entries.pop("own_pipeline_test", None)


def test_default_strategies_keep_the_bundle_pipeline():
    assert strategy_data_transform("simclr", lambda d: d, lambda d: d, {}) is None


def test_ssl_stage_uses_the_pipeline_the_strategy_builds(own_pipeline_strategy, tmp_path):
    items = [{"image": np.full((1, 8, 8), 2.0, np.float32)} for _ in range(4)]
    stage = SSLStage(
        items,
        transform=lambda d: pytest.fail("the bundle's default pipeline must not be used"),
        backbone=create_backbone("bit_resnet18", in_channels=1),
        output_dir=tmp_path,
        strategy=own_pipeline_strategy,
        strategy_kwargs={"scale": 3.0},
        load_transform=lambda d: dict(d),
        view_transform=lambda d: {"image": d["image"] + 1.0},
    )
    out = stage.transform(items[0])
    assert float(out["view_0"].max()) == 3.0 and float(out["view_1"].max()) == 6.0
