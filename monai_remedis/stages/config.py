"""Typed stage configuration: the options every stage shares, defined once and passed as three small objects.

A bundle defines each object once (``monai_remedis/configs/base.yaml``) and every stage refers to it::

    runtime:
      _target_: monai_remedis.stages.config.RuntimeConfig
      device: '@device'
      ...
    ssl:
      _target_: monai_remedis.stages.SSLStage
      optim: '@ssl_optim'
      runtime: '@runtime'

* :class:`RuntimeConfig`: where and how a run executes (device, precision, workers, seed, resume, logging);
  it never changes what is learned.
* :class:`OptimConfig`: what the optimiser does (epochs, batch, optimiser, learning rate, schedule).
* :class:`SweepConfig`: the data-efficiency sweep of stage 4 (fractions x seeds x inits, mode, parallelism).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monai_remedis.evaluation.linear_probe import DEFAULT_L2_GRID
from monai_remedis.models.head_init import check_head_init

SWEEP_MODES = ("finetune", "linear_probe")


@dataclass
class RuntimeConfig:
    """How a stage runs; none of these change the science.

    Attributes:
        device: ``auto`` (this rank's GPU when there is one, else CPU) or a torch device string.
        amp: bf16 autocast.
        num_workers: data loader workers.
        seed: random seed of the stage (offset by rank under DDP).
        resume: continue from the latest checkpoint of the run directory.
        log_every: log the iteration output every this many iterations (0: never).
        progress_bar: show an Ignite progress bar.
        epoch_length: iterations per epoch (None: one pass over the data).
        cache_decoded: decode each item once (the deterministic head of the transforms) and run only the random
            augmentations per epoch (:func:`~monai_remedis.evaluation.cache.decode_once`); turn off for data that
            does not fit in memory.
        val_evaluations: validate about this many times per supervised run (every epoch when epochs are fewer).
        tensorboard: write TensorBoard event files to ``<run_dir>/tensorboard`` (loss per iteration, metrics per
            epoch) when ``torch.utils.tensorboard`` or ``tensorboardX`` imports.
    """

    device: str = "auto"
    amp: bool = False
    num_workers: int = 0
    seed: int = 0
    resume: bool = False
    log_every: int = 20
    progress_bar: bool = False
    epoch_length: int | None = None
    cache_decoded: bool = True
    val_evaluations: int = 10
    tensorboard: bool = True


@dataclass
class OptimConfig:
    """Optimisation of one training run.

    Attributes:
        max_epochs: epochs (supervised runs train at least ``min_steps`` steps, so small label fractions get more).
        batch_size: global batch size (split across ranks).
        optimizer: ``sgd``, ``adamw`` or ``lars`` (:func:`~monai_remedis.optim.build_optimizer`).
        learning_rate: base learning rate (scaled by ``batch_size / 256`` when ``lr_scale_batch``).
        weight_decay: weight decay.
        warmup_epochs: linear warmup before cosine decay, in epochs.
        min_steps: supervised runs: schedule at least this many optimiser steps (as BiT-HyperRule); early stopping
            (``patience``) may end a run sooner.
        lr_scale_batch: SimCLR's linear learning-rate scaling.
        label_smoothing: supervised runs: cross-entropy label smoothing.
        patience: supervised runs: stop when this many validations in a row bring no better validation AUC (0: train
            the whole budget); with the best-validation checkpoint this chooses each run's step budget on validation
            data by one rule for every init.
        head_init: fine-tunes: how the linear head starts, ``zero`` (BiT) or ``probe`` (LP-FT: a logistic-regression
            probe fitted on the labelled subset's frozen features, :mod:`~monai_remedis.models.head_init`); stage 1
            trains from scratch and ignores it.
        backbone_lr_scale: supervised runs: the backbone's learning rate is ``learning_rate`` times this (the
            head and feature standardiser train at ``learning_rate``); below 1 keeps more of a pretrained
            representation (discriminative fine-tuning).
    """

    max_epochs: int = 10
    batch_size: int = 128
    optimizer: str = "sgd"
    learning_rate: float = 0.01
    weight_decay: float = 1e-4
    warmup_epochs: float = 0.5
    min_steps: int = 0
    lr_scale_batch: bool = False
    label_smoothing: float = 0.0
    patience: int = 0
    head_init: str = "zero"
    backbone_lr_scale: float = 1.0

    def __post_init__(self) -> None:
        check_head_init(self.head_init)
        if not self.backbone_lr_scale > 0:
            raise ValueError(
                f"backbone_lr_scale must be positive, got {self.backbone_lr_scale}; use linear_probe to freeze it."
            )

    def replace(self, **changes: Any) -> OptimConfig:
        """A copy with ``changes`` (e.g. the sweep's epochs and batch size on top of the fine-tune settings)."""
        return dataclasses.replace(self, **changes)


def ssl_optim_defaults() -> OptimConfig:
    """The REMEDIS/SimCLR setting of stage 2 when no ``optim`` is given: LARS 0.3 x batch/256, 1 warmup epoch."""
    return OptimConfig(
        max_epochs=10,
        batch_size=256,
        optimizer="lars",
        learning_rate=0.3,
        weight_decay=1e-6,
        warmup_epochs=1.0,
        lr_scale_batch=True,
    )


@dataclass
class SweepConfig:
    """The data-efficiency sweep: one model per ``init x label fraction x seed``.

    Attributes:
        inits: name -> backbone checkpoint (None: random init) compared in the sweep.
        fractions: label fractions (sorted ascending).
        seeds: seeds per fraction; seed ``s`` draws the same labelled subset for every init (runs are paired).
        baseline_init: the init whose 100%-label metric is the label-reduction target and the paired reference.
        mode: ``finetune`` (full fine-tunes) or ``linear_probe`` (frozen features cached, one head per run).
        optim: optimisation of each fine-tune (``finetune`` mode).
        linear_probe: ``finetune`` mode: freeze the backbone and train the head with SGD (the slow probe).
        log_every: iteration logging of the fine-tunes (0: epoch summaries only).
        workers: ``finetune`` mode: runs trained in parallel processes (each gets ``threads // workers``).
        keep_checkpoints: keep each finished run's resume checkpoints (deleted by default once ``result.json``
            is written; ``classifier.pt`` and the predictions stay).
        probe_l2_grid: L2 penalties of the linear probe (chosen on validation AUC).
        probe_max_iter: L-BFGS iterations per probe fit.
    """

    inits: Mapping[str, str | Path | None] = field(default_factory=dict)
    fractions: Sequence[float] = (0.01, 0.1, 1.0)
    seeds: Sequence[int] = (0, 1, 2)
    baseline_init: str = "baseline"
    mode: str = "finetune"
    optim: OptimConfig = field(default_factory=OptimConfig)
    linear_probe: bool = False
    log_every: int = 0
    workers: int = 1
    keep_checkpoints: bool = False
    probe_l2_grid: Sequence[float] = DEFAULT_L2_GRID
    probe_max_iter: int = 100

    def __post_init__(self) -> None:
        self.mode = self.mode or "finetune"
        if self.mode not in SWEEP_MODES:
            raise ValueError(f"sweep mode must be one of {SWEEP_MODES}, got '{self.mode}'.")
        if self.inits and self.baseline_init not in self.inits:
            raise ValueError(f"baseline_init '{self.baseline_init}' is not among the sweep inits {sorted(self.inits)}.")
        self.inits = dict(self.inits)
        self.fractions = sorted(float(f) for f in self.fractions)
        self.seeds = [int(s) for s in self.seeds]
        self.probe_l2_grid = tuple(float(v) for v in self.probe_l2_grid)
        self.workers = max(1, int(self.workers))
        if isinstance(self.optim, Mapping):
            self.optim = OptimConfig(**self.optim)


RUN_ONLY_FIELDS = ("resume", "log_every", "progress_bar", "num_workers", "tensorboard")
"""RuntimeConfig fields that never change what a run computes: left out of its fingerprint."""


def fingerprint_runtime(runtime: RuntimeConfig) -> dict[str, Any]:
    """The runtime settings that can change a run's result (seed, precision, epoch length, ...)."""
    return {k: v for k, v in as_dict(runtime).items() if k not in RUN_ONLY_FIELDS}


def as_dict(config: Any) -> dict[str, Any]:
    """A dataclass config as a JSON-ready dict (for ``provenance.json``)."""
    return {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(config).items()}
