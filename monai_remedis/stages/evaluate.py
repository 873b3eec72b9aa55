"""Stage 4: in-distribution and zero-shot OOD metrics, and the data-efficiency sweep of REMEDIS vs baseline."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from monai_remedis.backbones.factory import create_backbone
from monai_remedis.engines.runtime import (
    atomic_write_json,
    is_main_process,
    prepare_run_dir,
    provenance,
    resolve_device,
)
from monai_remedis.evaluation.predict import predict
from monai_remedis.evaluation.report import plot_data_efficiency, write_csv, write_metrics, write_report
from monai_remedis.evaluation.statistics import (
    auc_score,
    bootstrap_ci,
    classification_metrics,
    label_reduction_factor,
    summarise_sweep,
)
from monai_remedis.models.classifier import Classifier
from monai_remedis.stages.finetune import FinetuneStage

logger = logging.getLogger("monai_remedis")
SWEEP_METRICS = ("auc", "accuracy", "ece")


class EvaluateStage:
    """Evaluate a fine-tuned classifier and run the data-efficiency sweep.

    Args:
        backbone: registered backbone name (a fresh one is built for every model).
        in_channels: image channels.
        num_classes: task classes.
        output_dir: run directory: ``metrics.json``, ``sweep.csv``, ``sweep_summary.csv``, ``data_efficiency.png``,
            ``report.md`` and ``sweep/<init>/f<fraction>_s<seed>/`` fine-tune runs.
        test_transform: transform for evaluation sets.
        classifier: ``classifier.pt`` of stage 3 evaluated on ``test_datalist`` and every OOD set (zero-shot).
        test_datalist: in-distribution test items.
        ood_sets: name -> ``{"datalist": [...], "transform": optional, "note": "..."}`` evaluated zero-shot.
        sweep_inits: name -> backbone checkpoint (None = scratch) compared in the sweep, e.g.
            ``{"remedis": ".../ssl/backbone.pt", "baseline": ".../pretrain/backbone.pt"}``.
        sweep_train_datalist: labelled training items of the target site (fractions are drawn from them).
        sweep_val_datalist: validation items of the target site (model selection).
        sweep_test_datalist: test items of the target site (defaults to ``test_datalist``).
        sweep_train_transform: training transform of the sweep fine-tunes.
        fractions: label fractions.
        seeds: seeds per fraction.
        baseline_init: the init whose 100%-label metric is the target of the label-reduction factor.
        finetune_options: :class:`~monai_remedis.stages.supervised.TrainConfig` fields for the sweep.
        linear_probe: sweep with linear probes instead of full fine-tuning.
        n_boot: bootstrap resamples for confidence intervals.
        device: evaluation device.
        batch_size: evaluation batch size.
        title: report title.
        notes: extra lines for the report.
        spatial_dims: 2 for images, 3 for volumes (passed to the backbone factory).
    """

    def __init__(
        self,
        backbone: str,
        in_channels: int,
        num_classes: int,
        output_dir: str | Path,
        test_transform: Callable,
        classifier: str | Path | None = None,
        test_datalist: Sequence[dict[str, Any]] | None = None,
        ood_sets: Mapping[str, Mapping[str, Any]] | None = None,
        sweep_inits: Mapping[str, str | Path | None] | None = None,
        sweep_train_datalist: Sequence[dict[str, Any]] | None = None,
        sweep_val_datalist: Sequence[dict[str, Any]] | None = None,
        sweep_test_datalist: Sequence[dict[str, Any]] | None = None,
        sweep_train_transform: Callable | None = None,
        fractions: Sequence[float] = (0.01, 0.1, 1.0),
        seeds: Sequence[int] = (0, 1, 2),
        baseline_init: str = "baseline",
        finetune_options: Mapping[str, Any] | None = None,
        linear_probe: bool = False,
        n_boot: int = 500,
        device: str = "auto",
        batch_size: int = 256,
        title: str = "monai-remedis evaluation",
        notes: Sequence[str] = (),
        spatial_dims: int = 2,
    ) -> None:
        if sweep_inits and baseline_init not in sweep_inits:
            raise ValueError(f"baseline_init '{baseline_init}' is not among sweep_inits {sorted(sweep_inits)}.")
        if sweep_inits and not sweep_train_datalist:
            raise ValueError("the sweep needs 'sweep_train_datalist' (labelled target-site training data).")
        self.backbone = backbone
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.output_dir = Path(output_dir)
        self.test_transform = test_transform
        self.classifier = classifier
        self.test_datalist = list(test_datalist or [])
        self.ood_sets = dict(ood_sets or {})
        self.sweep_inits = dict(sweep_inits or {})
        self.sweep_train_datalist = list(sweep_train_datalist or [])
        self.sweep_val_datalist = list(sweep_val_datalist or [])
        self.sweep_test_datalist = list(sweep_test_datalist or self.test_datalist)
        self.sweep_train_transform = sweep_train_transform or test_transform
        self.fractions = sorted(float(f) for f in fractions)
        self.seeds = list(seeds)
        self.baseline_init = baseline_init
        self.finetune_options = dict(finetune_options or {})
        self.linear_probe = linear_probe
        self.n_boot = n_boot
        self.device = device
        self.batch_size = batch_size
        self.title = title
        self.notes = list(notes)
        self.spatial_dims = spatial_dims

    def _load_classifier(self, path: str | Path) -> Classifier:
        model = Classifier(
            create_backbone(self.backbone, in_channels=self.in_channels, spatial_dims=self.spatial_dims),
            self.num_classes,
        )
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        return model.eval()

    def evaluate_set(
        self,
        model: Classifier,
        datalist: Sequence[dict[str, Any]],
        transform: Callable | None = None,
        bootstrap: bool = True,
    ) -> dict[str, Any]:
        """Metrics (and a bootstrap CI of the AUC, by patient when ids exist) of ``model`` on one datalist."""
        probs, labels = predict(
            model, datalist, transform or self.test_transform, self.batch_size, resolve_device(self.device)
        )
        result: dict[str, Any] = {"metrics": classification_metrics(probs, labels)}
        if bootstrap and self.n_boot > 0:
            groups = np.array([str(d.get("patient_id", i)) for i, d in enumerate(datalist)])
            ci = bootstrap_ci(probs, labels, auc_score, n_boot=self.n_boot, groups=groups)
            result["auc_ci"] = {
                "point": ci.point,
                "low": ci.low,
                "high": ci.high,
                "n_skipped": ci.n_skipped,
                "by_patient": ci.cluster,
            }
        return result

    def _sweep_one(self, init: str, weights: str | Path | None, fraction: float, seed: int) -> dict[str, Any]:
        run_dir = self.output_dir / "sweep" / init / f"f{fraction:g}_s{seed}"
        done = run_dir / "result.json"
        if done.is_file():  # finished earlier: the sweep resumes run by run
            return json.loads(done.read_text())
        stage = FinetuneStage(
            backbone=create_backbone(self.backbone, in_channels=self.in_channels, spatial_dims=self.spatial_dims),
            num_classes=self.num_classes,
            train_datalist=self.sweep_train_datalist,
            train_transform=self.sweep_train_transform,
            output_dir=run_dir,
            val_datalist=self.sweep_val_datalist or None,
            val_transform=self.test_transform,
            init_weights=weights,
            label_fraction=fraction,
            fraction_seed=seed,
            seed=seed,
            linear_probe=self.linear_probe,
            train_options={"device": self.device, **self.finetune_options},
        )
        trained = stage.run()
        evaluation = self.evaluate_set(
            self._load_classifier(trained["classifier"]), self.sweep_test_datalist, bootstrap=False
        )
        m = evaluation["metrics"]
        record = {
            "init": init,
            "fraction": fraction,
            "seed": seed,
            "num_labels": trained["num_labels"],
            **{k: float(m[k]) for k in SWEEP_METRICS},
            "best_val_auc": trained.get("best_val_auc"),
        }
        if is_main_process():
            atomic_write_json(record, done)
        logger.info("sweep %s fraction %g seed %d: AUC %.4f", init, fraction, seed, record["auc"])
        return record

    def run_sweep(self) -> dict[str, Any]:
        """Fine-tune every init at every fraction and seed; summarise and compute label-reduction factors."""
        records = [
            self._sweep_one(init, w, f, s)
            for init, w in self.sweep_inits.items()
            for f in self.fractions
            for s in self.seeds
        ]
        summary = summarise_sweep(records, metrics=list(SWEEP_METRICS))
        table = {
            init: np.array(
                [
                    [
                        next(r["auc"] for r in records if r["init"] == init and r["fraction"] == f and r["seed"] == s)
                        for s in self.seeds
                    ]
                    for f in self.fractions
                ]
            )
            for init in self.sweep_inits
        }
        reduction = label_reduction_factor(self.fractions, table, baseline_init=self.baseline_init)
        return {"records": records, "summary": summary, "label_reduction": reduction}

    def run(self) -> dict[str, Any]:
        """Evaluate, sweep, and write ``metrics.json``, CSVs, the curve and ``report.md``."""
        out = prepare_run_dir(self.output_dir, seed=0)
        evaluations: dict[str, Any] = {}
        if self.classifier:
            model = self._load_classifier(self.classifier)
            if self.test_datalist:
                evaluations["test (in-distribution)"] = self.evaluate_set(model, self.test_datalist)
            for name, ood in self.ood_sets.items():
                ev = self.evaluate_set(model, ood["datalist"], ood.get("transform"))
                evaluations[f"{name} (zero-shot)"] = {**ev, "note": ood.get("note", "")}
        sweep = self.run_sweep() if self.sweep_inits else {}
        result: dict[str, Any] = {"evaluations": evaluations, **sweep}
        if not is_main_process():
            return result
        curve = None
        if sweep:
            write_csv(sweep["records"], out / "sweep.csv")
            write_csv(sweep["summary"], out / "sweep_summary.csv")
            target = sweep["label_reduction"][self.baseline_init]["target"]
            curve = str(
                plot_data_efficiency(
                    sweep["summary"], "auc", out / "data_efficiency.png", target=target, title=self.title
                )
            )
        write_metrics(out, result)
        report = write_report(
            out,
            self.title,
            evaluations,
            sweep.get("summary"),
            sweep.get("label_reduction"),
            curve=curve,
            notes=self.notes,
        )
        config = {
            "backbone": self.backbone,
            "fractions": self.fractions,
            "seeds": self.seeds,
            "sweep_inits": {k: str(v) for k, v in self.sweep_inits.items()},
            "linear_probe": self.linear_probe,
            "finetune_options": self.finetune_options,
        }
        atomic_write_json(
            provenance("evaluate", config, [self.classifier, *self.sweep_inits.values()]), out / "provenance.json"
        )
        result.update(report=str(report), curve=curve)
        return result
