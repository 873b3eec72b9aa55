"""The optimiser step shared by our custom Ignite engines (SSL, Ark)."""

from __future__ import annotations

import torch
from ignite.engine import Engine
from monai.engines.utils import IterationEvents
from torch.optim import Optimizer


def backward_and_step(engine: Engine, optimizer: Optimizer, loss: torch.Tensor, what: str) -> None:
    """Refuse a non-finite loss (naming ``what``, the epoch and the iteration), then back-propagate and step,
    firing MONAI's ``FORWARD_COMPLETED``, ``BACKWARD_COMPLETED`` and ``MODEL_COMPLETED`` events as its trainers do.

    Raises:
        FloatingPointError: the loss is NaN or infinite.
    """
    if not torch.isfinite(loss):
        raise FloatingPointError(
            f"non-finite {what} loss {loss.item()} at epoch {engine.state.epoch}, iteration {engine.state.iteration}; "
            "lower the learning rate or disable amp."
        )
    engine.fire_event(IterationEvents.FORWARD_COMPLETED)
    loss.backward()
    engine.fire_event(IterationEvents.BACKWARD_COMPLETED)
    optimizer.step()
    engine.fire_event(IterationEvents.MODEL_COMPLETED)
