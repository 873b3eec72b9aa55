"""Handlers every stage attaches: atomic resumable checkpoints, LR schedule, stats, progress bar, history."""

from __future__ import annotations

import json
import logging
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint, DiskSaver, ProgressBar
from ignite.metrics import Average
from monai.handlers import CheckpointLoader, LrScheduleHandler, StatsHandler
from monai.utils import get_seed

from monai_remedis.engines.resume import checkpoint_epoch, latest_intact_checkpoint, seed_each_epoch
from monai_remedis.engines.runtime import atomic_write_json, is_main_process
from monai_remedis.engines.tensorboard import tensorboard_handler

logger = logging.getLogger("monai_remedis")
CHECKPOINT_DIR = "checkpoints"
_CKPT_RE = re.compile(r"checkpoint_(\d+)\.pt$")


def scalar_output(output: Any) -> dict[str, float]:
    """The scalar entries of an engine output (``loss``, logs) as floats; image/pred tensors are dropped.

    A MONAI decollated output (a list of per-item dicts, each holding the batch's loss) gives its first item's.
    """
    if isinstance(output, list) and output and isinstance(output[0], dict):
        output = output[0]
    if not isinstance(output, dict):
        output = {"loss": output}
    scalars = {}
    for key, value in output.items():
        if hasattr(value, "numel") and value.numel() == 1:
            scalars[key] = float(value.detach() if hasattr(value, "detach") else value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            scalars[key] = float(value)
    return scalars


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The training checkpoint with the highest epoch in ``run_dir/checkpoints``, or None."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    found = [(int(m.group(1)), p) for p in folder.glob("checkpoint_*.pt") if (m := _CKPT_RE.search(p.name))]
    return max(found)[1] if found else None


class HistoryRecorder:
    """Per-epoch averages of every scalar of ``engine.state.output`` (Ignite ``Average``), written to
    ``history.json`` atomically, together with the engine's scalar metrics (e.g. ``val_auc``).

    Every series has one entry per epoch: ``null`` at an epoch where a metric was not in ``engine.state.metrics``
    (a handler that measures every few epochs removes its value when the next epoch starts).

    On resume the earlier history is read back and cut to the epochs the resumed checkpoint covers (the later ones
    are trained again). Each epoch is written before that epoch's checkpoint, so a kill between the two writes
    never loses an epoch of history.

    Args:
        path: output JSON file (rank 0 writes it).
        resume: continue the history in ``path`` when it exists.
        publish: also put each epoch mean into ``engine.state.metrics`` as ``epoch_<key>`` (e.g. ``epoch_loss``),
            where epoch-level handlers attached after this one (MLflow, TensorBoard) log it.
    """

    def __init__(self, path: str | Path, resume: bool = False, publish: bool = False) -> None:
        self.path = Path(path)
        self.publish = publish
        self._published: set[str] = set()
        initial = json.loads(self.path.read_text()) if resume and self.path.is_file() else {}
        self.history: dict[str, list[float]] = defaultdict(list, initial)
        self._averages: dict[str, Average] = {}

    def attach(self, engine: Engine, resumed_epoch: int = 0) -> None:
        """Attach before the checkpoint saver, so ``history.json`` covers every epoch a checkpoint covers.

        Args:
            engine: the trainer.
            resumed_epoch: epoch of the checkpoint a resumed run starts from; later epochs of the history are
                dropped (they are trained again).
        """
        keep = sum(1 for e in self.history.get("epoch", []) if e <= resumed_epoch)
        for key in list(self.history):
            self.history[key] = self.history[key][:keep]
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._update)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._close_epoch)

    def _update(self, engine: Engine) -> None:
        for key, value in scalar_output(engine.state.output).items():
            self._averages.setdefault(key, Average(device="cpu")).update(torch.tensor(value, dtype=torch.float64))

    def _close_epoch(self, engine: Engine) -> None:
        means = {}
        for key, average in self._averages.items():
            means[key] = float(average.compute())
            average.reset()
        # e.g. val_auc, set by a validation that runs every few epochs: null at the epochs it did not run
        measured = {k: v for k, v in scalar_output(engine.state.metrics).items() if k not in self._published}
        epochs_before = len(self.history.get("epoch", []))
        for key in [k for k in dict.fromkeys([*self.history, *means, *measured]) if k != "epoch"]:
            series = self.history[key]
            series.extend([None] * (epochs_before - len(series)))  # a series that starts late
            series.append(means.get(key, measured.get(key)))
        if self.publish:  # the epoch means as metrics: per-epoch values for MLflow/TensorBoard handlers after this
            published = {f"epoch_{k}": v for k, v in means.items()}
            engine.state.metrics.update(published)
            self._published.update(published)
        self.history["epoch"].append(engine.state.epoch)
        if is_main_process():
            atomic_write_json(dict(self.history), self.path)


def attach_training_handlers(
    engine: Engine,
    run_dir: Path,
    to_save: dict[str, Any],
    lr_scheduler: Any | None = None,
    resume: bool = False,
    checkpoint_every: int = 1,
    n_saved: int = 2,
    log_every: int = 10,
    progress_bar: bool = False,
    history: HistoryRecorder | None = None,
    tensorboard: bool = False,
) -> Path | None:
    """Attach the standard handlers to a training engine.

    Args:
        engine: the trainer.
        run_dir: the stage's run directory; checkpoints go to ``run_dir/checkpoints``.
        to_save: objects saved in (and restored from) each checkpoint, typically
            ``{"network": ..., "optimizer": ..., "lr_scheduler": ..., "trainer": engine}``.
        lr_scheduler: iteration-level scheduler stepped after every iteration.
        resume: continue from the latest checkpoint in ``run_dir`` when one exists.
        checkpoint_every: save every this many epochs (and at the end).
        n_saved: how many checkpoints to keep.
        log_every: log the iteration output every this many iterations.
        progress_bar: show an Ignite progress bar.
        history: per-epoch history recorder.
        tensorboard: write TensorBoard events to ``run_dir/tensorboard`` (rank 0; when a writer imports).

    Returns:
        the checkpoint resumed from, or None.
    """
    if lr_scheduler is not None:
        LrScheduleHandler(lr_scheduler, print_lr=False, epoch_level=False).attach(engine)
    seed = get_seed()
    if seed is not None:
        seed_each_epoch(engine, seed)
    resumed = latest_intact_checkpoint(run_dir) if resume else None  # a corrupt latest falls back, with a warning
    if history is not None:  # before the saver: history.json always holds the epochs the latest checkpoint holds
        history.attach(engine, checkpoint_epoch(resumed) if resumed is not None else 0)
    saver = Checkpoint(
        to_save,
        DiskSaver(str(run_dir / CHECKPOINT_DIR), require_empty=False, atomic=True),
        filename_prefix="",
        n_saved=n_saved,
        global_step_transform=lambda e, _: e.state.epoch,
    )
    engine.add_event_handler(Events.EPOCH_COMPLETED(every=checkpoint_every) | Events.COMPLETED, saver)
    if resumed is not None:
        logger.info("resuming from %s", resumed)
        # the saver takes over the checkpoints on disk up to the resumed one, so n_saved still holds after a resume
        epoch = checkpoint_epoch(resumed)
        found = [(int(m.group(1)), p.name) for p in resumed.parent.glob("*.pt") if (m := _CKPT_RE.search(p.name))]
        kept = sorted((e, name) for e, name in found if e <= epoch)
        saver.load_state_dict({"_saved": kept})
        CheckpointLoader(load_path=str(resumed), load_dict=to_save, map_location="cpu").attach(engine)
    if not is_main_process():  # under DDP only rank 0 reports progress; other ranks keep warnings and errors
        engine.logger.setLevel(logging.WARNING)
        return resumed
    StatsHandler(
        name="monai_remedis.train",
        iteration_log=lambda e, _: log_every > 0 and e.state.iteration % log_every == 0,
        output_transform=scalar_output,
        tag_name="train",
    ).attach(engine)
    if progress_bar and is_main_process():
        ProgressBar(persist=False).attach(engine, output_transform=scalar_output)
    board = tensorboard_handler(run_dir, tensorboard)
    if board is not None:
        board.attach(engine)
    return resumed
