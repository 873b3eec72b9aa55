"""Resume that never loses work: run-dir locks, orphaned temp files, corrupt checkpoints, fingerprint diffs."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from monai_remedis.engines.fingerprint import (
    FINGERPRINT_FILE,
    StaleOutputError,
    claim_run_dir,
    fingerprint_changes,
    make_fingerprint,
    release_run_dir,
)
from monai_remedis.engines.resume import (
    RunDirLockedError,
    latest_intact_checkpoint,
    lock_run_dir,
    remove_orphaned_temp_files,
    seed_each_epoch,
    unlock_run_dir,
)


def _checkpoints(run_dir: Path, epochs: list[int]) -> list[Path]:
    folder = run_dir / "checkpoints"
    folder.mkdir(parents=True)
    paths = []
    for epoch in epochs:
        torch.save(
            {"trainer": {"epoch": epoch}, "network": {"w": torch.full((64,), float(epoch))}},
            folder / f"checkpoint_{epoch}.pt",
        )
        paths.append(folder / f"checkpoint_{epoch}.pt")
    return paths


def test_truncated_latest_checkpoint_falls_back_to_the_previous_intact_one(tmp_path: Path, caplog) -> None:
    second, third = _checkpoints(tmp_path, [2, 3])
    third.write_bytes(third.read_bytes()[: third.stat().st_size // 2])  # kill -9 mid-write without atomic rename
    with caplog.at_level(logging.WARNING, logger="monai_remedis"):
        assert latest_intact_checkpoint(tmp_path) == second
    assert "checkpoint_3.pt" in caplog.text and "checkpoint_2.pt" in caplog.text
    assert torch.load(second, weights_only=True)["trainer"]["epoch"] == 2


def test_highest_intact_checkpoint_wins_by_epoch_not_name(tmp_path: Path) -> None:
    _checkpoints(tmp_path, [9, 10])
    assert latest_intact_checkpoint(tmp_path).name == "checkpoint_10.pt"
    assert latest_intact_checkpoint(tmp_path / "nothing") is None


def test_orphaned_temp_files_of_interrupted_writes_are_removed(tmp_path: Path) -> None:
    _checkpoints(tmp_path, [1])
    ours = tmp_path / ".classifier.pt.abc123.tmp"  # runtime.atomic_torch_save
    ignite = tmp_path / "checkpoints" / "tmpk2j4_x9a"  # ignite DiskSaver(atomic=True)
    keep = tmp_path / "notes.txt"
    for p in (ours, ignite, keep):
        p.write_text("partial")
    removed = remove_orphaned_temp_files(tmp_path)
    assert sorted(removed) == sorted([ours, ignite])
    assert keep.exists() and (tmp_path / "checkpoints" / "checkpoint_1.pt").exists()


def test_a_second_process_on_the_same_output_dir_is_refused(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from monai_remedis.engines.resume import lock_run_dir; "
            f"lock_run_dir({str(tmp_path)!r}); print('locked', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunDirLockedError, match=f"pid {holder.pid}"):
            lock_run_dir(tmp_path)
    finally:
        holder.kill()
        holder.wait()
    deadline = time.monotonic() + 10
    while True:  # the OS drops the lock of a killed process: the rerun proceeds
        try:
            lock_run_dir(tmp_path)
            break
        except RunDirLockedError:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    unlock_run_dir(tmp_path)


def test_fingerprint_diff_names_what_changed(tmp_path: Path) -> None:
    weights = tmp_path / "backbone.pt"
    torch.save({"w": torch.zeros(3)}, weights)
    items = [{"image": "a.png", "label": 0}, {"image": "b.png", "label": 1}]
    old = make_fingerprint("finetune", {"max_epochs": 3, "device": "cpu"}, {"init_weights": weights}, {"train": items})
    torch.save({"w": torch.ones(3)}, weights)  # retrained backbone at the same path
    new = make_fingerprint(
        "finetune", {"max_epochs": 5, "device": "cuda"}, {"init_weights": weights}, {"train": items[:1]}
    )
    changes = fingerprint_changes(old, new)
    assert any(c.startswith("config.max_epochs: 3 -> 5") for c in changes)
    assert any(c.startswith("inputs.init_weights") for c in changes)
    assert any(c.startswith('data.train: "2 items') for c in changes)
    assert not any("device" in c for c in changes)  # a device change is not a different run


def test_resume_refuses_another_runs_outputs_and_fresh_clears_them(tmp_path: Path, monkeypatch) -> None:
    first = make_fingerprint("ssl", {"max_epochs": 3}, data={"train": [{"image": "a.png"}]})
    assert claim_run_dir(tmp_path, first, resume=True) is False  # nothing to resume yet
    _checkpoints(tmp_path, [1, 2])
    assert claim_run_dir(tmp_path, first, resume=True) is True
    other = make_fingerprint("ssl", {"max_epochs": 3}, data={"train": [{"image": "b.png"}]})
    with pytest.raises(StaleOutputError, match="data.train"):
        claim_run_dir(tmp_path, other, resume=True)
    monkeypatch.setenv("MONAI_REMEDIS_ON_STALE", "fresh")
    assert claim_run_dir(tmp_path, other, resume=True) is False
    assert not (tmp_path / "checkpoints").exists()
    assert json.loads((tmp_path / FINGERPRINT_FILE).read_text())["data"] == other["data"]
    release_run_dir(tmp_path)


def test_a_fresh_run_clears_old_checkpoints_so_no_later_resume_picks_them(tmp_path: Path) -> None:
    _checkpoints(tmp_path, [3])  # a 1024-image run's checkpoint, no fingerprint (older version)
    fingerprint = make_fingerprint("finetune", {"max_epochs": 1}, data={"train": [{"image": "a.png"}]})
    with pytest.raises(StaleOutputError, match="no fingerprint"):
        claim_run_dir(tmp_path, fingerprint, resume=True)
    assert claim_run_dir(tmp_path, fingerprint, resume=False) is False
    assert latest_intact_checkpoint(tmp_path) is None


def test_another_stages_directory_is_never_cleared(tmp_path: Path) -> None:
    claim_run_dir(tmp_path, make_fingerprint("ssl", {}), resume=False)
    (tmp_path / "backbone.pt").write_bytes(b"ssl output")
    with pytest.raises(StaleOutputError, match="holds a 'ssl' run"):
        claim_run_dir(tmp_path, make_fingerprint("finetune", {}), resume=False)
    assert (tmp_path / "backbone.pt").read_bytes() == b"ssl output"
    release_run_dir(tmp_path)


def _draws_per_epoch(max_epochs: int, start_epoch: int = 0) -> list[list[float]]:
    """Per-epoch (shuffle order, augmentation, torch draw) of a toy trainer, started after ``start_epoch``."""
    from ignite.engine import Engine, Events
    from monai.data import DataLoader, Dataset
    from monai.transforms import Compose, RandGaussianNoised

    torch.manual_seed(123)  # what the process did before training: a resumed process differs here
    data = [{"image": torch.zeros(1, 2), "i": float(i)} for i in range(6)]
    transform = Compose([RandGaussianNoised("image", prob=1.0)])
    loader = DataLoader(Dataset(data, transform), batch_size=3, shuffle=True)
    draws: list[list[float]] = []
    engine = Engine(lambda e, b: draws[-1].extend([*b["i"].tolist(), float(b["image"].sum()), float(torch.rand(1))]))
    engine.add_event_handler(Events.EPOCH_STARTED, lambda e: draws.append([]))

    @engine.on(Events.STARTED)
    def _restore(e: Engine) -> None:  # what the checkpoint loader does
        e.state.epoch, e.state.iteration = start_epoch, start_epoch * len(loader)

    seed_each_epoch(engine, seed=7)
    engine.run(loader, max_epochs=max_epochs)
    return draws


def test_a_resumed_epoch_draws_what_the_uninterrupted_run_drew() -> None:
    uninterrupted = _draws_per_epoch(3)
    assert uninterrupted[0] != uninterrupted[2]
    assert _draws_per_epoch(3, start_epoch=2) == uninterrupted[2:]  # shuffle, transform and torch draws all equal
