"""Run fingerprints: what produced a run directory's outputs, so stale outputs are never reused or resumed.

A fingerprint records the stage, its configuration (without settings that do not change results: device, workers,
logging), the SHA-256 of every input checkpoint, a digest of every datalist (paths and in-memory pixels) and the
code version. It is written to ``<run_dir>/fingerprint.json`` when a stage starts (:func:`claim_run_dir`) and beside
each finished sweep run (:func:`finished_run`, :func:`record_fingerprint`).

Policy (``on_stale``; default from the environment variable ``MONAI_REMEDIS_ON_STALE``, else ``error``):

* ``resume=False``: a fresh run. Earlier outputs of the same stage in the directory (checkpoints, history, metrics,
  exported weights) are cleared first, so a later resume can never pick them up.
* ``resume=True`` with a matching fingerprint: continue from the latest intact checkpoint.
* ``resume=True`` (or a finished sweep run) with a different fingerprint, or checkpoints without one (written by an
  older version): ``error`` refuses, saying what changed; ``fresh`` clears the outputs and starts over, with a
  warning saying what changed. ``monai-remedis run --fresh`` sets ``fresh``.
* A directory holding another stage's fingerprint is always refused.

A different code version alone is a warning: resuming across a bug-fix release is usual, and the version is still
recorded. Transforms are identified by what they do (:func:`transform_digest`: their output on the first items of
their datalist, random draws fixed), so changing an augmentation, image size or intensity window in the bundle makes
a run's outputs stale too.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import random
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import ignite.distributed as idist
import numpy as np
import torch
from monai.transforms import Randomizable

from monai_remedis.engines.resume import CHECKPOINT_DIR, lock_run_dir, remove_orphaned_temp_files, unlock_run_dir

__all__ = [
    "StaleOutputError",
    "claim_run_dir",
    "datalist_digest",
    "file_digest",
    "finished_run",
    "make_fingerprint",
    "record_fingerprint",
    "release_run_dir",
    "transform_digest",
]

logger = logging.getLogger("monai_remedis")

FINGERPRINT_FILE = "fingerprint.json"
SWEEP_FINGERPRINT_FILE = "result_fingerprint.json"
ON_STALE_ENV = "MONAI_REMEDIS_ON_STALE"
ON_STALE_POLICIES = ("error", "fresh")
VOLATILE_KEYS = frozenset(
    {"device", "num_workers", "log_every", "progress_bar", "resume", "console", "workers", "keep_sweep_checkpoints"}
)
"""Settings that do not change results: left out of fingerprints, so e.g. resuming on another device works."""
OUTPUTS = (
    CHECKPOINT_DIR,
    "best.json",
    "history.json",
    "tensorboard",
    "metrics.json",
    "provenance.json",
    "classifier.pt",
    "backbone.pt",
    "result.json",
    "predictions.npz",
    SWEEP_FINGERPRINT_FILE,
    FINGERPRINT_FILE,
)
"""What a fresh start clears from a run directory of the same stage (never the lock or foreign files)."""
RESUME_STATE = (CHECKPOINT_DIR, "best.json", "history.json", "tensorboard")
"""What a fresh start clears where no fingerprint says which stage wrote the directory (exported weights stay)."""


class StaleOutputError(RuntimeError):
    """A run directory holds outputs of a different run; the message says what changed and what to do."""


# ---- digests ---------------------------------------------------------------------------------------------------


@lru_cache(maxsize=256)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_digest(path: str | Path | None) -> str | None:
    """SHA-256 of a file (cached by path, size and mtime); None for no file; ``missing:<path>`` if absent."""
    if not path:
        return None
    path = Path(path)
    if not path.is_file():
        return f"missing:{path}"
    stat = path.stat()
    return _file_sha256(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def _update(digest: Any, value: Any) -> None:
    if isinstance(value, (np.ndarray, torch.Tensor)):
        array = np.ascontiguousarray(value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value)
        digest.update(f"array{array.shape}{array.dtype}".encode())
        digest.update(array.tobytes())
    elif isinstance(value, Mapping):
        digest.update(b"{")
        for key in sorted(value, key=str):
            digest.update(str(key).encode() + b":")
            _update(digest, value[key])
        digest.update(b"}")
    elif isinstance(value, (list, tuple)):
        digest.update(b"[")
        for v in value:
            _update(digest, v)
        digest.update(b"]")
    else:
        digest.update(repr(value).encode())


def datalist_digest(items: Sequence[Mapping[str, Any]] | None) -> str | None:
    """Digest of a datalist: every key and value, in-memory images by their pixels (file paths by name)."""
    if items is None:
        return None
    digest = hashlib.sha256()
    _update(digest, list(items))
    return f"{len(items)} items, sha256 {digest.hexdigest()[:16]}"


TRANSFORM_PROBE_ITEMS = 2
"""How many items :func:`transform_digest` transforms."""


def transform_digest(
    transform: Callable | None, items: Sequence[Mapping[str, Any]] | None, n_items: int = TRANSFORM_PROBE_ITEMS
) -> str | None:
    """Digest of what ``transform`` makes of the first ``n_items`` of ``items``, its random draws fixed.

    Identifies an image pipeline by its output rather than by the configuration that built it, so any change of
    size, intensity window or augmentation strength changes the digest, whichever entry point built the transform.
    A deep copy is seeded and applied to deep copies of the items, under saved and restored Python, NumPy and torch
    generators: computing a digest never moves the random stream of the run itself.

    Returns:
        a short hex digest; None without a transform or items; a description when the transform cannot be copied
        (identified by its type alone) or fails on the items (the stage then reports the failure itself).
    """
    if transform is None or not items:
        return None
    try:
        probe = copy.deepcopy(transform)
        inputs = [copy.deepcopy(dict(item)) for item in list(items)[:n_items]]
    except Exception as error:  # noqa: BLE001 - e.g. a lock inside a custom transform
        return f"{type(transform).__qualname__} (not copyable: {type(error).__name__})"
    if isinstance(probe, Randomizable):
        probe.set_random_state(seed=0)
    digest = hashlib.sha256()
    python_state, numpy_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        try:
            random.seed(0)
            np.random.seed(0)
            torch.manual_seed(0)
            for item in inputs:
                _update_arrays(digest, probe(item))
        except Exception as error:  # noqa: BLE001 - the stage's own loading reports a broken item or transform
            return f"{type(transform).__qualname__} (failed: {type(error).__name__})"
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)
    return digest.hexdigest()[:16]


def _update_arrays(digest: Any, value: Any) -> None:
    """Hash the arrays in a transform's output (metadata, paths and trace records left out)."""
    if isinstance(value, (np.ndarray, torch.Tensor)):
        _update(digest, value)
    elif isinstance(value, Mapping):
        for key in sorted(value, key=str):
            if isinstance(value[key], (np.ndarray, torch.Tensor, Mapping, list, tuple)):
                digest.update(str(key).encode() + b":")
                _update_arrays(digest, value[key])
    elif isinstance(value, (list, tuple)):
        for v in value:
            _update_arrays(digest, v)


@lru_cache(maxsize=1)
def code_version() -> str:
    """``monai_remedis.__version__`` plus the git commit of the source tree when it is a checkout."""
    import monai_remedis

    version = monai_remedis.__version__
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(monai_remedis.__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        return f"{version}+g{commit}" if commit else version
    except (OSError, subprocess.SubprocessError):
        return version


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str, sort_keys=True))


def make_fingerprint(
    stage: str,
    config: Mapping[str, Any],
    inputs: Mapping[str, str | Path | None] | None = None,
    data: Mapping[str, Sequence[Mapping[str, Any]] | None] | None = None,
    transforms: Mapping[str, tuple[Callable | None, Sequence[Mapping[str, Any]] | None]] | None = None,
) -> dict[str, Any]:
    """What produces a run: stage, config (without :data:`VOLATILE_KEYS`), input file hashes, datalist digests
    and, for each ``name: (transform, items)`` of ``transforms``, the transform's :func:`transform_digest`."""
    return {
        "stage": stage,
        "config": _jsonable({k: v for k, v in config.items() if k not in VOLATILE_KEYS}),
        "inputs": {
            name: {"path": str(p) if p else None, "sha256": file_digest(p)} for name, p in (inputs or {}).items()
        },
        "data": {name: datalist_digest(items) for name, items in (data or {}).items()},
        "transforms": {name: transform_digest(t, items) for name, (t, items) in (transforms or {}).items()},
        "code_version": code_version(),
    }


def fingerprint_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Human-readable differences between two fingerprints (code version excluded)."""
    changes = []
    for section in ("stage", "config", "inputs", "data", "transforms"):
        a, b = old.get(section), new.get(section)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            for key in sorted(set(a) | set(b), key=str):
                if a.get(key) != b.get(key):
                    changes.append(f"{section}.{key}: {_short(a.get(key))} -> {_short(b.get(key))}")
        elif a != b:
            changes.append(f"{section}: {_short(a)} -> {_short(b)}")
    return changes


def _short(value: Any) -> str:
    if isinstance(value, Mapping) and "sha256" in value:
        digest = value["sha256"]
        return f"{value.get('path')} (sha256 {digest[:12] if digest else None})"
    text = json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


# ---- policy ----------------------------------------------------------------------------------------------------


def on_stale_policy(on_stale: str | None = None) -> str:
    """``on_stale`` or the ``MONAI_REMEDIS_ON_STALE`` environment variable (default ``error``)."""
    policy = on_stale or os.environ.get(ON_STALE_ENV) or "error"
    if policy not in ON_STALE_POLICIES:
        raise ValueError(f"on_stale ({ON_STALE_ENV}) must be one of {ON_STALE_POLICIES}, got '{policy}'.")
    return policy


def read_fingerprint(path: Path) -> dict[str, Any] | None:
    """A stored fingerprint, or None when absent or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def clear_outputs(run_dir: Path, names: Sequence[str] = OUTPUTS) -> None:
    """Delete a run directory's stage outputs (default :data:`OUTPUTS`); other files are left alone."""
    for name in names:
        path = run_dir / name
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists():
            path.unlink()


def _stale(run_dir: Path, what: str, changes: list[str], policy: str) -> None:
    """Apply the policy to stale outputs: raise (``error``) or warn (``fresh``, the caller clears)."""
    detail = "; ".join(changes) if changes else "no fingerprint recorded (written by an older version)"
    if policy == "error":
        raise StaleOutputError(
            f"{run_dir} holds {what} of a different run ({detail}). Start it fresh with `monai-remedis run ... "
            f"--fresh` (or {ON_STALE_ENV}=fresh), or give this run another output_dir."
        )
    logger.warning("%s: %s of a different run (%s); starting fresh (on_stale=fresh).", run_dir, what, detail)


def _has_checkpoints(run_dir: Path) -> bool:
    return any((run_dir / CHECKPOINT_DIR).glob("checkpoint_*.pt"))


def _decide(run_dir: Path, fingerprint: Mapping[str, Any], resume: bool, policy: str) -> tuple[bool, Sequence[str]]:
    """``(resume, names to clear)`` for a stage start; raises on another stage or (``error``) stale outputs."""
    stored = read_fingerprint(run_dir / FINGERPRINT_FILE)
    if stored is not None and stored.get("stage") != fingerprint["stage"]:
        raise StaleOutputError(
            f"{run_dir} holds a '{stored.get('stage')}' run, not '{fingerprint['stage']}': give this stage its own "
            "output_dir (a fresh start would delete the other stage's outputs)."
        )
    fresh = OUTPUTS if stored is not None else RESUME_STATE
    if not resume:
        return False, fresh
    if stored is None:
        if _has_checkpoints(run_dir):
            _stale(run_dir, "checkpoints", [], policy)
        return False, fresh
    changes = fingerprint_changes(stored, fingerprint)
    if changes:
        _stale(run_dir, "checkpoints" if _has_checkpoints(run_dir) else "outputs", changes, policy)
        return False, fresh
    if stored.get("code_version") != fingerprint.get("code_version"):
        logger.warning(
            "%s: resuming a run made by code %s with %s.",
            run_dir,
            stored.get("code_version"),
            fingerprint["code_version"],
        )
    return True, ()


def claim_run_dir(
    run_dir: str | Path, fingerprint: Mapping[str, Any], resume: bool, on_stale: str | None = None
) -> bool:
    """Lock ``run_dir``, remove orphaned temp files, check the fingerprint and record it (see the module policy).

    Under DDP every rank takes the same decision; rank 0 holds the lock and writes.

    Returns:
        whether the stage may resume from the checkpoints in ``run_dir``.

    Raises:
        RunDirLockedError: another process writes to ``run_dir``.
        StaleOutputError: ``resume`` and the outputs come from a different run (``on_stale="error"``), or
            ``run_dir`` belongs to another stage.
    """
    run_dir = Path(run_dir)
    main = idist.get_rank() == 0
    if main:
        lock_run_dir(run_dir)
    resume, clear = _decide(run_dir, fingerprint, resume, on_stale_policy(on_stale))
    if idist.get_world_size() > 1:
        idist.barrier()
    if main:
        remove_orphaned_temp_files(run_dir)
        clear_outputs(run_dir, clear)
        (run_dir / FINGERPRINT_FILE).write_text(json.dumps(fingerprint, indent=2))
    if idist.get_world_size() > 1:
        idist.barrier()
    return resume


def finished_run(run_dir: str | Path, fingerprint: Mapping[str, Any], on_stale: str | None = None) -> bool:
    """True when a sweep run's ``result.json`` exists and was produced by ``fingerprint``.

    A result of a different run (other weights, options or data) is refused or cleared per the policy; it is
    never reused.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "result.json").is_file():
        return False
    stored = read_fingerprint(run_dir / SWEEP_FINGERPRINT_FILE)
    changes = fingerprint_changes(stored, fingerprint) if stored is not None else []
    if stored is not None and not changes:
        return True
    _stale(run_dir, "a sweep result", changes, on_stale_policy(on_stale))
    clear_outputs(run_dir)
    return False


def record_fingerprint(run_dir: str | Path, fingerprint: Mapping[str, Any]) -> None:
    """Store a sweep run's fingerprint; call before its ``result.json`` is written (which marks it finished)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / SWEEP_FINGERPRINT_FILE).write_text(json.dumps(fingerprint, indent=2))


def release_run_dir(run_dir: str | Path) -> None:
    """Release the lock :func:`claim_run_dir` took (call when the stage has written its outputs)."""
    unlock_run_dir(run_dir)
