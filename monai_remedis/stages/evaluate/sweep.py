"""The data-efficiency sweep as three parts: a plan (which runs), a runner (how one run trains) and an executor
(where runs execute), plus the run store that makes a sweep resumable and the summary of its records.

* :class:`SweepPlan`: ``init x label fraction x seed`` jobs and their run folders;
* :class:`RunStore`: one folder per run; ``result.json`` (written last) marks a finished run, which is never
  trained again, and only reused while its fingerprint (:class:`JobFingerprints`: weights, options, data) matches;
* runners: :class:`FinetuneRunner` (full fine-tunes with :class:`~monai_remedis.stages.finetune.FinetuneStage`)
  and :class:`ProbeRunner` (logistic regression on frozen, disk-cached features);
* executors: :class:`SequentialExecutor` and :class:`ProcessExecutor` (spawned processes that each receive the
  runner once, with no module-global state).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np
import torch

from monai_remedis.backbones.weights import load_backbone_weights
from monai_remedis.configs import unshadow_sys_path
from monai_remedis.engines.fingerprint import (
    VOLATILE_KEYS,
    datalist_digest,
    finished_run,
    make_fingerprint,
    record_fingerprint,
    transform_digest,
)
from monai_remedis.engines.runtime import atomic_write_json, is_main_process, resolve_device
from monai_remedis.evaluation.cache import decode_once
from monai_remedis.evaluation.linear_probe import FeatureCache, FeatureSet, file_fingerprint, train_linear_probe
from monai_remedis.evaluation.statistics import classification_metrics, label_reduction_factor, summarise_sweep
from monai_remedis.evaluation.sweep import (
    RunKey,
    metric_table,
    paired_comparisons,
    subset_indices,
    sweep_per_class,
    uninformative_target,
)
from monai_remedis.stages.config import RuntimeConfig, SweepConfig
from monai_remedis.stages.evaluate.evaluator import Evaluator, patient_groups
from monai_remedis.stages.finetune import FinetuneStage

logger = logging.getLogger("monai_remedis")
RECORD_METRICS = ("auc", "accuracy", "top2_accuracy", "macro_f1", "ece")
RunResult = tuple[dict[str, Any], "np.ndarray | None"]


class Job(NamedTuple):
    """One run of the sweep."""

    init: str
    weights: str | Path | None
    fraction: float
    seed: int

    @property
    def key(self) -> RunKey:
        return (self.init, self.fraction, self.seed)


@dataclass
class SweepData:
    """The target site of the sweep: fractions are drawn from ``train``, runs select on ``val`` and are scored on
    ``test``.

    Attributes:
        train: labelled training items.
        val: validation items (model selection only; checked by the leak guard).
        test: test items (default: the stage's ``test_datalist``).
        train_transform: training transform of the fine-tunes (default: the evaluation transform).
    """

    train: Sequence[dict[str, Any]]
    val: Sequence[dict[str, Any]] = ()
    test: Sequence[dict[str, Any]] | None = None
    train_transform: Callable | None = None


@dataclass(frozen=True)
class SweepPlan:
    """Which runs a sweep holds: every init at every fraction and seed, in that order."""

    inits: Mapping[str, str | Path | None]
    fractions: Sequence[float]
    seeds: Sequence[int]

    @classmethod
    def from_config(cls, config: SweepConfig) -> SweepPlan:
        return cls(dict(config.inits), list(config.fractions), list(config.seeds))

    def jobs(self, init: str | None = None) -> list[Job]:
        """The jobs (of one init when given)."""
        inits = {init: self.inits[init]} if init is not None else self.inits
        return [Job(i, w, f, s) for i, w in inits.items() for f in self.fractions for s in self.seeds]


@dataclass(frozen=True)
class JobFingerprints:
    """What produces one sweep run: the job (init weights by content, fraction, seed), the model, the sweep's
    options and the data. Picklable, so :class:`ProcessExecutor` workers check runs the same way.

    Attributes:
        config: model and sweep options (without settings that never change results).
        data: digests of the sweep's train/val/test datalists.
    """

    config: Mapping[str, Any]
    data: Mapping[str, str | None]
    transforms: Mapping[str, str | None] = dataclasses.field(default_factory=dict)

    @classmethod
    def of(
        cls, model: Mapping[str, Any], sweep: SweepConfig, data: SweepData, eval_transform: Callable | None = None
    ) -> JobFingerprints:
        """Fingerprints of ``sweep``'s runs on ``data``; ``eval_transform`` scores validation and test images."""
        options = {
            k: v
            for k, v in dataclasses.asdict(sweep).items()
            if k not in ("inits", "fractions", "seeds", "baseline_init", "keep_checkpoints") and k not in VOLATILE_KEYS
        }
        digests = {name: datalist_digest(getattr(data, name)) for name in ("train", "val", "test")}
        transforms = {
            "train": transform_digest(data.train_transform or eval_transform, data.train),
            "eval": transform_digest(eval_transform, data.test or data.val),
        }
        return cls({"model": dict(model), **options}, digests, transforms)

    def __call__(self, job: Job) -> dict[str, Any]:
        config = {**self.config, "init": job.init, "fraction": job.fraction, "seed": job.seed}
        fingerprint = make_fingerprint("sweep", config, {"init_weights": job.weights})
        return {**fingerprint, "data": dict(self.data), "transforms": dict(self.transforms)}


class RunStore:
    """One folder per run under ``root`` (``<init>/f<fraction>_s<seed>/``): ``predictions.npz``, the run's
    fingerprint and ``result.json``, written last so that its presence marks the run as finished.

    Args:
        root: the sweep folder.
        fingerprints: the fingerprint of each job; a stored result of a different run is refused or cleared (per
            :func:`~monai_remedis.engines.fingerprint.finished_run`), never reused. None: any result counts.
    """

    def __init__(self, root: str | Path, fingerprints: JobFingerprints | None = None) -> None:
        self.root = Path(root)
        self.fingerprints = fingerprints

    def run_dir(self, job: Job) -> Path:
        return self.root / job.init / f"f{job.fraction:g}_s{job.seed}"

    def is_done(self, job: Job) -> bool:
        if self.fingerprints is None:
            return (self.run_dir(job) / "result.json").is_file()
        return finished_run(self.run_dir(job), self.fingerprints(job))

    def load(self, job: Job) -> RunResult | None:
        """The record and test probabilities of a finished run, or None."""
        run_dir = self.run_dir(job)
        if not self.is_done(job):
            return None
        pred = run_dir / "predictions.npz"
        probs = np.load(pred)["probs"] if pred.is_file() else None
        return json.loads((run_dir / "result.json").read_text()), probs

    def save(self, job: Job, probs: np.ndarray, labels: np.ndarray, extra: Mapping[str, Any]) -> RunResult:
        """Score a run's test predictions and store them (rank 0)."""
        probs = probs.astype(np.float32)  # as stored: a resumed sweep computes the same statistics
        m = classification_metrics(probs, labels)
        record = {
            "init": job.init,
            "fraction": job.fraction,
            "seed": job.seed,
            **{k: float(m[k]) for k in RECORD_METRICS if k in m},
            **extra,
        }
        run_dir = self.run_dir(job)
        if is_main_process():
            run_dir.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(run_dir / "predictions.npz", probs=probs, labels=labels)
            if self.fingerprints is not None:
                record_fingerprint(run_dir, self.fingerprints(job))
            atomic_write_json(record, run_dir / "result.json")
        logger.info("sweep %s fraction %g seed %d: AUC %.4f", job.init, job.fraction, job.seed, record["auc"])
        return record, probs


class Runner(Protocol):
    """Trains and scores one job (a finished job is read back from the store instead)."""

    store: RunStore

    def __call__(self, job: Job) -> RunResult: ...


class FinetuneRunner:
    """Full fine-tunes: one :class:`~monai_remedis.stages.finetune.FinetuneStage` per job, scored on the test set.

    The deterministic head of the transforms is decoded once for the whole sweep (``runtime.cache_decoded``).
    Picklable, so a :class:`ProcessExecutor` can send it to its workers.

    Args:
        evaluator: builds models and predicts on the test set.
        data: the sweep's datalists (``test`` resolved).
        config: sweep settings (``optim``, ``linear_probe``, ``log_every``, ``keep_checkpoints``).
        runtime: device, precision and decoding of the fine-tunes (their seed is the job's seed).
        store: the run folders.
    """

    def __init__(
        self, evaluator: Evaluator, data: SweepData, config: SweepConfig, runtime: RuntimeConfig, store: RunStore
    ) -> None:
        self.evaluator = evaluator
        self.config = config
        # resume=True: an interrupted fine-tune continues mid-run; FinetuneStage's fingerprint refuses other runs' files
        self.runtime = dataclasses.replace(runtime, log_every=config.log_every, progress_bar=False, resume=True)
        self.store = store
        eval_t, train_t = evaluator.transform, data.train_transform or evaluator.transform
        sets = {"train": (data.train, train_t), "val": (data.val, eval_t), "test": (data.test or [], eval_t)}
        self.data = {
            name: decode_once(items, t) if runtime.cache_decoded and items else (list(items), t)
            for name, (items, t) in sets.items()
        }

    def __call__(self, job: Job) -> RunResult:
        finished = self.store.load(job)
        if finished is not None:
            return finished
        (train, train_t), (val, val_t), (test, test_t) = self.data["train"], self.data["val"], self.data["test"]
        run_dir = self.store.run_dir(job)
        torch.manual_seed(job.seed)  # a scratch init is drawn by the job's seed, whatever ran before in this process
        trained = FinetuneStage(
            backbone=self.evaluator.model.new_backbone(),
            num_classes=self.evaluator.model.num_classes,
            train_datalist=train,
            train_transform=train_t,
            output_dir=run_dir,
            val_datalist=val or None,
            val_transform=val_t,
            init_weights=job.weights,
            label_fraction=job.fraction,
            fraction_seed=job.seed,
            linear_probe=self.config.linear_probe,
            optim=self.config.optim,
            runtime=dataclasses.replace(self.runtime, seed=job.seed),
        ).run()
        probs, labels = self.evaluator.predict(
            self.evaluator.model.load_classifier(trained["classifier"]), test, test_t
        )
        extra = {"num_labels": trained["num_labels"], "best_val_auc": trained.get("best_val_auc")}
        result = self.store.save(job, probs, labels, extra)
        if not self.config.keep_checkpoints and is_main_process():
            shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)  # finished: nothing left to resume
        return result


class ProbeRunner:
    """Linear probes: frozen-backbone features of train/val/test extracted once per init (cached on disk under
    ``feature_dir``), then one logistic-regression head per job, fitted in milliseconds.

    Args:
        evaluator: builds backbones and runs feature extraction.
        data: the sweep's datalists (``test`` resolved).
        config: sweep settings (``probe_l2_grid``, ``probe_max_iter``).
        store: the run folders.
        feature_dir: the feature cache.
    """

    def __init__(
        self, evaluator: Evaluator, data: SweepData, config: SweepConfig, store: RunStore, feature_dir: Path
    ) -> None:
        self.evaluator = evaluator
        self.data = data
        self.config = config
        self.store = store
        self.cache = FeatureCache(feature_dir)
        self._features: dict[str, dict[str, FeatureSet | None]] = {}

    def features(self, init: str, weights: str | Path | None) -> dict[str, FeatureSet | None]:
        """Train/val/test features of one init (disk-cached; kept in memory for the init's jobs)."""
        if init in self._features:
            return self._features[init]
        spec = self.evaluator.model

        def factory() -> torch.nn.Module:
            torch.manual_seed(0)  # scratch: the same random backbone every time
            model = spec.new_backbone()
            if weights:
                load_backbone_weights(model, weights)
            return model

        key = {"backbone": spec.backbone, "in_channels": spec.in_channels, "weights": file_fingerprint(weights)}
        device = resolve_device(self.evaluator.device)
        sets = {"train": self.data.train, "val": self.data.val, "test": self.data.test}
        self._features = {
            init: {
                name: self.cache.load_or_extract(
                    f"{init}/{name}",
                    factory,
                    items,
                    self.evaluator.transform,
                    key,
                    self.evaluator.batch_size,
                    device,
                )
                if items
                else None
                for name, items in sets.items()
            }
        }
        return self._features[init]

    def __call__(self, job: Job) -> RunResult:
        finished = self.store.load(job)
        if finished is not None:
            return finished
        features = self.features(job.init, job.weights)
        train, val, test = features["train"], features["val"], features["test"]
        assert train is not None and test is not None
        idx = torch.as_tensor(subset_indices(self.data.train, job.fraction, job.seed))
        probe = train_linear_probe(
            train.features[idx],
            train.labels[idx],
            self.evaluator.model.num_classes,
            val=(val.features, val.labels) if val is not None else None,
            l2_grid=self.config.probe_l2_grid,
            standardise=train.features,
            max_iter=self.config.probe_max_iter,
        )
        probs = probe.predict_proba(test.features)
        extra = {"num_labels": int(idx.numel()), "best_val_auc": probe.val_auc, "l2": probe.l2}
        return self.store.save(job, probs, test.labels.numpy(), extra)


class SequentialExecutor:
    """Run jobs one after the other in this process."""

    def run(self, runner: Runner, jobs: Sequence[Job]) -> dict[RunKey, RunResult]:
        return {job.key: runner(job) for job in jobs}


class ProcessExecutor:
    """Run the unfinished jobs in ``workers`` spawned processes, then read every result back from the store.

    Each process receives the runner once (pickled with its arguments) and takes jobs from a shared queue until
    it is empty; it uses ``threads // workers`` torch threads. A failed worker raises ``RuntimeError`` here. A
    worker ends when this process dies (a scheduler's SIGTERM or SIGKILL to its pid only), so no orphan keeps
    training and holding its run folder's lock; its unfinished run is trained again on the next start.

    Args:
        workers: number of processes (1: sequential).
    """

    def __init__(self, workers: int) -> None:
        self.workers = max(1, int(workers))

    def run(self, runner: Runner, jobs: Sequence[Job]) -> dict[RunKey, RunResult]:
        pending = [job for job in jobs if not runner.store.is_done(job)]
        if self.workers > 1 and len(pending) > 1:
            unshadow_sys_path()  # spawned workers inherit sys.path
            context = multiprocessing.get_context("spawn")
            queue = context.Queue()
            for job in pending:
                queue.put(job)
            workers = min(self.workers, len(pending))
            for _ in range(workers):
                queue.put(None)
            threads = max(1, torch.get_num_threads() // workers)
            processes = [
                context.Process(target=_work, args=(runner, queue, threads), daemon=False) for _ in range(workers)
            ]
            for process in processes:
                process.start()
            for process in processes:
                process.join()
            failed = [p.exitcode for p in processes if p.exitcode != 0]
            if failed:
                raise RuntimeError(f"sweep worker(s) failed with exit code(s) {failed}; see their log above.")
        return SequentialExecutor().run(runner, jobs)  # finished runs are read back, the rest run here


def _work(runner: Runner, queue: Any, threads: int) -> None:
    """Worker process: take jobs from ``queue`` until the ``None`` sentinel."""
    _exit_with_parent()
    torch.set_num_threads(threads)
    for job in iter(queue.get, None):
        runner(job)


def _exit_with_parent() -> None:
    """End this spawned worker as soon as the process that started it dies (a watcher thread on its sentinel)."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(1)  # the parent is gone: nobody reads this worker's results any more

    threading.Thread(target=watch, name="sweep-parent-watch", daemon=True).start()


def summarise(
    runs: Mapping[RunKey, RunResult],
    plan: SweepPlan,
    test_datalist: Sequence[Mapping[str, Any]],
    baseline_init: str,
    paired_n_boot: int,
) -> dict[str, Any]:
    """Summary, label-reduction factors, paired comparisons with the baseline and per-class metrics (largest
    fraction) of the sweep's records.

    Returns:
        ``records``, ``summary``, ``label_reduction``, ``paired`` and ``per_class``.
    """
    records = [record for record, _ in runs.values()]
    probs = {key: p for key, (_, p) in runs.items() if p is not None}
    inits = list(plan.inits)
    summary = summarise_sweep(records, metrics=[m for m in RECORD_METRICS if any(m in r for r in records)])
    table = metric_table(records, inits, plan.fractions, plan.seeds)
    reduction = label_reduction_factor(plan.fractions, table, baseline_init=baseline_init)
    warning = uninformative_target(reduction, baseline_init)
    if warning:
        logger.warning("data-efficiency sweep: %s", warning)
    labels = np.array([int(d["label"]) for d in test_datalist])
    paired = (
        paired_comparisons(
            probs,
            labels,
            baseline_init,
            inits,
            plan.fractions,
            plan.seeds,
            n_boot=paired_n_boot,
            groups=patient_groups(test_datalist),
        )
        if paired_n_boot > 0
        else []
    )
    per_class = sweep_per_class(probs, labels, inits, plan.fractions[-1])
    return {
        "records": records,
        "summary": summary,
        "label_reduction": reduction,
        "paired": paired,
        "per_class": per_class,
    }
