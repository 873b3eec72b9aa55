"""A MONAI ``Trainer`` whose iteration asks an SSL strategy for the loss."""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable, Sequence
from typing import Any

import ignite.distributed as idist
import torch
import torch.nn as nn
from ignite.engine import Events
from monai.engines import Trainer
from monai.utils import convert_to_tensor
from torch.optim import Optimizer

from monai_remedis.engines.steps import backward_and_step
from monai_remedis.ssl.base import SSLStrategy
from monai_remedis.ssl.collapse import collapse_verdict, representation_state

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
    :class:`CollapseMonitor` is attached: it compares the encoder (and projector) features of a fixed probe set
    after every epoch with their state before SSL and warns once when SSL degraded them.

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
        num_probe: images of the collapse monitor's fixed probe set (:class:`CollapseMonitor`).
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
        num_probe: int = 512,
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
        self.collapse_monitor = CollapseMonitor(num_probe)
        self.collapse_monitor.attach(self)

    def _iteration(self, engine: SSLTrainer, batchdata: dict[str, Any]) -> dict[str, float]:
        views = [v.to(engine.state.device, non_blocking=engine.non_blocking) for v in self.strategy.views(batchdata)]
        self.network.train()
        self.optimizer.zero_grad(set_to_none=True)
        device_type = torch.device(engine.state.device).type
        with torch.autocast(device_type=device_type, dtype=self.amp_dtype, enabled=self.use_amp):
            out = self.network(views)
        loss = out["loss"]
        backward_and_step(engine, self.optimizer, loss, "SSL")
        total = engine.state.max_epochs * engine.state.epoch_length
        with torch.no_grad():  # the documented contract: overrides need not decorate after_step themselves
            self.strategy.after_step(progress=min(1.0, engine.state.iteration / max(1, total)))
        return _global_scalars(out)


class CollapseMonitor:
    """Measure the representation on a fixed probe set before SSL and after every epoch; warn when SSL degraded it.

    At ``STARTED`` the monitor keeps the first ``num_probe`` images of ``view_0`` from the trainer's loader (one
    fixed set, so scores do not depend on the batch size) and records the step-0 state of the strategy's
    ``encoder`` features (the representation that transfers) and, when the strategy has a ``projector``, of its
    output. After every epoch it measures them again
    (:func:`~monai_remedis.ssl.collapse.representation_state`: standardised effective rank and relative spread,
    blind to a constant offset) and writes ``backbone_erank``, ``backbone_erank_step0``, ``backbone_spread``
    (and ``projector_*``) into ``engine.state.metrics``, hence into ``history.json``. Rank 0 logs one warning the
    first time :func:`~monai_remedis.ssl.collapse.collapse_verdict` finds the backbone worse than at step 0 (or the
    projector output completely collapsed: a projector that loses rank while the backbone keeps it is common and
    harmless, Jing et al. 2022), so an anisotropy inherited from the init is never called collapse. A collapse
    that later epochs undo is logged as recovered and moves from ``warning`` (what still holds at the end, for
    ``metrics.json`` and the report) to ``recovered``: a transient dip is not reported as the run's outcome. Only
    the contract's ``encoder`` is required; third-party strategies need no extra keys. On resume the reference is the
    resumed state.

    Args:
        num_probe: probe images (rows of the effective-rank estimate).
    """

    def __init__(self, num_probe: int = 512) -> None:
        self.num_probe = num_probe
        self.probe: torch.Tensor | None = None
        self.reference: dict[str, dict[str, float]] = {}
        self.warning: str | None = None  # a collapse that still holds, for the stage's metrics.json and the report
        self.recovered: str | None = None  # a collapse that later epochs undid

    def attach(self, engine: SSLTrainer) -> None:
        """Reference at ``STARTED``, measurement and check at every ``EPOCH_COMPLETED``."""
        engine.add_event_handler(Events.STARTED, self._start)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._check)

    def _collect_probe(self, engine: SSLTrainer) -> torch.Tensor | None:
        chunks, rows = [], 0
        for batch in engine.data_loader:
            view = engine.strategy.views(batch)[0]
            chunks.append(convert_to_tensor(view, track_meta=False).detach().cpu())  # plain tensors: no MONAI metadata
            rows += chunks[-1].shape[0]
            if rows >= self.num_probe:
                break
        return torch.cat(chunks)[: self.num_probe] if chunks and rows >= 2 else None

    @torch.no_grad()
    def measure(self, engine: SSLTrainer) -> dict[str, dict[str, float]]:
        """``{"backbone": state, "projector": state}`` of the probe set (projector only when the strategy has one)."""
        strategy, device = engine.strategy, engine.state.device
        encoder = strategy.encoder
        was_training = encoder.training
        encoder.eval()
        dtype = next(encoder.parameters()).dtype  # e.g. float64 models in the DDP equivalence tests
        features = torch.cat([encoder(x.to(device=device, dtype=dtype)).float() for x in self.probe.split(256)])
        encoder.train(was_training)
        states = {"backbone": representation_state(features)}
        projector = getattr(strategy, "projector", None)
        if isinstance(projector, nn.Module):  # a copy in train mode: BatchNorm statistics untouched
            head = copy.deepcopy(projector).train()
            states["projector"] = representation_state(
                torch.cat([head(f.to(dtype)) for f in features.split(256)]).float()
            )
        return states

    def _start(self, engine: SSLTrainer) -> None:
        self.probe = self._collect_probe(engine)
        if self.probe is None:
            return
        self.reference = self.measure(engine)
        inherited = collapse_verdict(self.reference["backbone"])
        if inherited and idist.get_rank() == 0:
            logger.warning(
                "The SSL init's backbone features are collapsed before any update (%s): inherited from the init, "
                "not caused by SSL. Check stage 1 (its metrics.json reports the feature effective rank).",
                inherited,
            )

    def _check(self, engine: SSLTrainer) -> None:
        if self.probe is None:
            return
        states = self.measure(engine)
        verdicts: dict[str, str | None] = {}
        for part, state in states.items():
            reference = self.reference.get(part)
            engine.state.metrics[f"{part}_erank"] = state["erank"]
            engine.state.metrics[f"{part}_spread"] = state["spread"]
            if reference is not None:
                engine.state.metrics[f"{part}_erank_step0"] = reference["erank"]
            verdict = collapse_verdict(state, reference)
            if part == "projector" and verdict and not verdict.startswith("complete"):
                verdict = None  # a lower-rank projector output is common and benign (the backbone keeps the rank)
            verdicts[part] = verdict
        self._update_warning(engine.state.epoch, verdicts, states)

    def _update_warning(self, epoch: int, verdicts: dict[str, str | None], states: dict[str, dict[str, float]]) -> None:
        """Warn once when a part collapses; when every part has recovered, log it and keep it as ``recovered``."""
        collapsed = [(part, verdict) for part, verdict in verdicts.items() if verdict]
        main = idist.get_rank() == 0
        if collapsed and self.warning is None:
            part, verdict = collapsed[0]
            self.warning = (
                f"SSL collapse detected after epoch {epoch} in the {part} features of {self.probe.shape[0]} probe "
                f"images: {verdict}"
            )
            if main:
                logger.warning(
                    "%s. Try a lower learning rate, a higher temperature or LARS with adapted norm/bias parameters; "
                    "a recovery is reported.",
                    self.warning,
                )
        elif not collapsed and self.warning is not None:
            erank, step0 = states["backbone"]["erank"], self.reference["backbone"]["erank"]
            self.recovered = (
                f"{self.warning}; recovered by epoch {epoch} (backbone standardised effective rank {erank:.1f}, "
                f"{erank / step0:.2f}x its step-0 value)"
            )
            self.warning = None
            if main:
                logger.info("%s.", self.recovered)


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
