"""A MONAI ``Trainer`` whose iteration asks an SSL strategy for the loss."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import ignite.distributed as idist
import torch
import torch.nn as nn
from ignite.engine import Engine, Events
from monai.engines import Trainer
from monai.engines.utils import IterationEvents
from torch.optim import Optimizer

from monai_remedis.ssl.base import SSLStrategy
from monai_remedis.ssl.collapse import COLLAPSE_WARNING_SCORE

logger = logging.getLogger("monai_remedis")


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
    and EMA updates) under ``torch.no_grad()``, so an override may update parameters in place without decorating
    itself. ``engine.state.output`` holds the float value of every tensor the strategy returned
    (``loss``, ``embedding_std``, ...), so MONAI's ``StatsHandler`` and Ignite's ``ProgressBar`` log them. Under DDP
    these values are averaged over the ranks, so rank 0 logs the loss of the global batch (for losses averaged over
    samples, e.g. NT-Xent, this is the loss a single process would compute on the concatenated batch). A
    :class:`CollapseWarning` is attached: rank 0 logs one warning the first time an epoch's mean ``collapse_score``
    reaches :data:`monai_remedis.ssl.collapse.COLLAPSE_WARNING_SCORE`.

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
        CollapseWarning().attach(self)

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
        with torch.no_grad():  # the documented contract: overrides need not decorate after_step themselves
            self.strategy.after_step(progress=min(1.0, engine.state.iteration / max(1, total)))
        return _global_scalars(out)


class CollapseWarning:
    """Warn once per run (rank 0 only) when an epoch's mean ``collapse_score`` shows a collapsed representation.

    The per-iteration ``collapse_score`` of the engine output (already averaged over ranks) is averaged over each
    epoch; the first epoch whose mean reaches ``threshold`` logs a warning on the ``monai_remedis`` logger. Later
    epochs are not reported again (their scores are in ``history.json``).

    Args:
        threshold: epoch-mean score from which to warn (see :mod:`monai_remedis.ssl.collapse`).
        key: the output key holding the score.
    """

    def __init__(self, threshold: float = COLLAPSE_WARNING_SCORE, key: str = "collapse_score") -> None:
        self.threshold = threshold
        self.key = key
        self.warned = False
        self._scores: list[float] = []
        self._stds: list[float] = []

    def attach(self, engine: Engine) -> None:
        """Accumulate at every iteration, check at every epoch end."""
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._accumulate)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._check)

    def _accumulate(self, engine: Engine) -> None:
        output = engine.state.output
        if isinstance(output, dict) and self.key in output:
            self._scores.append(float(output[self.key]))
            if "embedding_std" in output:
                self._stds.append(float(output["embedding_std"]))

    def _check(self, engine: Engine) -> None:
        scores, stds = self._scores, self._stds
        self._scores, self._stds = [], []
        if self.warned or not scores:
            return
        score = sum(scores) / len(scores)
        if score < self.threshold:
            return
        self.warned = True
        if idist.get_rank() == 0:
            std = f"{sum(stds) / len(stds):.4g}" if stds else "n/a"
            logger.warning(
                "SSL collapse detected: epoch %d mean collapse_score %.3f >= %.2f (embedding_std %s): the embeddings "
                "are (nearly) one point or a low-dimensional subspace. Try a lower learning rate, a stage-1 init "
                "(ssl_init) or stronger augmentations; later epochs are not reported again.",
                engine.state.epoch,
                score,
                self.threshold,
                std,
            )


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
