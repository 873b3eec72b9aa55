"""Ark: one backbone learns from several labelled datasets with different label sets (a stage-1/2 alternative).

Each dataset (its own datalist, class names and transforms, multi-class or multi-label) gets a linear omni-head
on a shared backbone + projector; the datasets are cycled within every epoch and an EMA teacher's consistency
(:mod:`monai_remedis.engines.ark_trainer`) keeps the shared features from drifting between them. The stage
exports ``backbone.pt`` in the stage-1/2 format (the backbone ``state_dict``), so the ordinary fine-tune and
evaluate stages transfer it like any other init.

Reference:
    Ma et al., "Foundation Ark: Accruing and Reusing Knowledge for Superior and Robust Performance", MICCAI 2023.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import ignite.distributed as idist
import numpy as np
import torch
import torch.nn as nn
from monai.data import DataLoader, Dataset
from monai.transforms import Compose

from monai_remedis.backbones.weights import load_backbone_weights
from monai_remedis.data.transforms import MultiViewd
from monai_remedis.engines.ark_trainer import CYCLE_ORDERS, ArkTrainer, CycleLoader, MultiClassLoss, MultiLabelLoss
from monai_remedis.engines.handlers import HistoryRecorder, attach_training_handlers
from monai_remedis.engines.runtime import (
    atomic_torch_save,
    atomic_write_json,
    collate_items,
    is_main_process,
    make_loader,
    prepare_run_dir,
    provenance,
    resolve_device,
)
from monai_remedis.evaluation.cache import decode_once
from monai_remedis.evaluation.statistics import auc_score, binary_auc
from monai_remedis.models.omni import OmniModel
from monai_remedis.optim import build_optimizer, warmup_cosine
from monai_remedis.ssl.momentum import frozen_copy

logger = logging.getLogger("monai_remedis")
EXPORTS = ("teacher", "student")


@dataclass
class ArkDataset:
    """One labelled source of Ark: a datalist, its classes and its transforms.

    Args:
        name: the dataset's name (its omni-head); unique within a run.
        train: training items ``{"image", "label"}``: an ``int`` label (multi-class) or a multi-hot vector
            (multi-label).
        class_names: the dataset's classes, in label order.
        load_transform: deterministic loading and intensity normalisation (decoded once per run).
        augment: random augmentation applied independently to the student's and the teacher's view.
        val: validation items, used only to report each head's AUC after training (no model selection).
        multi_label: sigmoid + binary cross-entropy head instead of softmax + cross-entropy.
    """

    name: str
    train: Sequence[dict[str, Any]]
    class_names: Sequence[str]
    load_transform: Callable
    augment: Callable
    val: Sequence[dict[str, Any]] | None = None
    multi_label: bool = False

    def train_transform(self) -> Compose:
        """Load, then two independently augmented views (``view_0`` for the student, ``view_1`` for the teacher)."""
        return Compose([self.load_transform, MultiViewd(keys="image", view_transform=self.augment, num_views=2)])

    def loss_function(self, label_smoothing: float = 0.0) -> nn.Module:
        """The head's task loss."""
        return MultiLabelLoss() if self.multi_label else MultiClassLoss(label_smoothing)


@dataclass
class ArkConfig:
    """Settings of an Ark run.

    Args:
        max_epochs: epochs; each epoch cycles through every dataset once.
        batch_size: batch of each dataset (global under DDP).
        optimizer: optimiser name (:data:`monai_remedis.optim.OPTIMIZERS`).
        learning_rate: peak learning rate.
        weight_decay: weight decay (not on biases and norms).
        warmup_epochs: linear warmup before the cosine decay.
        projector_dim: width of the linear projector (Ark: 1376 for Swin-B); ``None``: heads on the backbone.
        consistency_max: final consistency coefficient ``c`` (Ark: 0.5); 0 turns the teacher's consistency off.
        momentum_base: teacher EMA momentum at the start, rising to 1 (Ark: 0.9).
        cycle: ``interleave`` (one batch of each dataset in turn) or ``sequential`` (dataset after dataset).
        export: which network's backbone ``backbone.pt`` holds: ``teacher`` (Ark) or ``student``.
        label_smoothing: label smoothing of the multi-class heads.
        num_workers: loader workers.
        device: ``auto`` (this rank's GPU, else CPU) or a device name.
        amp: bf16 autocast.
        epoch_length: iterations per epoch (``None``: every batch of every dataset).
        resume: continue from the latest checkpoint in the run directory.
        log_every: log every this many iterations.
        progress_bar: show an Ignite progress bar.
        cache_decoded: decode every item once (the deterministic head of its transform).
    """

    max_epochs: int = 10
    batch_size: int = 64
    optimizer: str = "adamw"
    learning_rate: float = 3e-4
    weight_decay: float = 0.05
    warmup_epochs: float = 0.5
    projector_dim: int | None = 512
    consistency_max: float = 0.5
    momentum_base: float = 0.9
    cycle: str = "interleave"
    export: str = "teacher"
    label_smoothing: float = 0.0
    num_workers: int = 0
    device: str = "auto"
    amp: bool = False
    epoch_length: int | None = None
    resume: bool = False
    log_every: int = 20
    progress_bar: bool = False
    cache_decoded: bool = True

    def __post_init__(self) -> None:
        if self.cycle not in CYCLE_ORDERS:
            raise ValueError(f"unknown cycle '{self.cycle}'. Known: {', '.join(CYCLE_ORDERS)}.")
        if self.export not in EXPORTS:
            raise ValueError(f"unknown export '{self.export}'. Known: {', '.join(EXPORTS)}.")
        if not 0.0 <= self.consistency_max <= 1.0:
            raise ValueError(f"consistency_max must be in [0, 1], got {self.consistency_max}.")


class ArkStage:
    """Train one backbone on several labelled datasets (Ark) and export ``backbone.pt``.

    Args:
        backbone: the backbone (same architecture as the later fine-tunes).
        datasets: the labelled sources, each an :class:`ArkDataset` (or a mapping of its fields).
        output_dir: run directory (``backbone.pt``, ``omni.pt``, ``metrics.json``, ``history.json``,
            ``provenance.json``, ``checkpoints/``).
        init_weights: backbone checkpoint to start from (e.g. stage 1's ``backbone.pt``); None: random init.
        seed: random seed.
        train_options: :class:`ArkConfig` fields.
        overrides: :class:`ArkConfig` fields given directly; they win over ``train_options``.

    Raises:
        ValueError: no dataset, duplicate names, or a dataset without training items.
    """

    def __init__(
        self,
        backbone: nn.Module,
        datasets: Sequence[ArkDataset | Mapping[str, Any]],
        output_dir: str | Path,
        init_weights: str | Path | None = None,
        seed: int = 0,
        train_options: Mapping[str, Any] | None = None,
        **overrides: Any,
    ) -> None:
        self.datasets = [d if isinstance(d, ArkDataset) else ArkDataset(**d) for d in datasets]
        names = [d.name for d in self.datasets]
        if not names:
            raise ValueError("ArkStage needs at least one labelled dataset.")
        if len(set(names)) != len(names):
            raise ValueError(f"dataset names must be unique, got {names}.")
        empty = [d.name for d in self.datasets if not d.train]
        if empty:
            raise ValueError(f"datasets without training items: {empty}.")
        self.backbone = backbone
        self.output_dir = Path(output_dir)
        self.init_weights = init_weights
        self.seed = seed
        self.cfg = ArkConfig(**{**(train_options or {}), **overrides})

    def build_model(self) -> OmniModel:
        """The student omni-model, its backbone loaded from ``init_weights``."""
        if self.init_weights:
            load_backbone_weights(self.backbone, self.init_weights)
        heads = {d.name: len(d.class_names) for d in self.datasets}
        return OmniModel(self.backbone, heads, projector_dim=self.cfg.projector_dim)

    def _loader(self, dataset: ArkDataset) -> torch.utils.data.DataLoader:
        items, transform = list(dataset.train), dataset.train_transform()
        if self.cfg.cache_decoded:
            items, transform = decode_once(items, transform)
        batch = min(self.cfg.batch_size, len(items))
        return make_loader(
            Dataset(items, transform=transform),
            batch,
            shuffle=True,
            num_workers=self.cfg.num_workers,
            drop_last=len(items) > batch,
        )

    def run(self) -> dict[str, Any]:
        """Train, export ``backbone.pt`` and report each head's validation AUC; returns artefact paths and metrics."""
        cfg = self.cfg
        run_dir = prepare_run_dir(self.output_dir, self.seed)
        device = resolve_device(cfg.device)
        student = self.build_model().to(device)
        teacher = frozen_copy(student)
        cycle = CycleLoader({d.name: self._loader(d) for d in self.datasets}, order=cfg.cycle)
        steps = cfg.epoch_length or len(cycle)
        optimizer = build_optimizer(student, cfg.optimizer, cfg.learning_rate, cfg.weight_decay)
        scheduler = warmup_cosine(optimizer, cfg.max_epochs * steps, int(cfg.warmup_epochs * steps))
        network = idist.auto_model(student, find_unused_parameters=True) if idist.get_world_size() > 1 else student
        trainer = ArkTrainer(
            device=device,
            max_epochs=cfg.max_epochs,
            train_data_loader=cycle,
            network=network,
            teacher=teacher,
            optimizer=optimizer,
            loss_functions={d.name: d.loss_function(cfg.label_smoothing) for d in self.datasets},
            consistency_max=cfg.consistency_max,
            momentum_base=cfg.momentum_base,
            epoch_length=cfg.epoch_length,
            amp=cfg.amp,
            non_blocking=device.type == "cuda",
        )
        to_save = {
            "network": student,
            "teacher": teacher,
            "optimizer": optimizer,
            "lr_scheduler": scheduler,
            "trainer": trainer,
        }
        attach_training_handlers(
            trainer,
            run_dir,
            to_save,
            scheduler,
            resume=cfg.resume,
            log_every=cfg.log_every,
            progress_bar=cfg.progress_bar,
            history=HistoryRecorder(run_dir / "history.json"),
        )
        logger.info(
            "Ark: %s; %d iterations per epoch, %d epochs",
            ", ".join(f"{d.name} ({len(d.train)} items, {len(d.class_names)} classes)" for d in self.datasets),
            steps,
            cfg.max_epochs,
        )
        trainer.run()
        exported = teacher if cfg.export == "teacher" else student
        result: dict[str, Any] = {
            "run_dir": str(run_dir),
            "backbone": str(run_dir / "backbone.pt"),
            "omni_model": str(run_dir / "omni.pt"),
            "export": cfg.export,
            "epochs": trainer.state.epoch,
            "iterations": trainer.state.iteration,
            "val_auc": self.validation_auc(exported, device),
        }
        if is_main_process():
            atomic_torch_save(exported.backbone.state_dict(), run_dir / "backbone.pt")
            atomic_torch_save(exported.state_dict(), run_dir / "omni.pt")
            atomic_write_json(result, run_dir / "metrics.json")
            config = {
                "datasets": [
                    {
                        "name": d.name,
                        "class_names": list(d.class_names),
                        "multi_label": d.multi_label,
                        "train_items": len(d.train),
                        "val_items": len(d.val or []),
                    }
                    for d in self.datasets
                ],
                "seed": self.seed,
                **asdict(cfg),
            }
            atomic_write_json(provenance("ark", config, [self.init_weights]), run_dir / "provenance.json")
        return result

    @torch.no_grad()
    def validation_auc(self, model: OmniModel, device: torch.device) -> dict[str, float]:
        """Each head's AUC on its dataset's validation items (binary, macro one-vs-rest, or macro per label)."""
        model.eval()
        aucs = {}
        for d in self.datasets:
            if not d.val:
                continue
            # every rank scores the whole validation set (no sharding): the AUC needs all of it
            loader = DataLoader(
                Dataset(list(d.val), transform=d.load_transform),
                batch_size=self.cfg.batch_size,
                num_workers=self.cfg.num_workers,
                collate_fn=collate_items,
            )
            logits, labels = [], []
            for batch in loader:
                logits.append(model(batch["image"].to(device), d.name)[1].float().cpu())
                labels.append(torch.as_tensor(batch["label"]).cpu())
            z, y = torch.cat(logits), torch.cat(labels).numpy()
            if d.multi_label:
                per_label = [binary_auc(torch.sigmoid(z)[:, k].numpy(), y[:, k]) for k in range(z.shape[1])]
                defined = [a for a in per_label if math.isfinite(a)]
                aucs[d.name] = float(np.mean(defined)) if defined else float("nan")
            else:
                aucs[d.name] = auc_score(torch.softmax(z, dim=1).numpy(), y.reshape(-1))
            logger.info("Ark: %s head, validation AUC %.4f (%d items)", d.name, aucs[d.name], len(y))
        return aucs
