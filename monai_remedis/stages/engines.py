"""Stage engines as config ids: what MONAI's bundle tools expect of a train workflow.

A stage builds its engines first (:meth:`build`) and runs them second (:meth:`run`), so a bundle config can
expose them under the ids of MONAI's ``TrainProperties`` (``train#trainer``, ``train#trainer#max_epochs``,
``train#dataset``, ``train#handlers``, ``train#inferer``, ``validate#evaluator``, ``validate#handlers``)::

    train:
      handlers: []                      # extra handlers: --tracking mlflow appends MLFlowHandler here
      inferer: {_target_: monai.inferers.SimpleInferer}
      trainer:
        _target_: monai_remedis.stages.engines.build_trainer
        stage: '@finetune'
        max_epochs: '@finetune_epochs'
        train_handlers: '@train#handlers'
        val_handlers: '@validate#handlers'
        inferer: '@train#inferer'
      dataset: '$@train#trainer.data_loader.dataset'
    run:
      - $@finetune.run(@train#trainer)

Building has no side effect on the run directory (no lock, no fingerprint, nothing cleared, no checkpoint
loaded), so ``ConfigWorkflow.check_properties`` can instantiate the engines of a bundle that never ran. The stage's
``run`` then claims the run directory, attaches its own handlers (resume, checkpoints, history, logging) and, last,
the extra handlers, so an extra handler sees the restored epoch and every metric the stage records.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ignite.engine import Engine

from monai_remedis.engines.handlers import scalar_output

logger = logging.getLogger("monai_remedis")


@dataclass
class StageEngines:
    """The engines a stage built and will run.

    Attributes:
        trainer: the training engine (``train#trainer``).
        evaluator: the validation engine (``validate#evaluator``), when the stage validates.
        train_handlers: extra handlers (objects with ``attach(engine)``), attached to ``trainer`` when it runs.
        val_handlers: extra handlers attached to ``evaluator`` when it runs.
        state: what the stage's ``run`` needs besides the engines (checkpointed objects, scheduler, ...).
    """

    trainer: Engine
    evaluator: Engine | None = None
    train_handlers: list[Any] = field(default_factory=list)
    val_handlers: list[Any] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def dataset(self) -> Any:
        """The training dataset (``train#dataset``)."""
        return self.trainer.data_loader.dataset


class BuildableStage(Protocol):
    """A stage whose engines can be built before it runs."""

    engines: StageEngines | None

    def build(
        self,
        max_epochs: int | None = None,
        train_handlers: Sequence[Any] = (),
        val_handlers: Sequence[Any] = (),
        inferer: Any | None = None,
    ) -> StageEngines | None: ...


def build_trainer(
    stage: BuildableStage | None,
    max_epochs: int | None = None,
    train_handlers: Sequence[Any] | None = None,
    val_handlers: Sequence[Any] | None = None,
    inferer: Any | None = None,
) -> Engine | None:
    """``train#trainer`` of a stage config: build the stage's engines and return its trainer (None when the stage
    trains nothing, e.g. stage 1 importing published weights).

    Args:
        stage: the stage object (``@finetune``, ``@ssl``, ``@pretrain``).
        max_epochs: epochs of the run (``train#trainer#max_epochs``); replaces the stage's ``optim.max_epochs``.
        train_handlers: extra trainer handlers (``train#handlers``).
        val_handlers: extra evaluator handlers (``validate#handlers``).
        inferer: the MONAI inferer of the supervised engines (``train#inferer``).
    """
    if stage is None:  # a disabled stage (e.g. ct3d's stage 1 without weights)
        return None
    engines = stage.build(
        max_epochs=max_epochs,
        train_handlers=list(train_handlers or []),
        val_handlers=list(val_handlers or []),
        inferer=inferer,
    )
    return engines.trainer if engines is not None else None


def train_dataset(trainer: Engine | None) -> Any:
    """``train#dataset``: the dataset ``trainer`` draws from (None for a stage that does not train)."""
    return trainer.data_loader.dataset if trainer is not None else None


def stage_evaluator(stage: BuildableStage | None, trainer: Engine | None) -> Engine | None:
    """``validate#evaluator``: the evaluator the stage built with ``trainer`` (None when it does not validate)."""
    if trainer is None:
        return None
    if stage.engines is None or stage.engines.trainer is not trainer:
        raise ValueError("validate#evaluator: the stage has not built this trainer; refer to '@train#trainer'.")
    return stage.engines.evaluator


def engines_to_run(stage: BuildableStage, trainer: Engine | None) -> StageEngines:
    """The engines a stage's ``run(trainer)`` runs: those :meth:`build` made for ``trainer``, else new ones."""
    if trainer is None:
        engines = stage.build()
        if engines is None:
            raise ValueError("this stage trains nothing: it has no engines to run.")
        return engines
    if stage.engines is None or stage.engines.trainer is not trainer:
        raise ValueError("run(trainer): this stage did not build that trainer; pass '@train#trainer' of its config.")
    return stage.engines


def as_monai_output(engine: Engine) -> None:
    """Put ``engine.state.output`` in MONAI's decollated form: ``[{"loss": float, ...}]`` (the step's scalars).

    MONAI's handlers read the loss with ``from_engine(["loss"], first=True)`` (e.g. the ``MLFlowHandler`` that
    ``--tracking mlflow`` adds), which needs a list of dicts; the stage engines skip decollation of the batch for
    speed. Attach first, at ``ITERATION_COMPLETED``.
    """
    engine.state.output = [scalar_output(engine.state.output)]


def attach_extra_handlers(engines: StageEngines) -> None:
    """Attach the extra handlers (from the config) to the trainer and the evaluator, in list order."""
    for handler in engines.train_handlers:
        handler.attach(engines.trainer)
    if engines.evaluator is not None:
        for handler in engines.val_handlers:
            handler.attach(engines.evaluator)
    elif engines.val_handlers:
        logger.info("this stage does not validate: %d validate#handlers not attached", len(engines.val_handlers))


def with_artifacts(handlers: Sequence[Any], paths: Sequence[str | Path]) -> list[tuple[Any, tuple]]:
    """Add the stage's output files to the ``artifacts`` of every MLflow handler; returns what to restore.

    ``MLFlowHandler`` logs its ``artifacts`` when the engine completes (MONAI's tracking settings give it the
    executed config): the stage adds its history and plots.
    """
    from monai.handlers import MLFlowHandler

    changed = []
    for handler in handlers:
        if isinstance(handler, MLFlowHandler):
            changed.append((handler, handler.artifacts))
            handler.artifacts = (*(_config_path(a) for a in handler.artifacts if a), *(str(p) for p in paths))
    return changed


def _config_path(artifact: Any) -> Any:
    """The executed-config path MONAI meant: with a plain-string ``output_dir`` (``--output_dir runs/x``) MONAI
    1.6's tracking patch makes ``save_execute_config`` the literal ``"runs/x + '/config_<time>.json'"``."""
    match = re.fullmatch(r"(.+) \+ '(/[^']+)'", str(artifact))
    return match.group(1) + match.group(2) if match and not Path(str(artifact)).exists() else artifact


def restore_artifacts(changed: Sequence[tuple[Any, tuple]]) -> None:
    """Undo :func:`with_artifacts` (the same handler may follow the next stage of a pipeline)."""
    for handler, artifacts in changed:
        handler.artifacts = artifacts
