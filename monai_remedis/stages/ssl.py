"""Stage 2: self-supervised learning on unlabelled medical images."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import ignite.distributed as idist
import torch.nn as nn
from ignite.engine import Events
from monai.data import Dataset

from monai_remedis.backbones.weights import load_backbone_weights
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
from monai_remedis.engines.ssl_trainer import SSLTrainer
from monai_remedis.evaluation.cache import decode_once
from monai_remedis.optim import build_optimizer, scaled_lr, warmup_cosine
from monai_remedis.ssl.factory import create_strategy, strategy_data_transform

logger = logging.getLogger("monai_remedis")


class SSLStage:
    """Train a backbone with a self-supervised strategy and export it as ``backbone.pt``.

    Under torchrun the strategy is wrapped in DDP by ``idist.auto_model``; on CUDA its BatchNorm layers (e.g. the
    SimCLR/BYOL/Barlow Twins heads) are converted to ``SyncBatchNorm`` first, so their statistics span the global
    batch. On CPU (gloo) there is no conversion, because torch's ``SyncBatchNorm`` runs on CUDA only: each rank's
    BatchNorm then normalises with the statistics of its local ``batch_size / world_size`` samples.

    Warnings (rank 0): a strategy whose ``queue_size`` (MoCo) exceeds the number of training images (the queue then
    holds stale keys of each query's own image, i.e. false negatives; set ``strategy_kwargs`` ``queue_size``), and
    the first epoch whose mean ``collapse_score`` shows collapse
    (:class:`~monai_remedis.engines.ssl_trainer.SSLTrainer`).

    Args:
        datalist: unlabelled items (``"image"`` path or array; labels are ignored).
        transform: dict transform producing ``view_0``..``view_{n-1}`` (ends with ``MultiViewd``).
        backbone: the encoder to train (its ``feature_dim`` sizes the heads).
        output_dir: run directory: ``backbone.pt``, ``history.json``, ``provenance.json``, ``checkpoints/``.
        strategy: registered strategy name (``simclr``, ...).
        strategy_kwargs: passed to the strategy (temperature, projection_dim, ...).
        init_weights: stage-1 checkpoint (or published weights) loaded into the backbone first.
        max_epochs: epochs.
        batch_size: global batch size (split across ranks).
        optimizer: ``lars`` (REMEDIS), ``sgd`` or ``adamw``.
        learning_rate: base LR; scaled by ``batch_size/256`` when ``lr_scale_batch``.
        lr_scale_batch: apply SimCLR's linear LR scaling.
        weight_decay: weight decay (REMEDIS: 1e-6).
        warmup_epochs: linear warmup epochs before cosine decay.
        num_workers: data loader workers.
        device: ``auto`` (GPU of this rank if any) or a device string.
        amp: bf16 autocast.
        epoch_length: iterations per epoch (default: one pass over the data).
        resume: continue from the latest checkpoint in ``output_dir``.
        seed: random seed.
        log_every: log every this many iterations.
        progress_bar: show a progress bar.
        load_transform: the bundle's loading transform; with ``view_transform``, lets a strategy that needs its
            own pipeline (:meth:`~monai_remedis.ssl.base.SSLStrategy.data_transform`) build it in place of
            ``transform``.
        view_transform: the bundle's augmentation of one view.
        cache_decoded: decode each item once (the deterministic head of ``transform``) and run only the view
            augmentations per epoch, without MetaTensor tracking (:func:`~monai_remedis.evaluation.cache.decode_once`);
            turn off for data that does not fit in memory.
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
        max_epochs: int = 10,
        batch_size: int = 256,
        optimizer: str = "lars",
        learning_rate: float = 0.3,
        lr_scale_batch: bool = True,
        weight_decay: float = 1e-6,
        warmup_epochs: float = 1.0,
        num_workers: int = 0,
        device: str = "auto",
        amp: bool = False,
        epoch_length: int | None = None,
        resume: bool = False,
        seed: int = 0,
        log_every: int = 20,
        progress_bar: bool = False,
        cache_decoded: bool = True,
        load_transform: Callable | None = None,
        view_transform: Callable | None = None,
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
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.optimizer_name = optimizer
        self.learning_rate = learning_rate
        self.lr_scale_batch = lr_scale_batch
        self.weight_decay = weight_decay
        self.warmup_epochs = warmup_epochs
        self.num_workers = num_workers
        self.device = device
        self.amp = amp
        self.epoch_length = epoch_length
        self.resume = resume
        self.seed = seed
        self.log_every = log_every
        self.progress_bar = progress_bar
        self.cache_decoded = cache_decoded
        if load_transform is not None and view_transform is not None:
            custom = strategy_data_transform(strategy, load_transform, view_transform, self.strategy_kwargs)
            if custom is not None:
                self.transform = custom

    def _data(self) -> tuple[list[dict[str, Any]], Callable]:
        """The items and the per-epoch transform (decoded once when ``cache_decoded``)."""
        if self.cache_decoded:
            return decode_once(self.datalist, self.transform)
        return self.datalist, self.transform

    def _config(self) -> dict[str, Any]:
        keys = (
            "strategy_name",
            "strategy_kwargs",
            "init_weights",
            "max_epochs",
            "batch_size",
            "optimizer_name",
            "learning_rate",
            "lr_scale_batch",
            "weight_decay",
            "warmup_epochs",
            "amp",
            "epoch_length",
            "seed",
        )
        return {k: getattr(self, k) for k in keys} | {"num_items": len(self.datalist)}

    def run(self) -> dict[str, str]:
        """Train and export; returns paths of the artefacts (``backbone``, ``history``, ``run_dir``)."""
        device = resolve_device(self.device)  # first: under torchrun this initialises the process group
        run_dir = prepare_run_dir(self.output_dir, self.seed)
        if self.init_weights:
            load_backbone_weights(self.backbone, self.init_weights)
        strategy = create_strategy(self.strategy_name, backbone=self.backbone, **self.strategy_kwargs)
        if is_main_process():
            _warn_if_queue_exceeds_data(self.strategy_name, strategy, len(self.datalist), self.batch_size)
        network = idist.auto_model(strategy, sync_bn=idist.get_world_size() > 1 and device.type == "cuda")
        loader = make_loader(Dataset(*self._data()), self.batch_size, True, self.num_workers, drop_last=True)
        steps_per_epoch = self.epoch_length or len(loader)
        lr = scaled_lr(self.learning_rate, self.batch_size, self.lr_scale_batch)
        optimizer = build_optimizer(strategy, self.optimizer_name, lr, self.weight_decay)
        scheduler = warmup_cosine(
            optimizer, self.max_epochs * steps_per_epoch, int(self.warmup_epochs * steps_per_epoch)
        )
        trainer = SSLTrainer(
            device,
            self.max_epochs,
            loader,
            network,
            optimizer,
            epoch_length=self.epoch_length,
            amp=self.amp,
            non_blocking=device.type == "cuda",
        )
        if is_main_process():  # e.g. PEAC's correspondence heat map of the first pair
            trainer.add_event_handler(
                Events.ITERATION_STARTED(once=1), lambda e: strategy.write_preview(e.state.batch, run_dir)
            )
        history_path = run_dir / "history.json"
        history = HistoryRecorder(history_path, _resumable_history(history_path) if self.resume else None)
        to_save = {"network": strategy, "optimizer": optimizer, "lr_scheduler": scheduler, "trainer": trainer}
        resumed = attach_training_handlers(
            trainer,
            run_dir,
            to_save,
            scheduler,
            resume=self.resume,
            log_every=self.log_every,
            progress_bar=self.progress_bar,
            history=history,
        )
        if resumed is not None:
            _trim_history(history, resumed)
        logger.info(
            "SSL %s: %d images, %d steps/epoch, lr %.4g, %d epochs on %s (world %d)",
            self.strategy_name,
            len(self.datalist),
            steps_per_epoch,
            lr,
            self.max_epochs,
            device,
            idist.get_world_size(),
        )
        trainer.run()
        backbone_path = run_dir / "backbone.pt"
        if is_main_process():
            atomic_torch_save(strategy.transferable_state_dict(), backbone_path)
            atomic_write_json(provenance("ssl", self._config(), [self.init_weights]), run_dir / "provenance.json")
        return {"backbone": str(backbone_path), "history": str(history_path), "run_dir": str(run_dir)}


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


def _resumable_history(path: Path) -> dict[str, list[float]] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _trim_history(history: HistoryRecorder, checkpoint: Path) -> None:
    """Drop history epochs recorded after the checkpoint being resumed (they will be re-run)."""
    epoch = int(checkpoint.stem.split("_")[-1])
    epochs = history.history.get("epoch", [])
    keep = sum(1 for e in epochs if e <= epoch)
    for key in list(history.history):
        history.history[key] = history.history[key][:keep]
