"""Resume that never loses work: one process per run directory, no orphaned temp files, intact checkpoints only.

* :func:`lock_run_dir` takes an exclusive ``fcntl`` lock on ``<run_dir>/.lock`` for the rest of the process (or
  until :func:`unlock_run_dir`): a second process on the same ``output_dir`` is refused, naming the holder, instead
  of both writing the same checkpoints. The operating system drops the lock when the process dies (kill -9
  included), so a stale lock file never blocks a rerun.
* :func:`remove_orphaned_temp_files` deletes what a kill during an atomic write leaves behind: ``.<name>.*.tmp``
  (our :func:`~monai_remedis.engines.runtime.atomic_torch_save`) and ``tmpXXXXXXXX`` (Ignite's atomic
  ``DiskSaver``). Only called while holding the lock, so no live writer loses its file.
* :func:`latest_intact_checkpoint` picks the highest ``checkpoint_N.pt`` whose zip container is complete, falling
  back to the previous one with a warning when the latest is truncated or corrupt.
* :func:`seed_each_epoch` draws each epoch's randomness (shuffle, augmentations, dropout) from ``(seed, epoch)``
  alone, so a run resumed after epoch N trains epoch N+1 on the batches the uninterrupted run would have seen,
  instead of replaying the random draws of epoch 1.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import random
import re
import socket
import zipfile
from pathlib import Path
from typing import IO

import numpy as np
import torch
from ignite.engine import Engine, Events
from monai.transforms import Randomizable

logger = logging.getLogger("monai_remedis")

LOCK_FILE = ".lock"
CHECKPOINT_DIR = "checkpoints"
_CKPT_RE = re.compile(r"checkpoint_(\d+)\.pt$")
_TEMP_RES = (re.compile(r"^\..+\.tmp$"), re.compile(r"^tmp[a-z0-9_]{6,}$"))
_HELD: dict[Path, IO[str]] = {}


class RunDirLockedError(RuntimeError):
    """Another process is writing to the same run directory."""


def lock_run_dir(run_dir: str | Path) -> Path:
    """Hold an exclusive lock on ``run_dir`` for this process (re-entrant: a second call is a no-op).

    Raises:
        RunDirLockedError: naming the process that holds it.
    """
    run_dir = Path(run_dir).resolve()
    if run_dir in _HELD:
        return run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_FILE
    handle = open(path, "a+")  # noqa: SIM115 - kept open for as long as the lock is held
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise RunDirLockedError(
            f"{run_dir} is in use by {holder}: two runs on one output_dir would overwrite each other's checkpoints. "
            "Wait for it to finish, or give this run another output_dir."
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
    handle.flush()
    _HELD[run_dir] = handle
    return run_dir


def unlock_run_dir(run_dir: str | Path) -> None:
    """Release the lock taken by :func:`lock_run_dir` (no-op when not held)."""
    handle = _HELD.pop(Path(run_dir).resolve(), None)
    if handle is not None:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def remove_orphaned_temp_files(run_dir: str | Path) -> list[Path]:
    """Delete temp files of interrupted atomic writes in ``run_dir`` and its ``checkpoints/``; returns them."""
    removed = []
    for folder in (Path(run_dir), Path(run_dir) / CHECKPOINT_DIR):
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if path.is_file() and any(r.match(path.name) for r in _TEMP_RES):
                path.unlink(missing_ok=True)
                removed.append(path)
    if removed:
        logger.warning("removed %d orphaned temp file(s) of an interrupted write: %s", len(removed), removed[:5])
    return removed


def is_intact(path: str | Path) -> bool:
    """True when a ``torch.save`` file is a complete zip archive whose members pass their CRC checks."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None
    except (zipfile.BadZipFile, OSError, EOFError):
        return False


def latest_intact_checkpoint(run_dir: str | Path) -> Path | None:
    """The highest-epoch intact ``checkpoint_N.pt`` in ``run_dir/checkpoints``, or None.

    A corrupt or truncated later checkpoint is skipped with a warning naming it and the one used instead.
    """
    folder = Path(run_dir) / CHECKPOINT_DIR
    found = sorted(
        ((int(m.group(1)), p) for p in folder.glob("checkpoint_*.pt") if (m := _CKPT_RE.search(p.name))),
        reverse=True,
    )
    corrupt = []
    for _, path in found:
        if is_intact(path):
            if corrupt:
                logger.warning(
                    "checkpoint(s) %s are corrupt or truncated (interrupted write?); resuming from %s instead.",
                    ", ".join(p.name for p in corrupt),
                    path.name,
                )
            return path
        corrupt.append(path)
    if corrupt:
        logger.warning("every checkpoint in %s is corrupt (%s); starting from epoch 0.", folder, len(corrupt))
    return None


def checkpoint_epoch(checkpoint: str | Path) -> int:
    """The epoch in a ``checkpoint_N.pt`` name."""
    match = _CKPT_RE.search(Path(checkpoint).name)
    if match is None:
        raise ValueError(f"not a training checkpoint name: {checkpoint}")
    return int(match.group(1))


def history_until(path: str | Path, checkpoint: str | Path) -> dict[str, list[float]]:
    """The per-epoch history in ``path`` up to the epoch of ``checkpoint`` (later epochs will be re-run).

    A resumed run continues this history instead of starting an empty one, so ``history.json`` keeps every epoch.
    """
    path = Path(path)
    try:
        history = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    keep = sum(1 for e in history.get("epoch", []) if e <= checkpoint_epoch(checkpoint))
    return {key: list(values)[:keep] for key, values in history.items()}


def epoch_seed(seed: int, epoch: int) -> int:
    """The 32-bit seed of ``epoch`` of a run seeded with ``seed`` (NumPy ``SeedSequence`` of both)."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def seed_each_epoch(engine: Engine, seed: int) -> None:
    """Reseed Python, NumPy, torch and the training dataset's random transforms when each epoch starts.

    The batches of epoch N then depend on ``(seed, N)`` only, not on how many epochs this process has run: a resumed
    run equals the uninterrupted one wherever the computation is deterministic (CPU, ``num_workers=0``; persistent
    loader workers keep their own transform states). Without it, a run resumed after epoch 2 shuffles and augments
    epoch 3 as the first run did epoch 1.

    Args:
        engine: the trainer; its data loader's ``dataset.transform`` is reseeded when it is ``Randomizable``.
        seed: the run's seed (already offset by rank under DDP).
    """

    def reseed(engine: Engine) -> None:
        value = epoch_seed(seed, engine.state.epoch)
        random.seed(value)
        np.random.seed(value)
        torch.manual_seed(value)
        transform = getattr(getattr(engine.state.dataloader, "dataset", None), "transform", None)
        if isinstance(transform, Randomizable):
            transform.set_random_state(seed=value)

    engine.add_event_handler(Events.EPOCH_STARTED, reseed)
