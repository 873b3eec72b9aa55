"""SSLTrainer's side of the strategy contract: ``after_step`` under ``no_grad``; one warning when SSL collapses."""

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


def _train(strategy: SimCLR, epochs: int = 3) -> SSLTrainer:
    optimizer = torch.optim.SGD([p for p in strategy.parameters() if p.requires_grad], lr=0.0)
    trainer = SSLTrainer("cpu", max_epochs=epochs, train_data_loader=_loader(2), network=strategy, optimizer=optimizer)
    trainer.run()
    return trainer


class _CollapsingStrategy(SimCLR):
    """SSL that destroys the representation: after the first step the encoder maps every image to one point."""

    def after_step(self, progress: float) -> None:
        self.backbone.net[-1].weight.zero_()


def _collapse_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "collapse" in r.getMessage()]


def test_collapse_caused_by_ssl_is_warned_once(caplog: pytest.LogCaptureFixture) -> None:
    """Healthy at step 0, one point after the first update: three collapsed epochs, one warning naming the backbone."""
    torch.manual_seed(0)
    strategy = _CollapsingStrategy(TinyBackbone(), hidden_dim=16, projection_dim=8)
    with caplog.at_level(logging.WARNING, logger="monai_remedis"):
        trainer = _train(strategy, epochs=3)
    warnings = _collapse_warnings(caplog)
    assert len(warnings) == 1, warnings
    assert "after epoch 1 in the backbone features" in warnings[0] and "complete collapse" in warnings[0]
    assert trainer.state.metrics["backbone_spread"] < 1e-5 < trainer.state.metrics["backbone_erank_step0"]


class _TransientCollapse(SimCLR):
    """One point during epoch 1 (steps 1-2), the original weights again from epoch 2 on."""

    def after_step(self, progress: float) -> None:
        self.steps = getattr(self, "steps", 0) + 1
        weight = self.backbone.net[-1].weight
        if self.steps == 1:
            self.saved = weight.detach().clone()
            weight.zero_()
        elif self.steps == 3:
            weight.copy_(self.saved)


def test_a_collapse_that_later_epochs_undo_is_reported_as_recovered(caplog: pytest.LogCaptureFixture) -> None:
    """The warning is logged when it happens, but the run's outcome (``warning``, read into metrics.json and the
    report) is the state at the end: recovered, with the epoch and the backbone's rank."""
    torch.manual_seed(0)
    strategy = _TransientCollapse(TinyBackbone(), hidden_dim=16, projection_dim=8)
    with caplog.at_level(logging.INFO, logger="monai_remedis"):
        trainer = _train(strategy, epochs=3)
    messages = _collapse_warnings(caplog)
    assert len(messages) == 2 and "after epoch 1 in the backbone features" in messages[0], messages
    assert "recovered by epoch 2" in messages[1]
    monitor = trainer.collapse_monitor
    assert monitor.warning is None and "recovered by epoch 2" in monitor.recovered
    assert "complete collapse" in monitor.recovered


def test_inherited_collapse_is_not_blamed_on_ssl(caplog: pytest.LogCaptureFixture) -> None:
    """An init that is already one point: the monitor says so once at the start and never calls it SSL collapse."""
    torch.manual_seed(0)
    strategy = SimCLR(TinyBackbone(), hidden_dim=16, projection_dim=8)
    torch.nn.init.zeros_(strategy.backbone.net[-1].weight)  # constant features before any update
    with caplog.at_level(logging.WARNING, logger="monai_remedis"):
        _train(strategy, epochs=3)
    warnings = _collapse_warnings(caplog)
    assert len(warnings) == 1 and "inherited from the init" in warnings[0], warnings
    assert not any("SSL collapse detected" in w for w in warnings)


def test_no_collapse_warning_for_healthy_embeddings(caplog: pytest.LogCaptureFixture) -> None:
    torch.manual_seed(0)
    with caplog.at_level(logging.WARNING, logger="monai_remedis"):
        trainer = _train(SimCLR(TinyBackbone(), hidden_dim=16, projection_dim=8), epochs=2)
    assert not _collapse_warnings(caplog)
    assert {"backbone_erank", "backbone_erank_step0", "projector_erank"} <= set(trainer.state.metrics)
