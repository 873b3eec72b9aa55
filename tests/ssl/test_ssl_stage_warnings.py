"""The SSL stage warns (once, on rank 0) about a MoCo queue larger than the training set."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest
from monai.transforms import Compose, RandGaussianNoised

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ssl_test_utils import TinyBackbone  # noqa: E402

from monai_remedis.data import MultiViewd  # noqa: E402
from monai_remedis.stages import OptimConfig, RuntimeConfig, SSLStage  # noqa: E402

NUM_IMAGES = 16


def _stage(tmp_path: Path, queue_size: int) -> SSLStage:
    rng = np.random.default_rng(0)
    datalist = [{"image": rng.random((1, 8, 8), dtype=np.float32)} for _ in range(NUM_IMAGES)]
    views = MultiViewd("image", Compose([RandGaussianNoised("image", prob=1.0, std=0.1)]), num_views=2)
    return SSLStage(
        datalist,
        views,
        TinyBackbone(),
        tmp_path,
        strategy="moco_v2",
        strategy_kwargs={"queue_size": queue_size, "hidden_dim": 16, "projection_dim": 8},
        optim=OptimConfig(max_epochs=1, batch_size=8, optimizer="adamw", learning_rate=1e-3),
        runtime=RuntimeConfig(device="cpu", log_every=0),
    )


@pytest.mark.parametrize("queue_size, warned", [(64, True), (NUM_IMAGES, False), (8, False)])
def test_queue_larger_than_the_data_is_warned(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, queue_size: int, warned: bool
) -> None:
    with caplog.at_level(logging.WARNING, logger="monai_remedis"):
        _stage(tmp_path, queue_size).run()
    messages = [r.getMessage() for r in caplog.records if "queue_size" in r.getMessage()]
    assert len(messages) == int(warned), messages
    if warned:
        assert f"queue_size {queue_size} exceeds the {NUM_IMAGES} training images" in messages[0]
        assert "strategy_kwargs" in messages[0] and "'queue_size': 8" in messages[0]
