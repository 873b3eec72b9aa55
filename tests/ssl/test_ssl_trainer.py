"""SSLTrainer's side of the strategy contract: ``after_step`` under ``no_grad``; one warning when collapse shows."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ssl_test_utils import TinyBackbone, make_views  # noqa: E402

from monai_remedis.engines.ssl_trainer import SSLTrainer  # noqa: E402
from monai_remedis.ssl import SimCLR  # noqa: E402


class _InPlaceAfterStep(SimCLR):
    """A plugin-style strategy whose ``after_step`` updates a trainable parameter in place, undecorated."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.grad_enabled: list[bool] = []

    def after_step(self, progress: float) -> None:  # no @torch.no_grad(): docs/plugins.md says the engine provides it
        self.grad_enabled.append(torch.is_grad_enabled())
        self.backbone.net[0].weight.mul_(0.5)


def _loader(steps: int = 2) -> list[dict[str, torch.Tensor]]:
    return [{"view_0": v0, "view_1": v1} for v0, v1 in (make_views(6, seed=s) for s in range(steps))]


def test_after_step_runs_under_no_grad() -> None:
    """An in-place update of a leaf that requires grad raises unless the trainer disables grad around after_step."""
    torch.manual_seed(0)
    strategy = _InPlaceAfterStep(TinyBackbone(), hidden_dim=16, projection_dim=8)
    optimizer = torch.optim.SGD([p for p in strategy.parameters() if p.requires_grad], lr=0.0)  # lr 0: only the hook
    before = strategy.backbone.net[0].weight.detach().clone()
    trainer = SSLTrainer("cpu", max_epochs=1, train_data_loader=_loader(2), network=strategy, optimizer=optimizer)
    trainer.run()
    assert strategy.grad_enabled == [False, False]
    torch.testing.assert_close(strategy.backbone.net[0].weight.detach(), before * 0.25)
    assert strategy.backbone.net[0].weight.requires_grad and torch.is_grad_enabled()


def _train(strategy: SimCLR, epochs: int = 3) -> None:
    optimizer = torch.optim.SGD([p for p in strategy.parameters() if p.requires_grad], lr=0.0)
    SSLTrainer("cpu", max_epochs=epochs, train_data_loader=_loader(2), network=strategy, optimizer=optimizer).run()


def test_collapse_is_warned_once(caplog: pytest.LogCaptureFixture) -> None:
    """An encoder that maps every image to the same feature: three collapsed epochs, one warning."""
    torch.manual_seed(0)
    strategy = SimCLR(TinyBackbone(), hidden_dim=16, projection_dim=8)
    torch.nn.init.zeros_(strategy.backbone.net[-1].weight)  # constant features; the BN head cannot undo that
    with caplog.at_level(logging.WARNING, logger="monai_remedis"):
        _train(strategy, epochs=3)
    warnings = [r for r in caplog.records if "collapse" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "epoch 1 mean collapse_score 1.000" in warnings[0].getMessage()


def test_no_collapse_warning_for_healthy_embeddings(caplog: pytest.LogCaptureFixture) -> None:
    torch.manual_seed(0)
    with caplog.at_level(logging.WARNING, logger="monai_remedis"):
        _train(SimCLR(TinyBackbone(), hidden_dim=16, projection_dim=8), epochs=2)
    assert not [r for r in caplog.records if "collapse" in r.getMessage()]
