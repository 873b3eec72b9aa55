"""Ark's training engine: datasets cycled batch by batch, one omni-head each, an EMA teacher's consistency.

Each iteration trains on one batch of one dataset (``batch["task"]``)::

    loss = (1 - c) * task_loss(heads[task](student(view_0)), label) + c * MSE(student(view_0), teacher(view_1))

where the features are the projector outputs, ``c`` rises from 0 to ``consistency_max`` (cosine) and the teacher
follows the student by EMA with a momentum rising from ``momentum_base`` to 1 (cosine). Only the named head runs,
so the heads of the other datasets get no loss and no gradient (their ``.grad`` stays ``None``, so optimisers skip
them: not even weight decay moves them).

Reference:
    Ma et al., "Foundation Ark: Accruing and Reusing Knowledge for Superior and Robust Performance", MICCAI 2023
    (there ``c = 5 * (momentum - 0.9)``: the same cosine ramp to 0.5 with ``momentum_base=0.9``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from ignite.engine import Engine, Events
from monai.engines import Trainer
from torch.optim import Optimizer

from monai_remedis.engines.ssl_trainer import unwrap
from monai_remedis.engines.steps import backward_and_step
from monai_remedis.models.omni import OmniModel
from monai_remedis.ssl.momentum import cosine_momentum, ema_update

CYCLE_ORDERS = ("interleave", "sequential")


def consistency_weight(progress: float, maximum: float = 0.5) -> float:
    """Ark's consistency coefficient: ``maximum * (1 - cos(pi * progress)) / 2``, 0 at the start.

    Example:
        >>> consistency_weight(0.0), consistency_weight(0.5), consistency_weight(1.0)
        (0.0, 0.25, 0.5)
    """
    return cosine_momentum(progress, base=0.0, final=maximum)


class MultiClassLoss(nn.Module):
    """Cross-entropy on integer labels of any shape ``(B,)`` / ``(B, 1)`` (a multi-class omni-head)."""

    def __init__(self, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.loss = nn.CrossEntropyLoss(label_smoothing=label_smoothing)

    def forward(self, logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        return self.loss(logits, label.long().reshape(-1))


class MultiLabelLoss(nn.Module):
    """Binary cross-entropy with logits on multi-hot labels ``(B, K)`` (a multi-label omni-head)."""

    def forward(self, logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits, label.float().reshape(logits.shape))


class CycleLoader:
    """Batches of several loaders in one epoch, each tagged with its dataset name under ``"task"``.

    Args:
        loaders: ``{dataset name: loader of collated dict batches}``.
        order: ``interleave`` (round robin: one batch of each dataset in turn; an exhausted dataset drops out) or
            ``sequential`` (all of the first dataset, then the next, as Ark's released code does).

    Raises:
        ValueError: for an unknown ``order`` or an empty loader.
    """

    def __init__(self, loaders: Mapping[str, Iterable], order: str = "interleave") -> None:
        if order not in CYCLE_ORDERS:
            raise ValueError(f"unknown cycle order '{order}'. Known orders: {', '.join(CYCLE_ORDERS)}.")
        empty = [name for name, loader in loaders.items() if len(loader) == 0]  # type: ignore[arg-type]
        if not loaders or empty:
            raise ValueError(f"every dataset needs at least one batch; empty: {empty or 'no datasets given'}.")
        self.loaders = dict(loaders)
        self.order = order

    def __len__(self) -> int:
        return sum(len(loader) for loader in self.loaders.values())  # type: ignore[arg-type]

    def set_epoch(self, epoch: int) -> None:
        """Forward the epoch to distributed samplers, so every epoch is shuffled anew under DDP."""
        for loader in self.loaders.values():
            sampler = getattr(loader, "sampler", None)
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if self.order == "sequential":
            for name, loader in self.loaders.items():
                for batch in loader:
                    yield {**batch, "task": name}
            return
        active = {name: iter(loader) for name, loader in self.loaders.items()}
        while active:
            for name in list(active):
                try:
                    batch = next(active[name])
                except StopIteration:
                    del active[name]
                    continue
                yield {**batch, "task": name}


class ArkTrainer(Trainer):
    """MONAI ``Trainer`` for Ark (see the module docstring for the loss).

    ``engine.state.output`` holds floats: ``loss``, ``task_loss``, ``consistency_loss``, ``consistency_weight``,
    ``momentum``; at each epoch end ``engine.state.metrics["loss_<dataset>"]`` is that dataset's mean task loss
    over the epoch (``history.json`` records it).

    Args:
        device: device to train on.
        max_epochs: number of epochs.
        train_data_loader: a :class:`CycleLoader` (batches with ``task``, ``view_0``, ``view_1`` (or ``image``) and
            ``label``).
        network: the student :class:`~monai_remedis.models.omni.OmniModel`, optionally DDP-wrapped.
        teacher: the EMA teacher, a frozen copy of the student (no parameter requires grad).
        optimizer: optimiser over the student's parameters.
        loss_functions: ``{dataset name: loss(logits, label)}``, one per head.
        consistency_max: final value of the consistency coefficient ``c`` (Ark: 0.5).
        momentum_base: EMA momentum of the teacher at the start; it rises to 1 (cosine).
        epoch_length: iterations per epoch (default: length of the loader).
        amp: bf16 autocast (no grad scaler needed).
        non_blocking: non-blocking host-to-device copies.
        train_handlers: handlers attached to the engine.

    Raises:
        TypeError: when the student is not an ``OmniModel``.
        ValueError: when the teacher has trainable parameters, or a head has no loss function.
    """

    def __init__(
        self,
        device: torch.device | str,
        max_epochs: int,
        train_data_loader: CycleLoader,
        network: nn.Module,
        teacher: OmniModel,
        optimizer: Optimizer,
        loss_functions: Mapping[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]],
        consistency_max: float = 0.5,
        momentum_base: float = 0.9,
        epoch_length: int | None = None,
        amp: bool = False,
        non_blocking: bool = False,
        train_handlers: Sequence | None = None,
    ) -> None:
        super().__init__(
            device=device,
            max_epochs=max_epochs,
            data_loader=train_data_loader,
            epoch_length=epoch_length,
            non_blocking=non_blocking,
            handlers=train_handlers,
            amp=False,  # bf16 autocast is handled here: no GradScaler
            decollate=False,
        )
        student = unwrap(network)
        if not isinstance(student, OmniModel):
            raise TypeError(f"ArkTrainer trains an OmniModel (optionally DDP-wrapped), got {type(student).__name__}.")
        if any(p.requires_grad for p in teacher.parameters()):
            raise ValueError("the teacher must be frozen (monai_remedis.ssl.momentum.frozen_copy of the student).")
        missing = [name for name in student.head_names if name not in loss_functions]
        if missing:
            raise ValueError(f"no loss function for heads {missing}; got {sorted(loss_functions)}.")
        self.network = network
        self.student = student
        self.teacher = teacher
        self.optimizer = optimizer
        self.loss_functions = dict(loss_functions)
        self.consistency_max = float(consistency_max)
        self.momentum_base = float(momentum_base)
        self.use_amp = amp
        PerTaskLoss().attach(self)
        if hasattr(train_data_loader, "set_epoch"):
            self.add_event_handler(Events.EPOCH_STARTED, lambda e: train_data_loader.set_epoch(e.state.epoch))

    def progress(self) -> float:
        """Fraction of training done before the current iteration: 0 at the first step, 1 at the last."""
        total = self.state.max_epochs * self.state.epoch_length
        return min(1.0, (self.state.iteration - 1) / max(1, total - 1))

    def _iteration(self, engine: ArkTrainer, batchdata: dict[str, Any]) -> dict[str, Any]:
        task = batchdata["task"]
        to = {"device": engine.state.device, "non_blocking": engine.non_blocking}
        student_view = batchdata["view_0" if "view_0" in batchdata else "image"].to(**to)
        teacher_view = batchdata["view_1"].to(**to) if "view_1" in batchdata else student_view
        label = batchdata["label"].to(**to)
        progress = self.progress()
        c = consistency_weight(progress, self.consistency_max)
        self.network.train()
        self.teacher.train()
        self.optimizer.zero_grad(set_to_none=True)  # heads absent from the batch keep grad None
        device_type = torch.device(engine.state.device).type
        with torch.autocast(device_type=device_type, dtype=torch.bfloat16, enabled=self.use_amp):
            features, logits = self.network(student_view, task)
            task_loss = self.loss_functions[task](logits.float(), label)
            if c > 0:
                with torch.no_grad():
                    target = self.teacher.features(teacher_view)
                consistency = F.mse_loss(features.float(), target.float())
            else:  # c = 0: the step is plain supervised training of this head (no teacher forward)
                consistency = features.new_zeros(()).float()
        loss = (1.0 - c) * task_loss + c * consistency
        backward_and_step(engine, self.optimizer, loss, f"Ark (dataset '{task}')")
        momentum = cosine_momentum(progress, self.momentum_base)
        ema_update(self.teacher, self.student, momentum)
        return {
            "loss": loss.item(),
            "task_loss": task_loss.item(),
            "consistency_loss": consistency.item(),
            "consistency_weight": c,
            "momentum": momentum,
            "task": task,
        }


class PerTaskLoss:
    """Mean task loss of each dataset over an epoch, set as ``engine.state.metrics["loss_<dataset>"]``."""

    def __init__(self) -> None:
        self._sums: dict[str, float] = defaultdict(float)
        self._counts: dict[str, int] = defaultdict(int)

    def attach(self, engine: Engine) -> None:
        """Accumulate at every iteration; publish at every epoch end (before later handlers read metrics)."""
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._accumulate)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._publish)

    def _accumulate(self, engine: Engine) -> None:
        output = engine.state.output
        self._sums[output["task"]] += float(output["task_loss"])
        self._counts[output["task"]] += 1

    def _publish(self, engine: Engine) -> None:
        for task, total in self._sums.items():
            engine.state.metrics[f"loss_{task}"] = total / self._counts[task]
        self._sums.clear()
        self._counts.clear()
