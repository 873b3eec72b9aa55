"""Supervised classifier training shared by stage 1 (pretraining) and stage 3 (fine-tuning).

Model selection uses the validation datalist only: the best validation AUC picks the exported checkpoint.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import ignite.distributed as idist
import torch
import torch.nn as nn
from ignite.engine import Events
from ignite.handlers import Checkpoint, EarlyStopping
from monai.data import Dataset
from monai.engines import SupervisedEvaluator, SupervisedTrainer
from monai.handlers import ROCAUC, ValidationHandler, from_engine
from monai.inferers import Inferer
from monai.transforms import Activationsd, AsDiscreted, Compose

from monai_remedis.data.validation import check_splits
from monai_remedis.engines.handlers import HistoryRecorder, attach_training_handlers
from monai_remedis.engines.runtime import atomic_torch_save, is_main_process, make_loader, resolve_device
from monai_remedis.evaluation.cache import decode_once
from monai_remedis.evaluation.guard import HELD_OUT_SPLITS
from monai_remedis.evaluation.sweep import CHANCE_AUC_MARGIN
from monai_remedis.models.classifier import Classifier
from monai_remedis.optim import build_optimizer, warmup_cosine
from monai_remedis.stages.config import OptimConfig, RuntimeConfig
from monai_remedis.stages.engines import (
    StageEngines,
    as_monai_output,
    attach_extra_handlers,
    restore_artifacts,
    with_artifacts,
)

logger = logging.getLogger("monai_remedis")


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
    optim: OptimConfig,
    runtime: RuntimeConfig,
) -> dict[str, Any]:
    """Train ``model`` with MONAI's ``SupervisedTrainer``; validate with ``SupervisedEvaluator``.

    :func:`build_classifier_engines` then :func:`run_classifier_engines` (see there).

    Returns:
        ``{"classifier": path, "best_val_auc": float | None, "best_epoch": int, "epochs": int}``.
    """
    engines = build_classifier_engines(
        model, train_datalist, train_transform, val_datalist, val_transform, run_dir, optim, runtime
    )
    return run_classifier_engines(engines, run_dir, runtime)


def build_classifier_engines(
    model: Classifier,
    train_datalist: Sequence[dict[str, Any]],
    train_transform: Callable,
    val_datalist: Sequence[dict[str, Any]] | None,
    val_transform: Callable | None,
    run_dir: Path,
    optim: OptimConfig,
    runtime: RuntimeConfig,
    train_handlers: Sequence[Any] = (),
    val_handlers: Sequence[Any] = (),
    inferer: Inferer | None = None,
) -> StageEngines:
    """MONAI's ``SupervisedTrainer`` for ``model`` and, with a validation set, its ``SupervisedEvaluator``.

    Nothing is written: the best-validation saver, early stopping and validation are attached, the checkpoint,
    history and logging handlers are attached by :func:`run_classifier_engines`, then ``train_handlers`` and
    ``val_handlers``. The run trains ``optim.max_epochs`` epochs, or more to reach ``optim.min_steps`` steps.
    """
    if not train_datalist:
        raise ValueError("train_classifier: the training datalist is empty.")
    if val_datalist:
        guard_validation_split(val_datalist)  # before any decoding: a leak fails fast
    device = resolve_device(runtime.device)
    num_classes = model.head[-1].out_features
    check_splits(train_datalist, val_datalist, num_classes)  # labels in range; one-class splits refused
    if runtime.cache_decoded:
        train_datalist, train_transform = decode_once(train_datalist, train_transform)
        if val_datalist:
            val_datalist, val_transform = decode_once(val_datalist, val_transform)
    network = idist.auto_model(model)
    train_loader = make_loader(
        Dataset(list(train_datalist), transform=train_transform),
        min(optim.batch_size, len(train_datalist)),
        shuffle=True,
        num_workers=runtime.num_workers,
        drop_last=len(train_datalist) > optim.batch_size,
    )
    steps = runtime.epoch_length or len(train_loader)
    max_epochs = max(optim.max_epochs, math.ceil(optim.min_steps / steps))
    optimizer = build_optimizer(
        model, optim.optimizer, optim.learning_rate, optim.weight_decay, lr_scales={"backbone": optim.backbone_lr_scale}
    )
    scheduler = warmup_cosine(optimizer, max_epochs * steps, int(optim.warmup_epochs * steps))
    amp_kwargs = {"dtype": torch.bfloat16} if runtime.amp else None
    trainer = SupervisedTrainer(
        device=device,
        max_epochs=max_epochs,
        train_data_loader=train_loader,
        network=network,
        optimizer=optimizer,
        loss_function=nn.CrossEntropyLoss(label_smoothing=optim.label_smoothing),
        epoch_length=runtime.epoch_length,
        inferer=inferer,
        amp=runtime.amp,
        amp_kwargs=amp_kwargs,
        decollate=False,
        non_blocking=device.type == "cuda",
    )
    trainer.add_event_handler(Events.ITERATION_COMPLETED, as_monai_output)  # first: MONAI handlers read the loss
    classifier_path = run_dir / "classifier.pt"
    to_save: dict[str, Any] = {"network": model, "optimizer": optimizer, "lr_scheduler": scheduler, "trainer": trainer}
    best: Checkpoint | None = None
    evaluator: SupervisedEvaluator | None = None
    if val_datalist:
        val_loader = make_loader(
            Dataset(list(val_datalist), transform=val_transform), optim.batch_size, False, runtime.num_workers
        )
        evaluator = SupervisedEvaluator(
            device=device,
            val_data_loader=val_loader,
            network=network,
            inferer=inferer,
            postprocessing=_postprocessing(num_classes),
            key_val_metric={"val_auc": ROCAUC(output_transform=from_engine(["pred", "label"]))},
            amp=runtime.amp,
            amp_kwargs=amp_kwargs,
        )
        best = best_model_saver(model, classifier_path, trainer)
        evaluator.add_event_handler(Events.COMPLETED, best)
        to_save["best_model"] = best  # its record of the best score resumes with the run

        @evaluator.on(Events.COMPLETED)
        def _report_to_trainer(engine: SupervisedEvaluator) -> None:  # history.json records val_auc per epoch
            trainer.state.metrics["val_auc"] = float(engine.state.metrics["val_auc"])

        @trainer.on(Events.EPOCH_STARTED)
        def _forget_last_validation(engine: SupervisedTrainer) -> None:  # no validation this epoch: no val_auc
            engine.state.metrics.pop("val_auc", None)

        interval = max(1, max_epochs // max(1, runtime.val_evaluations))
        ValidationHandler(interval=interval, validator=evaluator, epoch_level=True).attach(trainer)
        if optim.patience > 0:
            stopper = EarlyStopping(optim.patience, lambda engine: float(engine.state.metrics["val_auc"]), trainer)
            evaluator.add_event_handler(Events.COMPLETED, stopper)
    state = {
        "model": model,
        "to_save": to_save,
        "scheduler": scheduler,
        "best": best,
        "path": classifier_path,
        # LP-FT: the probe head makes the untrained model a real candidate, so it is validated before the first step
        "validate_at_start": evaluator is not None and optim.head_init == "probe",
    }
    return StageEngines(trainer, evaluator, list(train_handlers), list(val_handlers), state)


def run_classifier_engines(engines: StageEngines, run_dir: Path, runtime: RuntimeConfig) -> dict[str, Any]:
    """Attach the run's handlers and train the engines of :func:`build_classifier_engines`.

    The best validation AUC is kept by Ignite's ``Checkpoint(score_function=...)`` as ``run_dir/classifier.pt``
    (written atomically; its record of the best score is part of the resumable checkpoints, so a resumed run only
    replaces the file with a better model). With a probe head (LP-FT) the model is also validated before its first
    step, so the probe itself is a candidate (``best_epoch`` 0) when no fine-tuned state beats it on validation.
    Without a validation set the last epoch is exported. Also writes
    ``run_dir/history.json``, the resumable checkpoints and TensorBoard events (``runtime.tensorboard``).

    Returns:
        ``{"classifier": path, "best_val_auc": float | None, "best_epoch": int, "epochs": int}``.
    """
    trainer, model, best = engines.trainer, engines.state["model"], engines.state["best"]
    classifier_path = engines.state["path"]
    history = HistoryRecorder(run_dir / "history.json", resume=runtime.resume, publish=True)
    attach_training_handlers(
        trainer,
        run_dir,
        engines.state["to_save"],
        engines.state["scheduler"],
        resume=runtime.resume,
        log_every=runtime.log_every,
        progress_bar=runtime.progress_bar,
        history=history,
        tensorboard=runtime.tensorboard,
    )
    if engines.state.get("validate_at_start"):
        # after the resume loader (also on STARTED): a resumed run has steps behind it and is not validated again
        trainer.add_event_handler(Events.STARTED, _validate_before_first_step, engines.evaluator)
    attach_extra_handlers(engines)
    changed = with_artifacts(engines.train_handlers, [run_dir / "history.json"])
    try:
        trainer.run()
    finally:
        restore_artifacts(changed)
    result: dict[str, Any] = {"best_val_auc": None, "best_epoch": trainer.state.epoch}
    if best is None or not best.state_dict()["_saved"]:
        if is_main_process():
            atomic_torch_save(model.state_dict(), classifier_path)
    else:
        score, name = best.state_dict()["_saved"][-1]
        result.update(best_val_auc=float(score), best_epoch=int(name.split("=")[-1]))
        model.load_state_dict(torch.load(classifier_path, map_location="cpu", weights_only=True))
        if score < CHANCE_AUC_MARGIN and is_main_process():
            logger.warning(
                "%s: the model did not learn: best validation AUC %.3f after %d epochs (chance 0.5). A diverged run "
                "(learning rate too high), too few steps or wrong labels are the usual causes.",
                run_dir,
                score,
                trainer.state.epoch,
            )
    return {"classifier": str(classifier_path), "epochs": trainer.state.epoch, **result}


def _validate_before_first_step(trainer: Any, evaluator: SupervisedEvaluator) -> None:
    """Validate the model as it starts (epoch 0), so checkpoint selection and early stopping count it."""
    if trainer.state.iteration == 0:
        evaluator.run()


def best_model_saver(model: nn.Module, path: Path, trainer: Any, metric: str = "val_auc") -> Checkpoint:
    """Ignite ``Checkpoint`` keeping the state dict of the model with the highest ``metric`` at ``path``.

    Attach it to the evaluator's ``COMPLETED`` event. The file is replaced atomically (rank 0) and only by a
    strictly better score; the saver's ``state_dict()`` lists ``(score, "epoch=<trainer epoch>")``, the epoch that
    produced the file.
    """

    def save(state: dict[str, Any], filename: str, metadata: dict[str, Any] | None = None) -> None:
        if is_main_process():
            atomic_torch_save(state, path)

    return Checkpoint(
        {"model": model},
        save,
        score_function=lambda engine: float(engine.state.metrics[metric]),
        score_name=metric,
        n_saved=1,
        global_step_transform=lambda *_: trainer.state.epoch,
        filename_pattern="epoch={global_step}",
    )
