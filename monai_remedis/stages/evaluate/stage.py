"""Stage 4: in-distribution and zero-shot OOD metrics, and the data-efficiency sweep of REMEDIS vs baseline.

The stage composes four parts and owns only the leak guard:

* :class:`~monai_remedis.stages.evaluate.evaluator.Evaluator`: single classifiers on the test and OOD sets;
* the sweep (:mod:`monai_remedis.stages.evaluate.sweep`): a plan of ``init x label fraction x seed`` runs, a runner
  (full fine-tunes, or linear probes on cached frozen features) and an executor (this process or spawned workers);
  each run is trained on the target site's training data, selected on its validation data, scored on its test set;
* :class:`~monai_remedis.stages.evaluate.writer.ReportWriter`: metrics, CSVs, the curve, ``report.md``.

Before anything trains, :func:`~monai_remedis.evaluation.guard.check_selection_data` refuses a validation set that
shares a ``split`` tag, an id, a patient or pixel content with the sweep test set, the in-distribution test set or
any OOD set.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from monai_remedis.engines.runtime import (
    atomic_write_json,
    is_main_process,
    prepare_run_dir,
    provenance,
    resolve_device,
)
from monai_remedis.evaluation.guard import check_selection_data, tag_split
from monai_remedis.stages.config import RuntimeConfig, SweepConfig, as_dict
from monai_remedis.stages.evaluate.backbones import init_backbone_health
from monai_remedis.stages.evaluate.evaluator import Evaluator, ModelSpec
from monai_remedis.stages.evaluate.sweep import (
    FinetuneRunner,
    JobFingerprints,
    ProbeRunner,
    ProcessExecutor,
    RunStore,
    SequentialExecutor,
    SweepData,
    SweepPlan,
    summarise,
)
from monai_remedis.stages.evaluate.writer import ReportConfig, ReportWriter


class EvaluateStage:
    """Evaluate fine-tuned classifiers, zero-shot on OOD sets, and run the data-efficiency sweep.

    Args:
        model: architecture of every classifier and sweep model (backbone name, channels, classes, dims).
        output_dir: run directory: the files of :class:`ReportWriter`, ``provenance.json``,
            ``sweep/<init>/f<fraction>_s<seed>/`` (``result.json``, ``predictions.npz``) and ``features/``.
        test_transform: transform of every evaluation set.
        classifiers: ``classifier.pt`` of stage 3, or name -> ``classifier.pt`` (evaluations are then named
            ``"<name>: <set>"``), evaluated on ``test_datalist`` and every OOD set.
        test_datalist: in-distribution test items.
        ood_sets: name -> ``{"datalist": [...], "transform": optional, "note": "..."}`` evaluated zero-shot.
        sweep: the data-efficiency sweep (None or no inits: no sweep).
        sweep_data: the sweep's target site (``test`` defaults to ``test_datalist``).
        report: title, notes, class names, bootstrap sizes, console table.
        runtime: device and decoding.
        figures: write ROC and reliability diagrams per evaluated set and an embedding map (by label and by site)
            of the first classifier's backbone into ``figures/``, shown in ``report.md``.
    """

    def __init__(
        self,
        model: ModelSpec,
        output_dir: str | Path,
        test_transform: Callable,
        classifiers: str | Path | Mapping[str, str | Path] | None = None,
        test_datalist: Sequence[dict[str, Any]] | None = None,
        ood_sets: Mapping[str, Mapping[str, Any]] | None = None,
        sweep: SweepConfig | None = None,
        sweep_data: SweepData | None = None,
        report: ReportConfig | None = None,
        runtime: RuntimeConfig | None = None,
        figures: bool = True,
    ) -> None:
        self.figures = figures
        self.sweep = sweep or SweepConfig()
        if self.sweep.inits and not (sweep_data and sweep_data.train):
            raise ValueError("the sweep needs sweep_data.train (labelled target-site training data).")
        self.model = model
        self.output_dir = Path(output_dir)
        self.report = report or ReportConfig()
        self.runtime = runtime or RuntimeConfig()
        if isinstance(classifiers, (str, Path)):
            classifiers = {"": classifiers}
        self.classifiers = {k: v for k, v in (classifiers or {}).items() if v}
        # held-out sets are tagged where the stage receives them; copies, so callers' items stay untouched
        self.test_datalist = tag_split(test_datalist or [], "test")
        self.ood_sets = {
            name: {**dict(ood), "datalist": tag_split(ood["datalist"], "ood")} for name, ood in (ood_sets or {}).items()
        }
        data = sweep_data or SweepData(train=[])
        same_test = data.test is None or data.test is test_datalist  # the bundles pass the same list twice
        self.sweep_data = SweepData(
            train=list(data.train),
            val=list(data.val),
            test=self.test_datalist if same_test else tag_split(data.test or [], "test"),
            train_transform=data.train_transform,
        )
        if self.sweep.inits and not self.sweep_data.test:
            raise ValueError("the sweep needs a target-site test set (sweep_data.test or 'test_datalist').")
        self.evaluator = Evaluator(
            model, test_transform, self.report.batch_size, self.runtime.device, self.report.n_boot
        )
        self.store = RunStore(
            self.output_dir / "sweep",
            JobFingerprints.of(dataclasses.asdict(model), self.sweep, self.sweep_data, test_transform),
        )
        self._guard_checked = False

    # ---- guard ------------------------------------------------------------------------------------------------

    def held_out_sets(self) -> dict[str, list[dict[str, Any]]]:
        """Every set that model selection must not see: the sweep test set, the test set and each OOD set."""
        held = {"sweep test": self.sweep_data.test}
        if self.test_datalist is not self.sweep_data.test:
            held["test"] = self.test_datalist
        held.update({f"ood '{name}'": ood["datalist"] for name, ood in self.ood_sets.items()})
        return {name: list(items) for name, items in held.items() if items}

    def check_selection_data(self) -> None:
        """Refuse a sweep validation set that overlaps a held-out set (see :mod:`monai_remedis.evaluation.guard`).

        Raises:
            monai_remedis.evaluation.guard.SelectionLeakError: naming the two items and what they share.
        """
        if not self._guard_checked:
            check_selection_data(self.sweep_data.val, self.held_out_sets())
            self._guard_checked = True

    # ---- parts ------------------------------------------------------------------------------------------------

    def runner(self) -> FinetuneRunner | ProbeRunner:
        """The runner of the sweep's mode."""
        if self.sweep.mode == "linear_probe":
            return ProbeRunner(self.evaluator, self.sweep_data, self.sweep, self.store, self.output_dir / "features")
        return FinetuneRunner(self.evaluator, self.sweep_data, self.sweep, self.runtime, self.store)

    def run_sweep(self) -> dict[str, Any]:
        """Train every init at every fraction and seed (finished runs are read back); summarise, compare with the
        baseline, and compute the label-reduction factors.

        Returns:
            ``records``, ``summary``, ``label_reduction``, ``paired`` and ``per_class`` (largest fraction).
        """
        self.check_selection_data()
        plan = SweepPlan.from_config(self.sweep)
        jobs = plan.jobs()
        if all(self.store.is_done(job) for job in jobs):
            runs = SequentialExecutor().run(_StoredRuns(self.store), jobs)  # nothing to train or decode
        elif self.sweep.mode == "finetune" and self.sweep.workers > 1:
            runs = ProcessExecutor(self.sweep.workers).run(self.runner(), jobs)
        else:
            runs = SequentialExecutor().run(self.runner(), jobs)
        return summarise(runs, plan, self.sweep_data.test, self.sweep.baseline_init, self.report.paired_n_boot)

    # ---- the stage --------------------------------------------------------------------------------------------

    def _config(self) -> dict[str, Any]:
        sweep = as_dict(self.sweep) | {"inits": {k: str(v) for k, v in self.sweep.inits.items()}}
        return {
            "model": as_dict(self.model),
            "sweep": sweep,
            "report": {k: v for k, v in as_dict(self.report).items() if k != "notes"},
            "sizes": {
                "sweep_train": len(self.sweep_data.train),
                "sweep_val": len(self.sweep_data.val),
                "sweep_test": len(self.sweep_data.test),
                "test": len(self.test_datalist),
                **{f"ood:{k}": len(v["datalist"]) for k, v in self.ood_sets.items()},
            },
        }

    def _embedding_inputs(self) -> tuple[torch.nn.Module | None, dict[str, tuple[list, Callable]], torch.device]:
        """The first classifier's backbone and the sets its embedding map shows (test, then each OOD set)."""
        sets = {"test": (self.test_datalist, self.evaluator.transform)} if self.test_datalist else {}
        for name, ood in self.ood_sets.items():
            sets[name] = (ood["datalist"], ood.get("transform") or self.evaluator.transform)
        path = next(iter(self.classifiers.values()), None)
        backbone = self.model.load_classifier(path).backbone if path else None
        return backbone, sets, resolve_device(self.runtime.device)

    def run(self) -> dict[str, Any]:
        """Check the data, evaluate, sweep, and write the metrics JSON/CSVs, the curve and ``report.md``."""
        out = prepare_run_dir(self.output_dir, seed=0)
        if self.sweep.inits:
            self.check_selection_data()  # refuse before any work
        evaluations = self.evaluator.evaluate_classifiers(self.classifiers, self.test_datalist, self.ood_sets)
        sweep = self.run_sweep() if self.sweep.inits else {}
        result: dict[str, Any] = {"evaluations": evaluations, **sweep, "config": self._config()}
        if not is_main_process():
            return result
        mode = "fine-tuning" if self.sweep.mode == "finetune" else "a linear probe on frozen features"
        sizes = {
            "train": len(self.sweep_data.train),
            "val": len(self.sweep_data.val),
            "test": len(self.sweep_data.test),
        }
        if self.sweep.inits:
            result["backbones"] = init_backbone_health(self.sweep.inits)
        writer = ReportWriter(out, self.report, self.sweep.baseline_init)
        files = writer.write(evaluations, sweep, result, mode, sizes, result.get("backbones"))
        if self.figures:
            files["figures"] = writer.write_figures(self.evaluator.predictions, *self._embedding_inputs())
        inputs = [*self.classifiers.values(), *self.sweep.inits.values()]
        atomic_write_json(provenance("evaluate", self._config(), inputs), out / "provenance.json")
        result.update(files)
        return result


class _StoredRuns:
    """Runner of a finished sweep: reads every run back from the store."""

    def __init__(self, store: RunStore) -> None:
        self.store = store

    def __call__(self, job: Any) -> Any:
        finished = self.store.load(job)
        assert finished is not None
        return finished
