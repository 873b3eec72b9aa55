"""The one place the app calls the project's fine-tune stage (stage 3 of the bundle).

The stage is built from the bundle's own ``finetune`` config id, with the datastore's labelled items as the
datalist, so whatever arguments ``FinetuneStage`` takes, the bundle's ``finetune.yaml`` already passes them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class FinetuneJob:
    """One fine-tune of a bundle's classifier from the REMEDIS encoder.

    Attributes:
        bundle: bundle name or folder.
        train_items: labelled items ``{"image": path, "label": index}``.
        output_dir: run folder (``classifier.pt``, ``metrics.json``, ``history.json``, ``provenance.json``).
        init_weights: the REMEDIS encoder ``backbone.pt``.
        val_items: validation items for checkpoint selection (empty: the last epoch is kept).
        max_epochs: epochs (the bundle's ``min_steps`` lengthens runs on few labels).
        min_steps: optimiser steps at least; None keeps the bundle's.
        epoch_length: iterations per epoch (the loader restarts within an epoch); None = one pass over the data.
        device: ``cpu``, ``cuda``, ``auto``...
        seed: training seed.
        overrides: further bundle config overrides (``finetune_optim#learning_rate``...).
    """

    bundle: str
    train_items: Sequence[Mapping[str, Any]]
    output_dir: str | Path
    init_weights: str | Path
    val_items: Sequence[Mapping[str, Any]] = ()
    max_epochs: int = 10
    min_steps: int | None = None
    epoch_length: int | None = None
    device: str = "cpu"
    seed: int = 0
    overrides: Mapping[str, Any] = field(default_factory=dict)


def run_finetune(job: FinetuneJob) -> dict[str, Any]:
    """Run the bundle's fine-tune stage on ``job`` and return its result (``classifier`` path, ``epochs``...).

    Raises:
        FileNotFoundError: the encoder or a bundle config is missing.
        ValueError: from the stage's datalist checks (e.g. the same image under two labels).
    """
    from monai.bundle import ConfigParser

    from monai_remedis.configs import bundle_config_files, bundle_dir

    if not Path(job.init_weights).is_file():
        raise FileNotFoundError(f"REMEDIS encoder not found: '{job.init_weights}' (set --conf <bundle>_encoder).")
    parser = ConfigParser()
    parser.read_config(bundle_config_files(bundle_dir(job.bundle), "finetune"))
    settings: dict[str, Any] = {
        **job.overrides,
        "datalist": {"train": [dict(i) for i in job.train_items], "val": [dict(i) for i in job.val_items], "test": []},
        "limit": None,
        "output_dir": str(job.output_dir),
        "finetune_dir": str(job.output_dir),
        "finetune_init": str(job.init_weights),
        "label_fraction": 1.0,
        "max_epochs": int(job.max_epochs),
        "finetune_epochs": int(job.max_epochs),
        "device": job.device,
        "seed": int(job.seed),
        "resume": False,
    }
    if job.min_steps is not None:
        settings["min_steps"] = int(job.min_steps)
    if job.epoch_length is not None:
        settings["epoch_length"] = int(job.epoch_length)
    for key, value in settings.items():
        parser[key] = value
    return parser.get_parsed_content("finetune").run()
