"""kill -9 a stage and the evaluate sweep mid-epoch, then resume: nothing finished is redone or lost, and the
resumed run equals an uninterrupted one (CPU, ``num_workers=0``: the computation is deterministic).

Each test runs ``python -m monai_remedis run cxr ...`` on real PneumoniaMNIST (256 items, batch 128: 2 steps per
epoch) as subprocesses: an uninterrupted reference run, a run killed at a point it shows (a stage: its log line of
the first iteration of epoch 3; the sweep: the second run's ``checkpoint_2.pt``; never after a fixed sleep), and
the same command again to resume.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from monai_remedis.data.paths import PROJECT_ROOT
from monai_remedis.engines.resume import is_intact

EPOCHS = 4
KILL_AT = f"Epoch: 3/{EPOCHS}, Iter: 1/"  # StatsHandler's line after the first iteration of epoch 3
COMMON = ["--limit", "256", "--log_every", "1", "--num_workers", "0"]
STAGES = {
    "finetune": (
        ["finetune", "--min_steps", "0", "--finetune_init", "None", "--max_epochs", str(EPOCHS)],
        "classifier.pt",
    ),
    "ssl": (["ssl", "--ssl_init", "None", "--ssl_epochs", str(EPOCHS), "--batch_size", "128"], "backbone.pt"),
}
SWEEP = [
    "evaluate", "--finetune_checkpoint", "None", "--ood_sets", "{}", "--sweep_inits", "{'baseline': None}",
    "--sweep_fractions", "[1.0]", "--sweep_seeds", "[0, 1]", "--sweep_epochs", str(EPOCHS), "--min_steps", "0",
    "--n_boot", "0",
]  # fmt: skip


def _command(args: list[str], output_dir: Path) -> list[str]:
    return [sys.executable, "-m", "monai_remedis", "run", "cxr", *args, *COMMON, "--output_dir", str(output_dir)]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}


def _run(args: list[str], output_dir: Path) -> str:
    """Run to completion; returns the log."""
    done = subprocess.run(
        _command(args, output_dir), cwd=PROJECT_ROOT, env=_env(), capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    return done.stdout + done.stderr


def _kill_at(args: list[str], output_dir: Path, marker: str, occurrence: int = 1) -> str:
    """Start the run and kill -9 it when ``marker`` appears in its log for the ``occurrence``-th time."""
    proc = subprocess.Popen(
        _command(args, output_dir), cwd=PROJECT_ROOT, env=_env(), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    log, seen = [], 0
    assert proc.stdout is not None
    for line in proc.stdout:  # ends when the process does
        log.append(line)
        seen += marker in line
        if seen == occurrence:
            os.killpg(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, f"the run ended before '{marker}':\n" + "".join(log[-40:])
    return "".join(log)


def _kill_when(args: list[str], output_dir: Path, path: Path, timeout: float = 600) -> None:
    """Start the run and kill -9 it as soon as ``path`` exists (polled every 20 ms)."""
    with open(output_dir.parent / f"{output_dir.name}.log", "w") as log:
        proc = subprocess.Popen(
            _command(args, output_dir), cwd=PROJECT_ROOT, env=_env(), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not path.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    tail = (output_dir.parent / f"{output_dir.name}.log").read_text()[-3000:]
    assert proc.returncode == -signal.SIGKILL and path.exists(), f"the run ended before {path} appeared:\n{tail}"


def _trained_epochs(log: str) -> list[int]:
    """The training epochs a log shows completed, by Ignite's ``Epoch[N] Complete`` lines of the trainer."""
    line = "SupervisedTrainer - INFO - Epoch[{}] Complete"
    return [e for e in range(1, EPOCHS + 1) for _ in range(log.count(line.format(e)))]


def _assert_same_weights(a: Path, b: Path) -> None:
    left, right = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
    assert left.keys() == right.keys()
    for key in left:
        assert torch.equal(left[key], right[key]), f"{key} differs between the resumed and the uninterrupted run"


def _without_paths(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in ("classifier", "run_dir")}


@pytest.mark.slow
@pytest.mark.parametrize("stage", sorted(STAGES))
def test_kill_9_stage_mid_epoch_then_resume_equals_uninterrupted(tmp_path: Path, stage: str) -> None:
    args, weights = STAGES[stage]
    _run(args, tmp_path / "reference")
    reference = tmp_path / "reference" / stage

    _kill_at(args, tmp_path / "killed", KILL_AT)
    run_dir = tmp_path / "killed" / stage
    assert not (run_dir / "metrics.json").exists()  # unfinished (a fine-tune's best classifier.pt may exist)
    chain = sorted(p.name for p in (run_dir / "checkpoints").glob("checkpoint_*.pt"))
    assert chain == ["checkpoint_1.pt", "checkpoint_2.pt"]
    assert all(is_intact(run_dir / "checkpoints" / name) for name in chain)
    assert json.loads((run_dir / "history.json").read_text())["epoch"] == [1, 2]

    log = _run([*args, "--resume", "True"], tmp_path / "killed")
    assert f"resuming from {run_dir / 'checkpoints' / 'checkpoint_2.pt'}" in log  # epochs 1-2 are not trained again
    assert "Epoch: 1/" not in log and "Epoch: 2/" not in log
    history = json.loads((run_dir / "history.json").read_text())
    assert history["epoch"] == list(range(1, EPOCHS + 1))
    assert history == json.loads((reference / "history.json").read_text())  # losses, lr, val AUC of every epoch
    _assert_same_weights(run_dir / weights, reference / weights)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert _without_paths(metrics) == _without_paths(json.loads((reference / "metrics.json").read_text()))
    final = sorted(p.name for p in (run_dir / "checkpoints").glob("checkpoint_*.pt"))
    assert final == [f"checkpoint_{EPOCHS - 1}.pt", f"checkpoint_{EPOCHS}.pt"]
    assert all(is_intact(run_dir / "checkpoints" / n) for n in final)
    assert not [p for p in run_dir.rglob("*") if p.name.startswith(("tmp", ".")) and p.name != ".lock"]


@pytest.mark.slow
def test_kill_9_evaluate_sweep_mid_run_then_resume_equals_uninterrupted(tmp_path: Path) -> None:
    reference_log = _run(SWEEP, tmp_path / "reference")
    reference = tmp_path / "reference" / "evaluate" / "sweep" / "baseline"
    assert _trained_epochs(reference_log) == [1, 1, 2, 2, 3, 3, 4, 4]  # two runs of 4 epochs

    sweep = tmp_path / "killed" / "evaluate" / "sweep" / "baseline"
    first, second = sweep / "f1_s0", sweep / "f1_s1"
    _kill_when(SWEEP, tmp_path / "killed", second / "checkpoints" / "checkpoint_2.pt")  # the second run, in epoch 3
    assert (first / "result.json").is_file() and not (second / "result.json").exists()
    finished = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in first.iterdir() if p.is_file()}
    chain = sorted(p.name for p in (second / "checkpoints").glob("checkpoint_*.pt"))
    assert chain == ["checkpoint_1.pt", "checkpoint_2.pt"]

    log = _run(SWEEP, tmp_path / "killed")  # the same command: a sweep always resumes
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in first.iterdir() if p.is_file()} == finished
    assert f"resuming from {second / 'checkpoints' / 'checkpoint_2.pt'}" in log
    assert _trained_epochs(log) == [3, 4]  # only the interrupted run trains, and only from epoch 3
    assert json.loads((second / "history.json").read_text())["epoch"] == list(range(1, EPOCHS + 1))
    for run in ("f1_s0", "f1_s1"):
        resumed, uninterrupted = sweep / run, reference / run
        assert json.loads((resumed / "history.json").read_text()) == json.loads(
            (uninterrupted / "history.json").read_text()
        )
        assert json.loads((resumed / "result.json").read_text()) == json.loads(
            (uninterrupted / "result.json").read_text()
        )  # test AUC, accuracy, best validation AUC, number of labels
        _assert_same_weights(resumed / "classifier.pt", uninterrupted / "classifier.pt")
    summary = tmp_path / "killed" / "evaluate" / "metrics.json"
    assert summary.is_file()
