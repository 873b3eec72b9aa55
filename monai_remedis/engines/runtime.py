"""Run-time plumbing shared by the stages: devices, distributed setup, loaders, atomic artefact writes."""

from __future__ import annotations

import json
import logging
import os
import platform
import tempfile
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import ignite.distributed as idist
import torch
import torch.distributed as dist
from monai.data import Dataset, list_data_collate
from monai.data.utils import worker_init_fn
from monai.utils import set_determinism

from monai_remedis.configs import unshadow_sys_path

logger = logging.getLogger("monai_remedis")


def ensure_distributed() -> None:
    """Initialise the default process group when launched by ``torchrun`` (``WORLD_SIZE`` > 1).

    NCCL on CUDA, gloo on CPU; each process uses the GPU of its local rank.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or (dist.is_available() and dist.is_initialized()):
        return
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend=backend)
    logger.info("initialised %s process group: rank %d of %d", backend, dist.get_rank(), dist.get_world_size())
    if dist.get_rank() != 0:  # only rank 0 reports progress; the other ranks keep warnings and errors
        logger.setLevel(logging.WARNING)


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None``/``"auto"`` -> this rank's GPU when available, else CPU."""
    if device is None or str(device) == "auto":
        ensure_distributed()
        return idist.device()
    return torch.device(device)


def is_main_process() -> bool:
    """True on rank 0 (and when not distributed): the only rank that writes artefacts."""
    return idist.get_rank() == 0


def prepare_run_dir(output_dir: str | Path, seed: int | None = 0) -> Path:
    """Create the run directory and seed Python, NumPy and torch (offset by rank so ranks differ)."""
    unshadow_sys_path()  # MONAI's ConfigWorkflow.run put the package folder on sys.path
    run_dir = Path(output_dir)
    if is_main_process():
        run_dir.mkdir(parents=True, exist_ok=True)
    idist.barrier() if idist.get_world_size() > 1 else None
    if seed is not None:
        set_determinism(seed=seed + idist.get_rank())
    return run_dir


def collate_items(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``monai.data.list_data_collate`` for items whose optional keys differ.

    Datalists built from real headers are ragged: one DICOM has ``InstitutionName`` (``site``), the next does not.
    Keys every item has are collated as MONAI does; a key only some items have becomes a plain list with
    ``None`` where it is missing, so a batch never fails on metadata the engines do not train on.
    """
    if not items or not isinstance(items[0], dict):
        return list_data_collate(items)
    common = set.intersection(*(set(item) for item in items))
    ragged = {key for item in items for key in item} - common
    if not ragged:
        return list_data_collate(items)
    batch = list_data_collate([{k: v for k, v in item.items() if k in common} for item in items])
    for key in sorted(ragged, key=str):
        batch[key] = [item.get(key) for item in items]
    return batch


def make_loader(
    dataset: Dataset, batch_size: int, shuffle: bool, num_workers: int = 0, drop_last: bool = False
) -> torch.utils.data.DataLoader:
    """A data loader that shards across ranks (``batch_size`` is the global batch, split over ranks).

    Raises:
        ValueError: ``batch_size`` is below the number of ranks, or, with ``drop_last`` (the SSL stage: contrastive
            losses want full batches), the dataset holds fewer items than one batch, e.g. ``limit`` 64 with the
            default ``batch_size`` 128: the message names both keys and a batch size that fits.
    """
    world = idist.get_world_size()
    if batch_size < world:
        raise ValueError(f"batch_size={batch_size} is the global batch and must be >= the number of ranks ({world}).")
    if drop_last and len(dataset) < batch_size:
        fits = max(world, 2 ** max(int(len(dataset)).bit_length() - 1, 0))
        raise ValueError(
            f"{len(dataset)} items (after `limit`) are fewer than one batch (batch_size={batch_size}), and this stage "
            f"drops incomplete batches, so it would train on nothing: set `batch_size` to at most {len(dataset)} "
            f"(e.g. --batch_size {fits}) or raise `limit`."
        )
    return idist.auto_dataloader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        drop_last=drop_last,
        collate_fn=collate_items,
        worker_init_fn=worker_init_fn if num_workers > 0 else None,
        persistent_workers=num_workers > 0,
        pin_memory=torch.cuda.is_available(),
    )


def _atomic_write(path: Path, write: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to a temporary file in the same folder, then rename: a crash never leaves half a file."""
    return _atomic_write(Path(path), lambda tmp: torch.save(obj, tmp))


def atomic_write_json(obj: Any, path: str | Path) -> Path:
    """Write JSON atomically (temporary file + rename)."""
    return _atomic_write(Path(path), lambda tmp: Path(tmp).write_text(json.dumps(obj, indent=2, default=str)))


def provenance(stage: str, config: dict[str, Any], inputs: Sequence[str | Path | None] = ()) -> dict[str, Any]:
    """What produced an artefact: stage, config, input artefacts, library versions, world size and time."""
    import monai
    import timm

    import monai_remedis

    return {
        "stage": stage,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config": config,
        "inputs": [str(p) for p in inputs if p],
        "versions": {
            "monai_remedis": monai_remedis.__version__,
            "monai": monai.__version__,
            "torch": torch.__version__,
            "timm": timm.__version__,
            "python": platform.python_version(),
        },
        "world_size": idist.get_world_size(),
    }
