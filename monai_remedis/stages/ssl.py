"""Stage 2: self-supervised learning on unlabelled medical images."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import ignite.distributed as idist
import torch
import torch.nn as nn
from ignite.engine import Engine, Events
from monai.data import Dataset

from monai_remedis.backbones.weights import load_backbone_weights
from monai_remedis.engines.fingerprint import claim_run_dir, file_digest, make_fingerprint, release_run_dir
from monai_remedis.engines.handlers import HistoryRecorder, attach_training_handlers
from monai_remedis.engines.runtime import (
    atomic_torch_save,
    atomic_write_json,
    is_main_process,
    make_loader,
    prepare_run_dir,
    provenance,
    resolve_device,
)
from monai_remedis.engines.ssl_observers import (
    PLOTS_DIR,
    CurvesPlot,
    LearningRateMetric,
    knn_monitor,
    write_view_grid,
)
from monai_remedis.engines.ssl_trainer import SSLTrainer
from monai_remedis.evaluation.cache import decode_once
from monai_remedis.evaluation.representation import (
    ProbedRepresentation,
    degradation_verdict,
    probe_change,
    stage_probe,
)
from monai_remedis.optim import build_optimizer, scaled_lr, warmup_cosine
from monai_remedis.ssl.factory import create_strategy, strategy_data_transform
from monai_remedis.stages.config import (
    OptimConfig,
    RuntimeConfig,
    as_dict,
    fingerprint_runtime,
    ssl_optim_defaults,
)
from monai_remedis.stages.engines import (
    StageEngines,
    as_monai_output,
    attach_extra_handlers,
    engines_to_run,
    restore_artifacts,
    with_artifacts,
)

logger = logging.getLogger("monai_remedis")


class SSLStage:
    """Train a backbone with a self-supervised strategy and export it as ``backbone.pt``.

    Under torchrun the strategy is wrapped in DDP by ``idist.auto_model``; on CUDA its BatchNorm layers (e.g. the
    SimCLR/BYOL/Barlow Twins heads) are converted to ``SyncBatchNorm`` first, so their statistics span the global
    batch. On CPU (gloo) there is no conversion, because torch's ``SyncBatchNorm`` runs on CUDA only: each rank's
    BatchNorm then normalises with the statistics of its local ``batch_size / world_size`` samples.

    Warnings (rank 0): a strategy whose ``queue_size`` (MoCo) exceeds the number of training images (the queue then
    holds stale keys of each query's own image, i.e. false negatives; set ``strategy_kwargs`` ``queue_size``), the
    first epoch whose backbone features collapsed against their step-0 state
    (:class:`~monai_remedis.engines.ssl_trainer.CollapseMonitor`), and, at the end, a frozen linear probe on the
    ``diagnostics`` set that is significantly worse than the init's
    (:func:`~monai_remedis.evaluation.representation.degradation_verdict`; both probes and the paired change go
    into ``metrics.json`` as ``representation_init``, ``representation`` and ``representation_change``).

    Args:
        datalist: unlabelled items (``"image"`` path or array; labels are ignored).
        transform: dict transform producing ``view_0``..``view_{n-1}`` (ends with ``MultiViewd``).
        backbone: the encoder to train (its ``feature_dim`` sizes the heads).
        output_dir: run directory: ``backbone.pt``, ``history.json``, ``provenance.json``, ``checkpoints/``.
        strategy: registered strategy name (``simclr``, ...).
        strategy_kwargs: passed to the strategy (temperature, projection_dim, ...).
        init_weights: stage-1 checkpoint (or published weights) loaded into the backbone first.
        optim: optimisation (default :func:`~monai_remedis.stages.config.ssl_optim_defaults`: LARS, 0.3 x
            batch/256); ``min_steps`` and ``label_smoothing`` do not apply.
        runtime: device, precision, workers, seed, resume, logging and ``cache_decoded`` (decode each item once
            and run only the view augmentations per epoch; turn off for data that does not fit in memory).
        load_transform: the bundle's loading transform; with ``view_transform``, lets a strategy that needs its
            own pipeline (:meth:`~monai_remedis.ssl.base.SSLStrategy.data_transform`) build it in place of
            ``transform``.
        view_transform: the bundle's augmentation of one view.
        diagnostics: ``{"train", "val", "transform"}`` of a labelled set: the exported encoder's feature effective
            rank, cosine and linear-probe AUC go into ``metrics.json``
            (:func:`~monai_remedis.evaluation.representation.stage_probe`); its first ``knn_max_items``
            labelled train (bank) and validation (queries) items also feed the online kNN monitor every epoch
            (``knn_accuracy``, ``knn_auc`` in ``history.json``; skipped with a log line for unlabelled items).
        knn_max_items: images per side of the kNN monitor (0: off).
        plots: write ``plots/ssl_curves.png`` (loss, learning rate, kNN per epoch) and ``plots/augmented_views.png``.
    """

    def __init__(
        self,
        datalist: Sequence[dict[str, Any]],
        transform: Callable,
        backbone: nn.Module,
        output_dir: str | Path,
        strategy: str = "simclr",
        strategy_kwargs: dict[str, Any] | None = None,
        init_weights: str | Path | None = None,
        optim: OptimConfig | None = None,
        runtime: RuntimeConfig | None = None,
        load_transform: Callable | None = None,
        view_transform: Callable | None = None,
        diagnostics: dict[str, Any] | None = None,
        knn_max_items: int = 256,
        plots: bool = True,
    ) -> None:
        if not datalist:
            raise ValueError("SSLStage: the datalist is empty; check 'dataset_dir' and the datalist config.")
        self.datalist = list(datalist)
        self.transform = transform
        self.backbone = backbone
        self.output_dir = Path(output_dir)
        self.strategy_name = strategy
        self.strategy_kwargs = dict(strategy_kwargs or {})
        self.init_weights = init_weights
        self.optim = optim or ssl_optim_defaults()
        self.runtime = runtime or RuntimeConfig()
        self.diagnostics = diagnostics
        self.knn_max_items = knn_max_items
        self.plots = plots
        self.engines: StageEngines | None = None
        if load_transform is not None and view_transform is not None:
            custom = strategy_data_transform(strategy, load_transform, view_transform, self.strategy_kwargs)
            if custom is not None:
                self.transform = custom

    def _data(self) -> tuple[list[dict[str, Any]], Callable]:
        """The items and the per-epoch transform (decoded once when ``runtime.cache_decoded``)."""
        if self.runtime.cache_decoded:
            return decode_once(self.datalist, self.transform)
        return self.datalist, self.transform

    def _config(self) -> dict[str, Any]:
        return {
            "strategy_name": self.strategy_name,
            "strategy_kwargs": self.strategy_kwargs,
            "init_weights": self.init_weights,
            "optim": as_dict(self.optim),
            "runtime": as_dict(self.runtime),
            "num_items": len(self.datalist),
        }

    def build(
        self,
        max_epochs: int | None = None,
        train_handlers: Sequence[Any] = (),
        val_handlers: Sequence[Any] = (),
        inferer: Any | None = None,
    ) -> StageEngines:
        """Build the SSL trainer (``train#trainer``) from the ``init_weights`` backbone; nothing is written.

        ``max_epochs`` replaces ``optim.max_epochs``; the extra handlers are attached when the run starts. SSL has
        no evaluator (``val_handlers`` are not attached) and no inferer (the strategy computes its loss).
        """
        if max_epochs is not None:
            self.optim = replace(self.optim, max_epochs=int(max_epochs))
        optim = self.optim
        device = resolve_device(self.runtime.device)  # first: under torchrun this initialises the process group
        run_dir = prepare_run_dir(self.output_dir, self.runtime.seed)
        if self.init_weights:
            load_backbone_weights(self.backbone, self.init_weights)
        strategy = create_strategy(self.strategy_name, backbone=self.backbone, **self.strategy_kwargs)
        if is_main_process():
            _warn_if_queue_exceeds_data(self.strategy_name, strategy, len(self.datalist), optim.batch_size)
        network = idist.auto_model(strategy, sync_bn=idist.get_world_size() > 1 and device.type == "cuda")
        data = self._data()
        loader = make_loader(Dataset(*data), optim.batch_size, True, self.runtime.num_workers, drop_last=True)
        steps_per_epoch = self.runtime.epoch_length or len(loader)
        lr = scaled_lr(optim.learning_rate, optim.batch_size, optim.lr_scale_batch)
        optimizer = build_optimizer(strategy, optim.optimizer, lr, optim.weight_decay)
        scheduler = warmup_cosine(
            optimizer, optim.max_epochs * steps_per_epoch, int(optim.warmup_epochs * steps_per_epoch)
        )
        trainer = SSLTrainer(
            device,
            optim.max_epochs,
            loader,
            network,
            optimizer,
            epoch_length=self.runtime.epoch_length,
            amp=self.runtime.amp,
            non_blocking=device.type == "cuda",
        )
        trainer.add_event_handler(Events.ITERATION_COMPLETED, as_monai_output)  # first: MONAI handlers read the loss
        if is_main_process():
            strategy.attach_handlers(trainer, run_dir)  # strategy-specific handlers, e.g. Genesis previews
            LearningRateMetric(optimizer).attach(trainer)
            monitor = knn_monitor(strategy.encoder, self.diagnostics, device, self.knn_max_items)
            if monitor is not None:
                monitor.attach(trainer)
        state = {
            "run_dir": run_dir,
            "device": device,
            "strategy": strategy,
            "to_save": {"network": strategy, "optimizer": optimizer, "lr_scheduler": scheduler, "trainer": trainer},
            "scheduler": scheduler,
            "lr": lr,
            "steps_per_epoch": steps_per_epoch,
            "data": data,
        }
        self.engines = StageEngines(trainer, None, list(train_handlers), list(val_handlers), state)
        return self.engines

    def _probe_init(self, encoder: nn.Module, device: torch.device) -> ProbedRepresentation | None:
        """The init's frozen probe, before any checkpoint is loaded (resume loads at STARTED), so a resumed run
        compares with the same init. The torch RNG is restored afterwards: the check leaves training unchanged,
        and DDP ranks (only rank 0 probes) keep the same random state."""
        with torch.random.fork_rng(devices=[]):
            return stage_probe("SSL init", encoder, self.diagnostics, device)

    def run(self, trainer: Engine | None = None) -> dict[str, str]:
        """Train and export; returns paths of the artefacts (``backbone``, ``history``, ``run_dir``).

        Runs the trainer :meth:`build` made (``$@ssl.run(@train#trainer)``), else builds one.
        """
        engines = engines_to_run(self, trainer)
        trainer, state = engines.trainer, engines.state
        run_dir, device, strategy = state["run_dir"], state["device"], state["strategy"]
        science = {**self._config(), "runtime": fingerprint_runtime(self.runtime)}
        fingerprint = make_fingerprint(
            "ssl",
            science,
            {"init_weights": self.init_weights},
            {"train": self.datalist},
            {"views": (self.transform, self.datalist)},
        )
        resume = claim_run_dir(run_dir, fingerprint, self.runtime.resume)  # refuses another run's checkpoints
        runtime = replace(self.runtime, resume=resume)
        history_path = run_dir / "history.json"
        history = HistoryRecorder(history_path, resume=runtime.resume, publish=True)
        init = self._probe_init(strategy.encoder, device) if is_main_process() else None
        attach_training_handlers(
            trainer,
            run_dir,
            state["to_save"],
            state["scheduler"],
            resume=runtime.resume,
            log_every=runtime.log_every,
            progress_bar=runtime.progress_bar,
            history=history,
            tensorboard=runtime.tensorboard,
        )
        plots = run_dir / PLOTS_DIR
        if is_main_process() and self.plots:
            CurvesPlot(history, plots / "ssl_curves.png").attach(trainer)
            write_view_grid(*state["data"], plots / "augmented_views.png")
        attach_extra_handlers(engines)
        logger.info(
            "SSL %s: %d images, %d steps/epoch, lr %.4g, %d epochs on %s (world %d)",
            self.strategy_name,
            len(self.datalist),
            state["steps_per_epoch"],
            state["lr"],
            self.optim.max_epochs,
            device,
            idist.get_world_size(),
        )
        changed = with_artifacts(engines.train_handlers, [history_path, plots])
        try:
            trainer.run()
        finally:
            restore_artifacts(changed)
        backbone_path = run_dir / "backbone.pt"
        if is_main_process():
            atomic_torch_save(strategy.transferable_state_dict(), backbone_path)
            atomic_write_json(provenance("ssl", self._config(), [self.init_weights]), run_dir / "provenance.json")
            final = stage_probe("stage 2", strategy.encoder, self.diagnostics, device)
            monitor = getattr(trainer, "collapse_monitor", None)
            record: dict[str, Any] = {
                "backbone_sha256": file_digest(backbone_path),  # lets the report tell this run's backbone
                "representation": None if final is None else final.scores,
                "collapse_warning": getattr(monitor, "warning", None),
                "collapse_recovered": getattr(monitor, "recovered", None),
            }
            if init is not None and final is not None:
                record["representation_init"] = init.scores
                record["representation_change"] = change = probe_change(init, final)
                record["representation_warning"] = _warn_if_degraded(self.strategy_name, change)
            atomic_write_json({**record, **trainer.state.metrics}, run_dir / "metrics.json")
        release_run_dir(run_dir)
        return {"backbone": str(backbone_path), "history": str(history_path), "run_dir": str(run_dir)}


def _warn_if_degraded(name: str, change: dict[str, float]) -> str | None:
    """Warn when SSL left frozen features that separate the validation labels worse than its init's did.

    Returns:
        the warning's first sentence, or None when there is nothing to warn about.
    """
    verdict = degradation_verdict(change)
    if not verdict:
        return None
    message = f"SSL {name} made the representation worse than its init: {verdict}"
    logger.warning(
        "%s. The exported backbone.pt is likely to fine-tune worse than the init itself; try a lower "
        "ssl_learning_rate or fewer ssl_epochs, or fine-tune from the init (finetune_init: '@pretrain_checkpoint').",
        message,
    )
    return message


def _warn_if_queue_exceeds_data(name: str, strategy: nn.Module, num_images: int, batch_size: int) -> None:
    """Warn when a queue of negatives (``strategy.queue_size``) is larger than the training set."""
    queue_size = getattr(strategy, "queue_size", None)
    if not isinstance(queue_size, int) or queue_size <= num_images:
        return
    suggestion = max(batch_size, num_images // 2 // batch_size * batch_size)
    logger.warning(
        "SSL %s: queue_size %d exceeds the %d training images, so the queue holds stale keys of each query's own "
        "image, which act as false negatives. Set strategy_kwargs queue_size below the number of images, "
        "e.g. --strategy_kwargs \"{'queue_size': %d}\".",
        name,
        queue_size,
        num_images,
        suggestion,
    )
