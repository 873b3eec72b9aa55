"""Stage 4 in parts: :class:`Evaluator` (single models), the sweep (plan x runner x executor), the
:class:`ReportWriter`, and :class:`EvaluateStage`, which composes them behind the leak guard."""

from __future__ import annotations

from monai_remedis.stages.evaluate.evaluator import Evaluator, ModelSpec, patient_groups
from monai_remedis.stages.evaluate.stage import EvaluateStage
from monai_remedis.stages.evaluate.sweep import (
    FinetuneRunner,
    Job,
    ProbeRunner,
    ProcessExecutor,
    RunStore,
    SequentialExecutor,
    SweepData,
    SweepPlan,
    summarise,
)
from monai_remedis.stages.evaluate.writer import ReportConfig, ReportWriter, flat_metrics

__all__ = [
    "EvaluateStage",
    "Evaluator",
    "FinetuneRunner",
    "Job",
    "ModelSpec",
    "ProbeRunner",
    "ProcessExecutor",
    "ReportConfig",
    "ReportWriter",
    "RunStore",
    "SequentialExecutor",
    "SweepData",
    "SweepPlan",
    "flat_metrics",
    "patient_groups",
    "summarise",
]
