"""Stage 1: supervised pretraining on natural images, or import of published weights (BiT, timm)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch.nn as nn
from ignite.engine import Engine

from monai_remedis.backbones.weights import load_backbone_weights
from monai_remedis.engines.fingerprint import claim_run_dir, file_digest, make_fingerprint, release_run_dir
from monai_remedis.engines.runtime import (
    atomic_torch_save,
    atomic_write_json,
    is_main_process,
    prepare_run_dir,
    provenance,
    resolve_device,
)
from monai_remedis.evaluation.predict import predict
from monai_remedis.evaluation.representation import stage_probe
from monai_remedis.evaluation.statistics import classification_metrics
from monai_remedis.models.classifier import Classifier
from monai_remedis.stages.config import OptimConfig, RuntimeConfig, as_dict, fingerprint_runtime
from monai_remedis.stages.engines import StageEngines, engines_to_run
from monai_remedis.stages.supervised import build_classifier_engines, run_classifier_engines

logger = logging.getLogger("monai_remedis")


class PretrainStage:
    """Produce the stage-1 backbone (``backbone.pt``).

    With ``weights`` (a local BiT ``.npz`` or timm/torch checkpoint) the published weights are imported and no
    training happens: this is the REMEDIS setting (BiT-M ImageNet-21k). Without, the backbone is trained
    supervised on the labelled natural-image datalist (e.g. the CIFAR-10 subset in tests).

    Args:
        backbone: the backbone to pretrain.
        output_dir: run directory (``backbone.pt``, ``classifier.pt``, ``metrics.json``, ``provenance.json``).
        train_datalist: labelled natural images (ignored when ``weights`` is given).
        train_transform: training transform (ignored when ``weights`` is given).
        val_datalist: optional validation set for model selection and reported accuracy.
        val_transform: validation transform.
        num_classes: classes of the pretraining task.
        weights: published weights to import instead of training.
        optim: optimisation of the supervised run.
        runtime: device, precision, seed, resume and logging.
        diagnostics: ``{"train", "val", "transform"}`` of a labelled medical set: the exported backbone's feature
            effective rank, cosine and linear-probe AUC on it go into ``metrics.json`` under ``representation``
            (:func:`~monai_remedis.evaluation.representation.stage_probe`).
    """

    def __init__(
        self,
        backbone: nn.Module,
        output_dir: str | Path,
        train_datalist: Sequence[dict[str, Any]] | None = None,
        train_transform: Callable | None = None,
        val_datalist: Sequence[dict[str, Any]] | None = None,
        val_transform: Callable | None = None,
        num_classes: int = 10,
        weights: str | Path | None = None,
        optim: OptimConfig | None = None,
        runtime: RuntimeConfig | None = None,
        diagnostics: Mapping[str, Any] | None = None,
    ) -> None:
        if weights is None and not train_datalist:
            raise ValueError("PretrainStage needs either 'weights' (published checkpoint) or a 'train_datalist'.")
        self.backbone = backbone
        self.output_dir = Path(output_dir)
        self.train_datalist = train_datalist
        self.train_transform = train_transform
        self.val_datalist = val_datalist
        self.val_transform = val_transform
        self.num_classes = num_classes
        self.weights = weights
        self.optim = optim or OptimConfig()
        self.runtime = runtime or RuntimeConfig()
        self.diagnostics = diagnostics
        self.engines: StageEngines | None = None

    def build(
        self,
        max_epochs: int | None = None,
        train_handlers: Sequence[Any] = (),
        val_handlers: Sequence[Any] = (),
        inferer: Any | None = None,
    ) -> StageEngines | None:
        """Build the supervised trainer and evaluator (None when importing ``weights``: nothing trains); nothing is
        written. ``max_epochs`` replaces ``optim.max_epochs``; the extra handlers are attached when the run starts."""
        if max_epochs is not None:
            self.optim = replace(self.optim, max_epochs=int(max_epochs))
        if self.weights:
            self.engines = None
            return None
        run_dir = prepare_run_dir(self.output_dir, self.runtime.seed)
        self.engines = build_classifier_engines(
            Classifier(self.backbone, self.num_classes), self.train_datalist, self.train_transform,
            self.val_datalist, self.val_transform, run_dir, self.optim, self.runtime, train_handlers, val_handlers,
            inferer,
        )  # fmt: skip
        self.engines.state["run_dir"] = run_dir
        return self.engines

    def run(self, trainer: Engine | None = None) -> dict[str, Any]:
        """Import or train, then export ``backbone.pt``; returns artefact paths and metrics.

        Trains the engines :meth:`build` made for ``trainer`` (``$@pretrain.run(@train#trainer)``), else builds
        them. ``metrics.json`` holds the best validation AUC and, with a validation set, ``val_accuracy`` of the
        exported model.
        """
        engines = None if self.weights else engines_to_run(self, trainer)
        run_dir = engines.state["run_dir"] if engines else prepare_run_dir(self.output_dir, self.runtime.seed)
        config = {
            "num_classes": self.num_classes,
            "weights": self.weights,
            "optim": as_dict(self.optim),
            "runtime": as_dict(self.runtime),
        }
        science = {**config, "runtime": fingerprint_runtime(self.runtime)}
        data = {"train": self.train_datalist, "val": self.val_datalist} if not self.weights else {}
        transforms = (
            {"train": (self.train_transform, self.train_datalist), "val": (self.val_transform, self.val_datalist)}
            if not self.weights
            else {}
        )
        fingerprint = make_fingerprint("pretrain", science, {"weights": self.weights}, data, transforms)
        runtime = replace(self.runtime, resume=claim_run_dir(run_dir, fingerprint, self.runtime.resume))
        result: dict[str, Any] = {"run_dir": str(run_dir)}
        if self.weights:
            load_backbone_weights(self.backbone, self.weights)
            result["imported"] = str(self.weights)
        else:
            model = engines.state["model"]
            result.update(run_classifier_engines(engines, run_dir, runtime))
            if self.val_datalist and is_main_process():  # the selected model's accuracy: the number users quote
                probs, labels = predict(
                    model.eval(), self.val_datalist, self.val_transform, device=resolve_device(self.runtime.device)
                )
                result["val_accuracy"] = float(classification_metrics(probs, labels)["accuracy"])
                logger.info("stage 1: validation accuracy %.4f (%d images)", result["val_accuracy"], len(labels))
        backbone_path = run_dir / "backbone.pt"
        result["backbone"] = str(backbone_path)
        if is_main_process():
            device = resolve_device(self.runtime.device)
            probed = stage_probe("stage 1", self.backbone, self.diagnostics, device)
            result["representation"] = None if probed is None else probed.scores
            atomic_torch_save(self.backbone.state_dict(), backbone_path)
            result["backbone_sha256"] = file_digest(backbone_path)  # lets the report tell this run's backbone
            atomic_write_json(result, run_dir / "metrics.json")
            atomic_write_json(provenance("pretrain", config, [self.weights]), run_dir / "provenance.json")
        release_run_dir(run_dir)
        return result
