"""kill -9 a stage and a sweep mid-epoch, then resume: the same epoch count as an uninterrupted run, nothing lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from monai_remedis.data.paths import PROJECT_ROOT

EPOCHS = 4
FINETUNE = [
    "-m", "monai_remedis", "run", "cxr", "finetune", "--limit", "256", "--min_steps", "0", "--finetune_init", "None",
    "--max_epochs", str(EPOCHS), "--log_every", "0",
]  # fmt: skip
SWEEP_WORKER = Path(__file__).with_name("sweep_worker.py")


def _start(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.Popen(
        [sys.executable, *args], cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip


def _kill_during_epoch_3(proc: subprocess.Popen, checkpoints: Path, timeout: float = 400) -> None:
    deadline = time.monotonic() + timeout
    while not (checkpoints / "checkpoint_2.pt").is_file():
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "no checkpoint_2.pt in time"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # kill -9 while epoch 3 trains
    proc.wait()


def _finish(args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow
def test_kill_9_finetune_stage_then_resume(tmp_path: Path) -> None:
    args = [*FINETUNE, "--output_dir", str(tmp_path)]
    _kill_during_epoch_3(_start(args), tmp_path / "finetune" / "checkpoints")
    assert not (tmp_path / "finetune" / "metrics.json").exists()
    _finish([*args, "--resume", "True"])
    run_dir = tmp_path / "finetune"
    assert json.loads((run_dir / "metrics.json").read_text())["epochs"] == EPOCHS
    assert json.loads((run_dir / "history.json").read_text())["epoch"] == list(range(1, EPOCHS + 1))
    assert not [p for p in run_dir.rglob("*") if p.name.startswith(("tmp", ".")) and p.name != ".lock"]


@pytest.mark.slow
def test_kill_9_sweep_finetune_then_resume(tmp_path: Path, pneumonia_npz: Path) -> None:
    args = [str(SWEEP_WORKER), str(tmp_path), str(pneumonia_npz), str(EPOCHS)]
    run_dir = tmp_path / "sweep" / "baseline" / "f1_s0"
    _kill_during_epoch_3(_start(args), run_dir / "checkpoints")
    assert not (run_dir / "result.json").exists()
    _finish(args)
    assert json.loads((run_dir / "result.json").read_text())["num_labels"] == 256
    assert json.loads((run_dir / "history.json").read_text())["epoch"] == list(range(1, EPOCHS + 1))
