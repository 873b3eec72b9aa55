"""Stage 3: fine-tune (or linear-probe) a transferred backbone on a fraction of the labels."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch.nn as nn
from ignite.engine import Engine

from monai_remedis.backbones.weights import load_backbone_weights
from monai_remedis.data.fractions import label_fraction
from monai_remedis.engines.fingerprint import claim_run_dir, make_fingerprint, release_run_dir
from monai_remedis.engines.runtime import (
    atomic_write_json,
    is_main_process,
    prepare_run_dir,
    provenance,
    resolve_device,
)
from monai_remedis.inference.export import export_bundle_model
from monai_remedis.models.classifier import Classifier
from monai_remedis.models.head_init import probe_head_init
from monai_remedis.stages.config import OptimConfig, RuntimeConfig, as_dict, fingerprint_runtime
from monai_remedis.stages.engines import StageEngines, engines_to_run
from monai_remedis.stages.supervised import build_classifier_engines, run_classifier_engines

logger = logging.getLogger("monai_remedis")


class FinetuneStage:
    """Fine-tune a classifier from a stage-1 or stage-2 backbone checkpoint.

    Args:
        backbone: the backbone architecture (weights come from ``init_weights``).
        num_classes: task classes.
        train_datalist: labelled training items.
        train_transform: training transform (task augmentations).
        output_dir: run directory (``classifier.pt``, ``metrics.json``, ``history.json``, ``provenance.json``).
        val_datalist: validation items used for checkpoint selection (never test or OOD data).
        val_transform: validation transform.
        init_weights: backbone checkpoint (``backbone.pt`` of stage 1 or 2); None trains from scratch.
        label_fraction: fraction of ``train_datalist`` labels used, stratified and deterministic per seed.
        fraction_seed: seed of the label subset.
        linear_probe: freeze the backbone and train the linear head only.
        dropout: dropout before the head.
        optim: optimisation of the run.
        runtime: device, precision, seed (of training), resume and logging.
        export_model: also write ``classifier.pt`` here (``<bundle_root>/models/model.pt``, what MONAI's bundle
            tools load); None: no export.
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        train_datalist: Sequence[dict[str, Any]],
        train_transform: Callable,
        output_dir: str | Path,
        val_datalist: Sequence[dict[str, Any]] | None = None,
        val_transform: Callable | None = None,
        init_weights: str | Path | None = None,
        label_fraction: float = 1.0,
        fraction_seed: int = 0,
        linear_probe: bool = False,
        dropout: float = 0.0,
        optim: OptimConfig | None = None,
        runtime: RuntimeConfig | None = None,
        export_model: str | Path | None = None,
    ) -> None:
        self.backbone = backbone
        self.num_classes = num_classes
        self.train_datalist = list(train_datalist)
        self.train_transform = train_transform
        self.output_dir = Path(output_dir)
        self.val_datalist = val_datalist
        self.val_transform = val_transform
        self.init_weights = init_weights
        self.label_fraction = label_fraction
        self.fraction_seed = fraction_seed
        self.linear_probe = linear_probe
        self.dropout = dropout
        self.optim = optim or OptimConfig()
        self.runtime = runtime or RuntimeConfig()
        self.engines: StageEngines | None = None
        self.export_model = export_model

    def build_model(self, load_weights: bool = True) -> Classifier:
        """The classifier with the transferred backbone weights loaded (``load_weights``)."""
        if self.init_weights and load_weights:
            load_backbone_weights(self.backbone, self.init_weights)
        return Classifier(self.backbone, self.num_classes, dropout=self.dropout, freeze_backbone=self.linear_probe)

    def build(
        self,
        max_epochs: int | None = None,
        train_handlers: Sequence[Any] = (),
        val_handlers: Sequence[Any] = (),
        inferer: Any | None = None,
    ) -> StageEngines:
        """Build the trainer and evaluator (``train#trainer``, ``validate#evaluator``); nothing is written.

        ``init_weights`` are loaded here when the file exists, else by :meth:`run` (so MONAI's ``check_properties``
        can build a bundle whose earlier stages never ran). ``max_epochs`` replaces ``optim.max_epochs``; the extra
        handlers are attached when the run starts (:mod:`monai_remedis.stages.engines`)."""
        if max_epochs is not None:
            self.optim = replace(self.optim, max_epochs=int(max_epochs))
        run_dir = prepare_run_dir(self.output_dir, self.runtime.seed)
        subset = label_fraction(self.train_datalist, self.label_fraction, self.fraction_seed)
        loaded = not self.init_weights or Path(self.init_weights).is_file()
        model = self.build_model(load_weights=loaded)
        self.engines = build_classifier_engines(
            model, subset, self.train_transform, self.val_datalist, self.val_transform, run_dir, self.optim,
            self.runtime, train_handlers, val_handlers, inferer,
        )  # fmt: skip
        self.engines.state.update(run_dir=run_dir, subset=subset, weights_loaded=loaded)
        return self.engines

    def run(self, trainer: Engine | None = None) -> dict[str, Any]:
        """Fine-tune; returns artefact paths, the number of labels used and the best validation AUC.

        Runs the engines :meth:`build` made for ``trainer`` (``$@finetune.run(@train#trainer)``), else builds them.
        """
        engines = engines_to_run(self, trainer)
        run_dir, subset, model = engines.state["run_dir"], engines.state["subset"], engines.state["model"]
        if not engines.state["weights_loaded"]:  # raises, naming the file, when it is still missing
            load_backbone_weights(self.backbone, self.init_weights)
        fingerprint = make_fingerprint(
            "finetune",
            self._fingerprint_config(model),
            {"init_weights": self.init_weights},
            {"train": subset, "val": self.val_datalist},
            {"train": (self.train_transform, subset), "val": (self.val_transform, self.val_datalist)},
        )
        runtime = replace(self.runtime, resume=claim_run_dir(run_dir, fingerprint, self.runtime.resume))
        logger.info(
            "fine-tune (%s) on %d of %d labelled items (fraction %.3g, seed %d) from %s",
            "linear probe" if self.linear_probe else "full",
            len(subset),
            len(self.train_datalist),
            self.label_fraction,
            self.fraction_seed,
            self.init_weights or "scratch",
        )
        if self.optim.head_init == "probe":
            probe = probe_head_init(
                model,
                subset,
                self.val_transform or self.train_transform,
                self.val_datalist,
                self.val_transform,
                resolve_device(self.runtime.device),
            )
            logger.info("head initialised from a linear probe: l2 %g, validation AUC %s", probe.l2, probe.val_auc)
        result = run_classifier_engines(engines, run_dir, runtime)
        result.update(
            run_dir=str(run_dir),
            num_labels=len(subset),
            label_fraction=self.label_fraction,
            fraction_seed=self.fraction_seed,
            init_weights=str(self.init_weights or ""),
            head_init=self.optim.head_init,
        )
        if self.optim.head_init == "probe":
            result.update(probe_val_auc=probe.val_auc, probe_l2=probe.l2)
        if is_main_process():
            atomic_write_json(result, run_dir / "metrics.json")
            config = {
                "num_classes": self.num_classes,
                "label_fraction": self.label_fraction,
                "fraction_seed": self.fraction_seed,
                "linear_probe": self.linear_probe,
                "optim": as_dict(self.optim),
                "runtime": as_dict(self.runtime),
            }
            atomic_write_json(provenance("finetune", config, [self.init_weights]), run_dir / "provenance.json")
            if self.export_model:
                result["model"] = str(export_bundle_model(result["classifier"], self.export_model))
        release_run_dir(run_dir)
        return result

    def _fingerprint_config(self, model: nn.Module) -> dict[str, Any]:
        """What besides the train options decides this run's result (for its fingerprint)."""
        return {
            "optim": as_dict(self.optim),
            "runtime": fingerprint_runtime(self.runtime),
            "num_classes": self.num_classes,
            "label_fraction": self.label_fraction,
            "fraction_seed": self.fraction_seed,
            "linear_probe": self.linear_probe,
            "dropout": self.dropout,
            "backbone": f"{type(self.backbone).__name__} ({sum(p.numel() for p in model.parameters())} parameters)",
        }
