"""Supervised classifier training shared by stage 1 (pretraining) and stage 3 (fine-tuning).

Model selection uses the validation datalist only: the best validation AUC picks the exported checkpoint.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ignite.distributed as idist
import torch
import torch.nn as nn
from ignite.engine import Events
from ignite.handlers import EarlyStopping
from monai.data import Dataset
from monai.engines import SupervisedEvaluator, SupervisedTrainer
from monai.handlers import ROCAUC, ValidationHandler, from_engine
from monai.transforms import Activationsd, AsDiscreted, Compose

from monai_remedis.engines.handlers import HistoryRecorder, attach_training_handlers
from monai_remedis.engines.runtime import (
    atomic_torch_save,
    atomic_write_json,
    is_main_process,
    make_loader,
    resolve_device,
)
from monai_remedis.evaluation.cache import decode_once
from monai_remedis.evaluation.guard import HELD_OUT_SPLITS
from monai_remedis.evaluation.sweep import CHANCE_AUC_MARGIN
from monai_remedis.models.classifier import Classifier
from monai_remedis.optim import build_optimizer, warmup_cosine

logger = logging.getLogger("monai_remedis")


@dataclass
class TrainConfig:
    """Optimisation settings of a supervised run."""

    max_epochs: int = 10
    batch_size: int = 128
    optimizer: str = "sgd"
    learning_rate: float = 0.01
    weight_decay: float = 1e-4
    warmup_epochs: float = 0.5
    num_workers: int = 0
    device: str = "auto"
    amp: bool = False
    epoch_length: int | None = None
    resume: bool = False
    log_every: int = 50
    progress_bar: bool = False
    label_smoothing: float = 0.0
    min_steps: int = 0
    """Train at least this many optimiser steps: small label fractions get more epochs (as BiT-HyperRule)."""
    val_evaluations: int = 10
    """Validate about this many times per run (every epoch when epochs are fewer)."""
    patience: int = 0
    """Stop when this many validations in a row bring no better validation AUC (0 = train the whole budget). With
    the best-validation checkpoint this chooses each run's step budget on validation data by one rule for every
    init: an init that still improves keeps training, one that peaked stops (issue 11: a fixed step count had the
    baseline peaked while SSL inits still improved)."""
    cache_decoded: bool = True
    """Decode each item once (the deterministic head of the transforms) and run only the augmentations per epoch,
    without MetaTensor tracking (:func:`~monai_remedis.evaluation.cache.decode_once`). Turn off for data that
    does not fit in memory."""


def guard_validation_split(val_datalist: Sequence[dict[str, Any]]) -> None:
    """Refuse validation items tagged as test/OOD data: model selection must not see held-out sets.

    Raises:
        ValueError: naming the first offending item.
    """
    for i, item in enumerate(val_datalist):
        if str(item.get("split", "")).lower() in HELD_OUT_SPLITS:
            raise ValueError(
                f"validation item {i} ({item.get('id', '?')}) is tagged split='{item['split']}': test and OOD data "
                "must not be used for checkpoint selection or early stopping. Pass a validation split instead."
            )


def _postprocessing(num_classes: int) -> Compose:
    return Compose([Activationsd(keys="pred", softmax=True), AsDiscreted(keys="label", to_onehot=num_classes)])


def train_classifier(
    model: Classifier,
    train_datalist: Sequence[dict[str, Any]],
    train_transform: Callable,
    val_datalist: Sequence[dict[str, Any]] | None,
    val_transform: Callable | None,
    run_dir: Path,
    cfg: TrainConfig,
) -> dict[str, Any]:
    """Train ``model`` with MONAI's ``SupervisedTrainer``; validate each epoch with ``SupervisedEvaluator``.

    Writes ``run_dir/classifier.pt`` (best validation AUC; the last epoch when no validation set),
    ``run_dir/history.json`` and resumable checkpoints.

    Returns:
        ``{"classifier": path, "best_val_auc": float | None, "best_epoch": int, "epochs": int}``.
    """
    if not train_datalist:
        raise ValueError("train_classifier: the training datalist is empty.")
    if val_datalist:
        guard_validation_split(val_datalist)  # before any decoding: a leak fails fast
    device = resolve_device(cfg.device)
    num_classes = model.head[-1].out_features
    if cfg.cache_decoded:
        train_datalist, train_transform = decode_once(train_datalist, train_transform)
        if val_datalist:
            val_datalist, val_transform = decode_once(val_datalist, val_transform)
    network = idist.auto_model(model)
    train_loader = make_loader(
        Dataset(list(train_datalist), transform=train_transform),
        min(cfg.batch_size, len(train_datalist)),
        shuffle=True,
        num_workers=cfg.num_workers,
        drop_last=len(train_datalist) > cfg.batch_size,
    )
    steps = cfg.epoch_length or len(train_loader)
    max_epochs = max(cfg.max_epochs, math.ceil(cfg.min_steps / steps))
    optimizer = build_optimizer(model, cfg.optimizer, cfg.learning_rate, cfg.weight_decay)
    scheduler = warmup_cosine(optimizer, max_epochs * steps, int(cfg.warmup_epochs * steps))
    trainer = SupervisedTrainer(
        device=device,
        max_epochs=max_epochs,
        train_data_loader=train_loader,
        network=network,
        optimizer=optimizer,
        loss_function=nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing),
        epoch_length=cfg.epoch_length,
        amp=cfg.amp,
        amp_kwargs={"dtype": torch.bfloat16} if cfg.amp else None,
        decollate=False,
        non_blocking=device.type == "cuda",
    )
    classifier_path = run_dir / "classifier.pt"
    best_path = run_dir / "best.json"
    best: dict[str, Any] = {"best_val_auc": None, "best_epoch": 0}
    if cfg.resume and best_path.is_file():
        best.update(json.loads(best_path.read_text()))
    if val_datalist:
        val_loader = make_loader(
            Dataset(list(val_datalist), transform=val_transform), cfg.batch_size, False, cfg.num_workers
        )
        evaluator = SupervisedEvaluator(
            device=device,
            val_data_loader=val_loader,
            network=network,
            postprocessing=_postprocessing(num_classes),
            key_val_metric={"val_auc": ROCAUC(output_transform=from_engine(["pred", "label"]))},
            amp=cfg.amp,
            amp_kwargs={"dtype": torch.bfloat16} if cfg.amp else None,
        )

        @evaluator.on(Events.EPOCH_COMPLETED)
        def _save_best(engine: SupervisedEvaluator) -> None:
            auc = float(engine.state.metrics["val_auc"])
            trainer.state.metrics["val_auc"] = auc
            if best["best_val_auc"] is None or auc > best["best_val_auc"]:
                best.update(best_val_auc=auc, best_epoch=trainer.state.epoch)
                if is_main_process():
                    atomic_torch_save(model.state_dict(), classifier_path)
                    atomic_write_json(best, best_path)

        interval = max(1, max_epochs // max(1, cfg.val_evaluations))
        ValidationHandler(interval=interval, validator=evaluator, epoch_level=True).attach(trainer)
        if cfg.patience > 0:
            stopper = EarlyStopping(cfg.patience, lambda engine: float(engine.state.metrics["val_auc"]), trainer)
            evaluator.add_event_handler(Events.COMPLETED, stopper)
    history = HistoryRecorder(run_dir / "history.json")
    to_save = {"network": model, "optimizer": optimizer, "lr_scheduler": scheduler, "trainer": trainer}
    attach_training_handlers(
        trainer,
        run_dir,
        to_save,
        scheduler,
        resume=cfg.resume,
        log_every=cfg.log_every,
        progress_bar=cfg.progress_bar,
        history=history,
    )
    trainer.run()
    if not val_datalist and is_main_process():
        atomic_torch_save(model.state_dict(), classifier_path)
        best["best_epoch"] = trainer.state.epoch
    if best["best_val_auc"] is not None:
        model.load_state_dict(torch.load(classifier_path, map_location="cpu", weights_only=True))
        if best["best_val_auc"] < CHANCE_AUC_MARGIN and is_main_process():
            logger.warning(
                "%s: the model did not learn: best validation AUC %.3f after %d epochs (chance 0.5). A diverged run "
                "(learning rate too high), too few steps or wrong labels are the usual causes.",
                run_dir,
                best["best_val_auc"],
                trainer.state.epoch,
            )
    return {"classifier": str(classifier_path), "epochs": trainer.state.epoch, **best}
