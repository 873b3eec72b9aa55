"""Stage 4: in-distribution and zero-shot OOD metrics, and the data-efficiency sweep of REMEDIS vs baseline.

The sweep trains one model per ``init x label fraction x seed`` on the target site's training data, selects it
on the target site's validation data, and scores it on the target site's test set. Two modes:

* ``finetune``: full fine-tuning with :class:`~monai_remedis.stages.finetune.FinetuneStage` (the deterministic
  loading/resizing is decoded once for the whole sweep, and runs can go to parallel worker processes);
* ``linear_probe``: the fast path of :mod:`monai_remedis.evaluation.linear_probe`: frozen-backbone features are
  extracted once per init (cached on disk) and a logistic-regression head is fitted per run in milliseconds.

Before anything trains, :func:`~monai_remedis.evaluation.guard.check_selection_data` refuses a validation set that
shares a ``split`` tag, an id, a patient or pixel content with the sweep test set, the in-distribution test set or
any OOD set.
"""

from __future__ import annotations

import copy
import json
import logging
import multiprocessing
import shutil
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from monai_remedis.backbones.factory import create_backbone
from monai_remedis.backbones.weights import load_backbone_weights
from monai_remedis.engines.fingerprint import finished_run, record_fingerprint, sweep_fingerprint
from monai_remedis.engines.runtime import (
    atomic_write_json,
    is_main_process,
    prepare_run_dir,
    provenance,
    resolve_device,
)
from monai_remedis.evaluation.cache import decode_once
from monai_remedis.evaluation.guard import check_selection_data, tag_split
from monai_remedis.evaluation.linear_probe import (
    DEFAULT_L2_GRID,
    FeatureCache,
    FeatureSet,
    file_fingerprint,
    train_linear_probe,
)
from monai_remedis.evaluation.predict import predict
from monai_remedis.evaluation.report import (
    format_console_table,
    per_class_rows,
    plot_data_efficiency,
    write_csv,
    write_metrics,
    write_report,
)
from monai_remedis.evaluation.statistics import (
    auc_score,
    bootstrap_ci,
    classification_metrics,
    label_reduction_factor,
    summarise_sweep,
)
from monai_remedis.evaluation.sweep import (
    RunKey,
    headline_lines,
    metric_table,
    paired_comparisons,
    subset_indices,
    sweep_per_class,
    uninformative_target,
)
from monai_remedis.models.classifier import Classifier
from monai_remedis.stages.finetune import FinetuneStage

logger = logging.getLogger("monai_remedis")
SWEEP_METRICS = ("auc", "accuracy", "ece")
RECORD_METRICS = ("auc", "accuracy", "top2_accuracy", "macro_f1", "ece")
SWEEP_MODES = ("finetune", "linear_probe")


class EvaluateStage:
    """Evaluate fine-tuned classifiers, zero-shot on OOD sets, and run the data-efficiency sweep.

    Args:
        backbone: registered backbone name (a fresh one is built for every model).
        in_channels: image channels.
        num_classes: task classes.
        output_dir: run directory: ``metrics.json``, ``evaluations.csv``, ``per_class.csv``, ``sweep.csv``,
            ``sweep_summary.csv``, ``paired.csv``, ``data_efficiency.png``, ``report.md``, ``provenance.json``,
            ``sweep/<init>/f<fraction>_s<seed>/`` (one folder per run: ``result.json``, ``predictions.npz``) and
            ``features/`` (linear-probe feature cache).
        test_transform: transform for evaluation sets.
        classifier: ``classifier.pt`` of stage 3 evaluated on ``test_datalist`` and every OOD set (zero-shot).
        test_datalist: in-distribution test items.
        ood_sets: name -> ``{"datalist": [...], "transform": optional, "note": "..."}`` evaluated zero-shot.
        sweep_inits: name -> backbone checkpoint (None = scratch) compared in the sweep, e.g.
            ``{"remedis": ".../ssl/backbone.pt", "baseline": ".../pretrain/backbone.pt", "scratch": None}``.
        sweep_train_datalist: labelled training items of the target site (fractions are drawn from them).
        sweep_val_datalist: validation items of the target site (model selection; checked by the guard).
        sweep_test_datalist: test items of the target site (defaults to ``test_datalist``).
        sweep_train_transform: training transform of the sweep fine-tunes.
        fractions: label fractions.
        seeds: seeds per fraction (seed ``s`` draws the same labelled subset for every init: runs are paired).
        baseline_init: the init whose 100%-label metric is the target of the label-reduction factor and the
            reference of the paired comparisons.
        finetune_options: :class:`~monai_remedis.stages.supervised.TrainConfig` fields for the sweep.
        linear_probe: in ``finetune`` mode, freeze the backbone and train the head with SGD (the slow probe); the
            fast probe is ``sweep_mode="linear_probe"``.
        n_boot: bootstrap resamples for confidence intervals.
        device: evaluation device.
        batch_size: evaluation batch size.
        title: report title.
        notes: extra lines for the report.
        spatial_dims: 2 for images, 3 for volumes (passed to the backbone factory).
        sweep_mode: ``finetune`` (default) or ``linear_probe``.
        classifiers: name -> ``classifier.pt``, several classifiers evaluated like ``classifier`` (e.g. one per
            init); evaluation names become ``"<name>: <set>"``.
        probe_l2_grid: L2 penalties of the linear probe (chosen on validation AUC).
        probe_max_iter: L-BFGS iterations per probe fit.
        paired_n_boot: bootstrap replicates of the paired comparisons (default ``n_boot``; 0 disables them).
        cache_decoded: ``finetune`` mode: decode the deterministic head of the transforms once for the sweep.
        workers: ``finetune`` mode: runs trained in parallel processes (each gets ``threads // workers`` torch
            threads); 1 = sequential in this process.
        keep_sweep_checkpoints: ``finetune`` mode: keep each finished run's resume checkpoints
            (``checkpoints/``, about 270 MB per bit_resnet18 run). By default they are deleted once the run's
            ``result.json`` is written; ``classifier.pt`` and the predictions stay, and an interrupted run still
            resumes from its checkpoints.
        class_names: names of the classes for the report.
        console: print the final sweep table to stdout.
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
        sweep_mode: str | None = None,
        classifiers: Mapping[str, str | Path] | None = None,
        probe_l2_grid: Sequence[float] = DEFAULT_L2_GRID,
        probe_max_iter: int = 100,
        paired_n_boot: int | None = None,
        cache_decoded: bool = True,
        workers: int = 1,
        keep_sweep_checkpoints: bool = False,
        class_names: Sequence[str] | None = None,
        console: bool = True,
    ) -> None:
        sweep_mode = sweep_mode or "finetune"
        if sweep_mode not in SWEEP_MODES:
            raise ValueError(f"sweep_mode must be one of {SWEEP_MODES}, got '{sweep_mode}'.")
        if sweep_inits and baseline_init not in sweep_inits:
            raise ValueError(f"baseline_init '{baseline_init}' is not among sweep_inits {sorted(sweep_inits)}.")
        if sweep_inits and not sweep_train_datalist:
            raise ValueError("the sweep needs 'sweep_train_datalist' (labelled target-site training data).")
        if sweep_inits and not (sweep_test_datalist or test_datalist):
            raise ValueError("the sweep needs a target-site test set ('sweep_test_datalist' or 'test_datalist').")
        self.backbone = backbone
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.output_dir = Path(output_dir)
        self.test_transform = test_transform
        self.classifier = classifier
        self.classifiers = dict(classifiers or {})
        # held-out sets are tagged where the stage receives them; copies, so callers' items stay untouched
        self.test_datalist = tag_split(test_datalist or [], "test")
        self.ood_sets = {
            name: {**dict(ood), "datalist": tag_split(ood["datalist"], "ood")} for name, ood in (ood_sets or {}).items()
        }
        self.sweep_inits = dict(sweep_inits or {})
        self.sweep_train_datalist = list(sweep_train_datalist or [])
        self.sweep_val_datalist = list(sweep_val_datalist or [])
        self.sweep_test_datalist = tag_split(sweep_test_datalist or [], "test") or self.test_datalist
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
        self.sweep_mode = sweep_mode
        self.probe_l2_grid = tuple(float(v) for v in probe_l2_grid)
        self.probe_max_iter = probe_max_iter
        self.paired_n_boot = n_boot if paired_n_boot is None else paired_n_boot
        self.cache_decoded = cache_decoded
        self.workers = max(1, int(workers))
        self.keep_sweep_checkpoints = keep_sweep_checkpoints
        self.class_names = list(class_names) if class_names else None
        self.console = console
        self._decoded: dict[str, Any] | None = None
        self._guard_checked = False

    # ---- guard ------------------------------------------------------------------------------------------------

    def held_out_sets(self) -> dict[str, list[dict[str, Any]]]:
        """Every set that model selection must not see: the sweep test set, the test set and each OOD set."""
        held = {"sweep test": self.sweep_test_datalist}
        if self.test_datalist is not self.sweep_test_datalist:
            held["test"] = self.test_datalist
        held.update({f"ood '{name}'": ood["datalist"] for name, ood in self.ood_sets.items()})
        return {name: items for name, items in held.items() if items}

    def check_selection_data(self) -> None:
        """Refuse a sweep validation set that overlaps a held-out set (see :mod:`monai_remedis.evaluation.guard`).

        Raises:
            monai_remedis.evaluation.guard.SelectionLeakError: naming the two items and what they share.
        """
        if not self._guard_checked:
            check_selection_data(self.sweep_val_datalist, self.held_out_sets())
            self._guard_checked = True

    # ---- single models ----------------------------------------------------------------------------------------

    def _new_backbone(self) -> torch.nn.Module:
        return create_backbone(self.backbone, in_channels=self.in_channels, spatial_dims=self.spatial_dims)

    def _load_classifier(self, path: str | Path) -> Classifier:
        model = Classifier(self._new_backbone(), self.num_classes)
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        return model.eval()

    def _groups(self, datalist: Sequence[Mapping[str, Any]]) -> np.ndarray | None:
        if not any("patient_id" in d for d in datalist):
            return None
        return np.array([str(d.get("patient_id", f"item{i}")) for i, d in enumerate(datalist)])

    def scores(
        self, probs: np.ndarray, labels: np.ndarray, datalist: Sequence[Mapping[str, Any]], bootstrap: bool = True
    ) -> dict[str, Any]:
        """Metrics of predictions, with a bootstrap CI of the AUC (by patient when ids exist)."""
        result: dict[str, Any] = {"metrics": classification_metrics(probs, labels)}
        if bootstrap and self.n_boot > 0:
            ci = bootstrap_ci(probs, labels, auc_score, n_boot=self.n_boot, groups=self._groups(datalist))
            result["auc_ci"] = {
                "point": ci.point,
                "low": ci.low,
                "high": ci.high,
                "n_skipped": ci.n_skipped,
                "by_patient": ci.cluster,
            }
        return result

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
        return self.scores(probs, labels, datalist, bootstrap)

    def evaluate_classifiers(self) -> dict[str, Any]:
        """In-distribution test and zero-shot OOD metrics of ``classifier`` and every entry of ``classifiers``."""
        named = dict(self.classifiers)
        if self.classifier:
            named = {"": self.classifier, **named}
        evaluations: dict[str, Any] = {}
        for name, path in named.items():
            prefix = f"{name}: " if name else ""
            model = self._load_classifier(path)
            if self.test_datalist:
                evaluations[f"{prefix}test (in-distribution)"] = self.evaluate_set(model, self.test_datalist)
            for ood_name, ood in self.ood_sets.items():
                ev = self.evaluate_set(model, ood["datalist"], ood.get("transform"))
                evaluations[f"{prefix}{ood_name} (zero-shot)"] = {**ev, "note": ood.get("note", "")}
        return evaluations

    # ---- sweep runs -------------------------------------------------------------------------------------------

    def _run_dir(self, init: str, fraction: float, seed: int) -> Path:
        return self.output_dir / "sweep" / init / f"f{fraction:g}_s{seed}"

    @staticmethod
    def _load_done(run_dir: Path, fingerprint: dict[str, Any]) -> tuple[dict[str, Any], np.ndarray | None] | None:
        done = run_dir / "result.json"
        if not finished_run(run_dir, fingerprint):  # a result of other weights/options/data is never reused
            return None
        pred = run_dir / "predictions.npz"
        probs = np.load(pred)["probs"] if pred.is_file() else None
        return json.loads(done.read_text()), probs

    def _finish(
        self, init: str, fraction: float, seed: int, probs: np.ndarray, labels: np.ndarray, extra: dict[str, Any]
    ) -> tuple[dict[str, Any], np.ndarray]:
        probs = probs.astype(np.float32)  # as stored: a resumed sweep computes the same statistics
        m = classification_metrics(probs, labels)
        record = {
            "init": init,
            "fraction": fraction,
            "seed": seed,
            **{k: float(m[k]) for k in RECORD_METRICS if k in m},
            **extra,
        }
        run_dir = self._run_dir(init, fraction, seed)
        if is_main_process():
            run_dir.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(run_dir / "predictions.npz", probs=probs, labels=labels)
            atomic_write_json(record, run_dir / "result.json")  # last: its presence marks the run as finished
        logger.info("sweep %s fraction %g seed %d: AUC %.4f", init, fraction, seed, record["auc"])
        return record, probs

    def _decoded_data(self) -> dict[str, Any]:
        """The sweep datalists with their deterministic transform head applied once (or as given)."""
        if self._decoded is None:
            sets = {
                "train": (self.sweep_train_datalist, self.sweep_train_transform),
                "val": (self.sweep_val_datalist, self.test_transform),
                "test": (self.sweep_test_datalist, self.test_transform),
            }
            self._decoded = {
                name: decode_once(items, t) if self.cache_decoded and items else (list(items), t)
                for name, (items, t) in sets.items()
            }
        return self._decoded

    def _sweep_one(
        self, init: str, weights: str | Path | None, fraction: float, seed: int
    ) -> tuple[dict[str, Any], np.ndarray | None]:
        """One full fine-tune of the sweep (skipped when its ``result.json`` exists)."""
        run_dir = self._run_dir(init, fraction, seed)
        fingerprint = sweep_fingerprint(self, init, weights, fraction, seed)
        finished = self._load_done(run_dir, fingerprint)
        if finished is not None:
            return finished
        data = self._decoded_data()
        (train, train_t), (val, val_t), (test, test_t) = data["train"], data["val"], data["test"]
        stage = FinetuneStage(
            backbone=self._new_backbone(),
            num_classes=self.num_classes,
            train_datalist=train,
            train_transform=train_t,
            output_dir=run_dir,
            val_datalist=val or None,
            val_transform=val_t,
            init_weights=weights,
            label_fraction=fraction,
            fraction_seed=seed,
            seed=seed,
            linear_probe=self.linear_probe,
            train_options={"device": self.device, **self.finetune_options, "resume": True},  # mid-run resume
        )
        trained = stage.run()
        probs, labels = predict(
            self._load_classifier(trained["classifier"]), test, test_t, self.batch_size, resolve_device(self.device)
        )
        extra = {"num_labels": trained["num_labels"], "best_val_auc": trained.get("best_val_auc")}
        if is_main_process():
            record_fingerprint(run_dir, fingerprint)
        finished = self._finish(init, fraction, seed, probs, labels, extra)
        if not self.keep_sweep_checkpoints and is_main_process():
            shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)  # finished: nothing left to resume
        return finished

    def _probe_features(self, init: str, weights: str | Path | None) -> dict[str, FeatureSet | None]:
        """Frozen-backbone features of the sweep's train/val/test sets for one init (disk-cached)."""

        def factory() -> torch.nn.Module:
            torch.manual_seed(0)  # scratch: the same random backbone every time
            model = self._new_backbone()
            if weights:
                load_backbone_weights(model, weights)
            return model

        cache = FeatureCache(self.output_dir / "features")
        key = {"backbone": self.backbone, "in_channels": self.in_channels, "weights": file_fingerprint(weights)}
        device = resolve_device(self.device)
        sets = {"train": self.sweep_train_datalist, "val": self.sweep_val_datalist, "test": self.sweep_test_datalist}
        return {
            name: cache.load_or_extract(
                f"{init}/{name}", factory, items, self.test_transform, key, self.batch_size, device
            )
            if items
            else None
            for name, items in sets.items()
        }

    def _probe_one(
        self, init: str, features: Mapping[str, FeatureSet | None], fraction: float, seed: int
    ) -> tuple[dict[str, Any], np.ndarray | None]:
        """One linear-probe run of the sweep (skipped when its ``result.json`` exists)."""
        fingerprint = sweep_fingerprint(self, init, self.sweep_inits[init], fraction, seed)
        finished = self._load_done(self._run_dir(init, fraction, seed), fingerprint)
        if finished is not None:
            return finished
        train, val, test = features["train"], features.get("val"), features["test"]
        assert train is not None and test is not None
        idx = torch.as_tensor(subset_indices(self.sweep_train_datalist, fraction, seed))
        probe = train_linear_probe(
            train.features[idx],
            train.labels[idx],
            self.num_classes,
            val=(val.features, val.labels) if val is not None else None,
            l2_grid=self.probe_l2_grid,
            standardise=train.features,
            max_iter=self.probe_max_iter,
        )
        probs = probe.predict_proba(test.features)
        extra = {"num_labels": int(idx.numel()), "best_val_auc": probe.val_auc, "l2": probe.l2}
        if is_main_process():
            record_fingerprint(self._run_dir(init, fraction, seed), fingerprint)
        return self._finish(init, fraction, seed, probs, test.labels.numpy(), extra)

    def _run_finetunes(self) -> dict[RunKey, tuple[dict[str, Any], np.ndarray | None]]:
        jobs = [(i, w, f, s) for i, w in self.sweep_inits.items() for f in self.fractions for s in self.seeds]
        pending = [j for j in jobs if not finished_run(self._run_dir(j[0], j[2], j[3]), sweep_fingerprint(self, *j))]
        if self.workers > 1 and len(pending) > 1:
            self._decoded_data()
            threads = max(1, torch.get_num_threads() // self.workers)
            worker_state = copy.copy(self)
            worker_state.ood_sets, worker_state.test_datalist = {}, []  # OOD transforms may hold lambdas
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(
                self.workers, mp_context=context, initializer=_init_worker, initargs=(worker_state, threads)
            ) as pool:
                list(pool.map(_worker_run, pending))
        return {(i, f, s): self._sweep_one(i, w, f, s) for i, w, f, s in jobs}

    def _run_probes(self) -> dict[RunKey, tuple[dict[str, Any], np.ndarray | None]]:
        results = {}
        for init, weights in self.sweep_inits.items():
            keys = [(f, s) for f in self.fractions for s in self.seeds]
            done = all(
                finished_run(self._run_dir(init, f, s), sweep_fingerprint(self, init, weights, f, s)) for f, s in keys
            )
            features = {} if done else self._probe_features(init, weights)  # a finished init needs no features
            for f, s in keys:
                results[(init, f, s)] = self._probe_one(init, features, f, s)
        return results

    def run_sweep(self) -> dict[str, Any]:
        """Train every init at every fraction and seed; summarise, compare with the baseline, and compute the
        label-reduction factors.

        Returns:
            ``records``, ``summary``, ``label_reduction``, ``paired`` and ``per_class`` (largest fraction).
        """
        self.check_selection_data()
        runs = self._run_probes() if self.sweep_mode == "linear_probe" else self._run_finetunes()
        records = [record for record, _ in runs.values()]
        probs = {key: p for key, (_, p) in runs.items() if p is not None}
        inits = list(self.sweep_inits)
        summary = summarise_sweep(records, metrics=[m for m in RECORD_METRICS if any(m in r for r in records)])
        table = metric_table(records, inits, self.fractions, self.seeds)
        reduction = label_reduction_factor(self.fractions, table, baseline_init=self.baseline_init)
        warning = uninformative_target(reduction, self.baseline_init)
        if warning:
            logger.warning("data-efficiency sweep: %s", warning)
        labels = np.array([int(d["label"]) for d in self.sweep_test_datalist])
        paired = (
            paired_comparisons(
                probs,
                labels,
                self.baseline_init,
                inits,
                self.fractions,
                self.seeds,
                n_boot=self.paired_n_boot,
                groups=self._groups(self.sweep_test_datalist),
            )
            if self.paired_n_boot > 0
            else []
        )
        per_class = sweep_per_class(probs, labels, inits, self.fractions[-1])
        return {
            "records": records,
            "summary": summary,
            "label_reduction": reduction,
            "paired": paired,
            "per_class": per_class,
        }

    # ---- the stage --------------------------------------------------------------------------------------------

    def _config(self) -> dict[str, Any]:
        return {
            "backbone": self.backbone,
            "sweep_mode": self.sweep_mode,
            "fractions": self.fractions,
            "seeds": self.seeds,
            "sweep_inits": {k: str(v) for k, v in self.sweep_inits.items()},
            "baseline_init": self.baseline_init,
            "linear_probe": self.linear_probe,
            "finetune_options": self.finetune_options,
            "probe_l2_grid": list(self.probe_l2_grid),
            "n_boot": self.n_boot,
            "paired_n_boot": self.paired_n_boot,
            "sizes": {
                "sweep_train": len(self.sweep_train_datalist),
                "sweep_val": len(self.sweep_val_datalist),
                "sweep_test": len(self.sweep_test_datalist),
                "test": len(self.test_datalist),
                **{f"ood:{k}": len(v["datalist"]) for k, v in self.ood_sets.items()},
            },
        }

    def run(self) -> dict[str, Any]:
        """Check the data, evaluate, sweep, and write the metrics JSON/CSVs, the curve and ``report.md``."""
        out = prepare_run_dir(self.output_dir, seed=0)
        if self.sweep_inits:
            self.check_selection_data()  # refuse before any work
        evaluations = self.evaluate_classifiers()
        sweep = self.run_sweep() if self.sweep_inits else {}
        result: dict[str, Any] = {"evaluations": evaluations, **sweep, "config": self._config()}
        if not is_main_process():
            return result
        if evaluations:
            write_csv([{"set": k, **_flat_metrics(v)} for k, v in evaluations.items()], out / "evaluations.csv")
            write_csv(per_class_rows(evaluations), out / "per_class.csv")
        curve = None
        if sweep:
            write_csv(sweep["records"], out / "sweep.csv")
            write_csv(sweep["summary"], out / "sweep_summary.csv")
            if sweep["paired"]:
                write_csv([{k: v for k, v in r.items() if k != "seeds"} for r in sweep["paired"]], out / "paired.csv")
            if sweep["per_class"]:
                write_csv(sweep["per_class"], out / "sweep_per_class.csv")
            target = sweep["label_reduction"][self.baseline_init]["target"]
            curve = str(
                plot_data_efficiency(
                    sweep["summary"], "auc", out / "data_efficiency.png", target=target, title=self.title
                )
            )
        write_metrics(out, result)
        mode = "fine-tuning" if self.sweep_mode == "finetune" else "a linear probe on frozen features"
        headline = headline_lines(
            evaluations,
            sweep.get("label_reduction"),
            sweep.get("paired"),
            self.baseline_init,
            num_train=len(self.sweep_train_datalist) if sweep else None,
            mode=mode,
        )
        description = (
            f"Each run trains with {mode} on a stratified fraction of the {len(self.sweep_train_datalist)} labelled "
            f"target-site training images (seed s draws the same subset for every init), selects on the "
            f"{len(self.sweep_val_datalist)} validation images only, and is scored on the "
            f"{len(self.sweep_test_datalist)} test images."
            if sweep
            else ""
        )
        report = write_report(
            out,
            self.title,
            evaluations,
            sweep.get("summary"),
            sweep.get("label_reduction"),
            curve=curve,
            notes=self.notes,
            paired=sweep.get("paired"),
            sweep_per_class=sweep.get("per_class"),
            headline=headline,
            class_names=self.class_names,
            sweep_description=description,
            baseline=self.baseline_init,
        )
        inputs = [self.classifier, *self.classifiers.values(), *self.sweep_inits.values()]
        atomic_write_json(provenance("evaluate", self._config(), inputs), out / "provenance.json")
        if sweep and self.console:
            print(
                format_console_table(
                    sweep["summary"],
                    sweep["label_reduction"],
                    sweep["paired"],
                    title=f"{self.title} ({mode})",
                    baseline=self.baseline_init,
                ),
                flush=True,
            )
        result.update(report=str(report), curve=curve)
        return result


def _flat_metrics(evaluation: Mapping[str, Any]) -> dict[str, Any]:
    """Scalar metrics of one evaluation (and its AUC interval) for a CSV row."""
    m = evaluation["metrics"]
    row = {k: v for k, v in m.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    ci = evaluation.get("auc_ci")
    if ci:
        row.update(auc_low=ci["low"], auc_high=ci["high"], auc_ci_by_patient=ci["by_patient"])
    row["note"] = evaluation.get("note", "")
    return row


_WORKER_STAGE: EvaluateStage | None = None


def _init_worker(stage: EvaluateStage, threads: int) -> None:
    """Process-pool initializer: keep the stage (sent once per worker) and share the cores."""
    global _WORKER_STAGE
    torch.set_num_threads(threads)
    _WORKER_STAGE = stage


def _worker_run(job: tuple[str, str | Path | None, float, int]) -> None:
    """Run one fine-tune in a worker; the parent reads its ``result.json`` and predictions back."""
    assert _WORKER_STAGE is not None
    _WORKER_STAGE._sweep_one(*job)
