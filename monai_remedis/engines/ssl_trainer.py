"""A MONAI ``Trainer`` whose iteration asks an SSL strategy for the loss."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import ignite.distributed as idist
import torch
import torch.nn as nn
from monai.engines import Trainer
from monai.engines.utils import IterationEvents
from torch.optim import Optimizer

from monai_remedis.ssl.base import SSLStrategy


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside DDP / DataParallel / torch.compile wrappers."""
    while True:
        if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


class SSLTrainer(Trainer):
    """Self-supervised training engine.

    Each iteration moves the batch's views to the device, runs the (possibly DDP-wrapped) strategy forward
    under autocast, back-propagates ``loss``, steps the optimiser and calls the strategy's ``after_step`` (momentum
    and EMA updates). ``engine.state.output`` holds the float value of every tensor the strategy returned
    (``loss``, ``embedding_std``, ...), so MONAI's ``StatsHandler`` and Ignite's ``ProgressBar`` log them. Under DDP
    these values are averaged over the ranks, so rank 0 logs the loss of the global batch (for losses averaged over
    samples, e.g. NT-Xent, this is the loss a single process would compute on the concatenated batch).

    Args:
        device: device to train on.
        max_epochs: number of epochs.
        train_data_loader: loader of collated batches with keys ``view_0`` .. ``view_{n-1}``.
        network: the strategy, optionally wrapped in DDP.
        optimizer: optimiser over the strategy's parameters.
        epoch_length: iterations per epoch (default: length of the loader).
        amp: use ``torch.autocast`` (bf16 by default: no grad scaler needed).
        amp_dtype: autocast dtype.
        train_handlers: handlers attached to the engine.
        non_blocking: non-blocking host-to-device copies.
    """

    def __init__(
        self,
        device: torch.device | str,
        max_epochs: int,
        train_data_loader: Iterable,
        network: nn.Module,
        optimizer: Optimizer,
        epoch_length: int | None = None,
        amp: bool = False,
        amp_dtype: torch.dtype = torch.bfloat16,
        train_handlers: Sequence | None = None,
        non_blocking: bool = False,
    ) -> None:
        super().__init__(
            device=device,
            max_epochs=max_epochs,
            data_loader=train_data_loader,
            epoch_length=epoch_length,
            non_blocking=non_blocking,
            handlers=train_handlers,
            amp=False,  # autocast handled here so that bf16 needs no GradScaler
            decollate=False,
        )
        strategy = unwrap(network)
        if not isinstance(strategy, SSLStrategy):
            raise TypeError(f"SSLTrainer needs an SSLStrategy (optionally DDP-wrapped), got {type(strategy).__name__}.")
        self.network = network
        self.strategy = strategy
        self.optimizer = optimizer
        self.use_amp = amp
        self.amp_dtype = amp_dtype

    def _iteration(self, engine: SSLTrainer, batchdata: dict[str, Any]) -> dict[str, float]:
        views = [v.to(engine.state.device, non_blocking=engine.non_blocking) for v in self.strategy.views(batchdata)]
        self.network.train()
        self.optimizer.zero_grad(set_to_none=True)
        device_type = torch.device(engine.state.device).type
        with torch.autocast(device_type=device_type, dtype=self.amp_dtype, enabled=self.use_amp):
            out = self.network(views)
        loss = out["loss"]
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"non-finite SSL loss {loss.item()} at epoch {engine.state.epoch}, iteration {engine.state.iteration}; "
                "lower the learning rate or disable amp."
            )
        engine.fire_event(IterationEvents.FORWARD_COMPLETED)
        loss.backward()
        engine.fire_event(IterationEvents.BACKWARD_COMPLETED)
        self.optimizer.step()
        engine.fire_event(IterationEvents.MODEL_COMPLETED)
        total = engine.state.max_epochs * engine.state.epoch_length
        self.strategy.after_step(progress=min(1.0, engine.state.iteration / max(1, total)))
        return _global_scalars(out)


def _global_scalars(out: dict[str, Any]) -> dict[str, float]:
    """The scalar tensors of a strategy output as floats, averaged over ranks when distributed."""
    scalars = {
        k: v.detach().float().reshape(()) for k, v in out.items() if isinstance(v, torch.Tensor) and v.numel() == 1
    }
    world = idist.get_world_size()
    if world > 1 and scalars:
        mean = idist.all_reduce(torch.stack(list(scalars.values()))) / world
        scalars = dict(zip(scalars, mean, strict=True))
    return {k: float(v) for k, v in scalars.items()}
