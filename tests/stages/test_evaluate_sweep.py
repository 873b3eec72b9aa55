"""The sweep's parts: the plan, the resumable run store, and the executors (sequential and spawned processes)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import monai_remedis

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sweep_toy import LABELS, ToyRunner  # noqa: E402

from monai_remedis.stages.config import SweepConfig  # noqa: E402
from monai_remedis.stages.evaluate import (  # noqa: E402
    Job,
    ProcessExecutor,
    RunStore,
    SequentialExecutor,
    SweepPlan,
    summarise,
)

PLAN = SweepPlan({"remedis": "ssl.pt", "baseline": None}, [0.1, 1.0], [0, 1])


def test_plan_lists_every_init_fraction_and_seed_in_order() -> None:
    jobs = PLAN.jobs()
    assert [j.key for j in jobs[:3]] == [("remedis", 0.1, 0), ("remedis", 0.1, 1), ("remedis", 1.0, 0)]
    assert len(jobs) == 8 and {j.weights for j in jobs if j.init == "baseline"} == {None}
    assert PLAN.jobs("baseline") == [j for j in jobs if j.init == "baseline"]
    config = SweepConfig(inits={"baseline": None}, fractions=[1.0, 0.01], seeds=[2])
    assert SweepPlan.from_config(config).jobs() == [Job("baseline", None, 0.01, 2), Job("baseline", None, 1.0, 2)]


def test_store_marks_a_run_finished_only_with_its_result_and_reads_it_back(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    job = Job("remedis", None, 0.5, 1)
    assert store.load(job) is None and store.run_dir(job) == tmp_path / "remedis" / "f0.5_s1"
    probs = np.array([[0.9, 0.1], [0.2, 0.8]], dtype=np.float64)
    record, saved = store.save(job, probs, np.array([0, 1]), {"num_labels": 2})
    assert record["auc"] == 1.0 and record["num_labels"] == 2 and saved.dtype == np.float32
    loaded_record, loaded_probs = store.load(job)
    assert loaded_record == json.loads(json.dumps(record)) and np.array_equal(loaded_probs, saved)


def test_sequential_executor_trains_only_unfinished_runs(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    first = SequentialExecutor().run(ToyRunner(store), PLAN.jobs())
    assert set(first) == {j.key for j in PLAN.jobs()}
    (store.run_dir(PLAN.jobs()[0]) / "result.json").unlink()
    again = SequentialExecutor().run(ToyRunner(store), PLAN.jobs())
    assert [r for r, _ in again.values()] == [r for r, _ in first.values()]


def test_process_executor_runs_jobs_in_worker_processes_without_global_state(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    runs = ProcessExecutor(workers=2).run(ToyRunner(store), PLAN.jobs())
    pids = {record["pid"] for record, _ in runs.values()}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2  # every run trained in a worker, read back here
    assert len(runs) == 8 and all(p is not None for _, p in runs.values())


def test_workers_start_after_monai_put_the_package_folder_on_sys_path(tmp_path: Path, monkeypatch) -> None:
    """``python -m monai.bundle run`` puts the parent of ``monai_remedis/configs`` (the package folder) on sys.path;
    a spawned worker then imported our ``ssl`` subpackage as the standard library's ``ssl`` and died."""
    package = str(Path(monai_remedis.__file__).resolve().parent)
    monkeypatch.setattr(sys, "path", [sys.path[0], package, *sys.path[1:]])  # what ConfigWorkflow.run does
    runs = ProcessExecutor(workers=2).run(ToyRunner(RunStore(tmp_path)), PLAN.jobs())
    assert len(runs) == 8 and package not in sys.path


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, left to a container's PID 1 that may never reap it, counts as dead)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="reads process states from /proc")
def test_workers_end_when_the_sweep_process_is_killed(tmp_path: Path) -> None:
    """A scheduler that signals only the sweep's pid must not leave workers training and holding run locks."""
    script = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})\n"
        "from sweep_toy import ToyRunner\n"
        "from monai_remedis.stages.evaluate import ProcessExecutor, RunStore, SweepPlan\n"
        "plan = SweepPlan({'remedis': None, 'baseline': None}, [0.1, 1.0], [0, 1])\n"
        f"ProcessExecutor(workers=2).run(ToyRunner(RunStore({str(tmp_path)!r}), sleep=600), plan.jobs())\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script])
    workers: list[int] = []
    try:
        for _ in range(240):  # the spawned workers import torch first
            workers = [int(p.name) for p in (tmp_path / "pids").glob("*")] if (tmp_path / "pids").is_dir() else []
            if len(workers) == 2 or parent.poll() is not None:
                break
            time.sleep(0.5)
        assert len(workers) == 2, "the two workers did not start"
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        for _ in range(120):
            if not any(_alive(pid) for pid in workers):
                break
            time.sleep(0.5)
        assert not any(_alive(pid) for pid in workers), "a worker outlived its sweep process"
    finally:
        parent.kill()
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_process_executor_reports_a_failed_worker(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="sweep worker"):
        ProcessExecutor(workers=2).run(ToyRunner(RunStore(tmp_path), fail_init="baseline"), PLAN.jobs())


def test_summary_compares_with_the_baseline_and_finds_the_label_reduction(tmp_path: Path) -> None:
    runs = SequentialExecutor().run(ToyRunner(RunStore(tmp_path)), PLAN.jobs())
    test = [{"label": int(y)} for y in LABELS]
    sweep = summarise(runs, PLAN, test, "baseline", paired_n_boot=20)
    assert len(sweep["records"]) == 8 and {r["init"] for r in sweep["summary"]} == {"remedis", "baseline"}
    assert [(r["init"], r["fraction"]) for r in sweep["paired"]] == [("remedis", 0.1), ("remedis", 1.0)]
    assert set(sweep["label_reduction"]) == {"remedis", "baseline"}
    assert {r["init"] for r in sweep["per_class"]} == {"remedis", "baseline"}
    assert summarise(runs, PLAN, test, "baseline", paired_n_boot=0)["paired"] == []
