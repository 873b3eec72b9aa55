"""The four REMEDIS stages, each reading only the checkpoint path the previous stage wrote.

1. :class:`PretrainStage`: supervised pretraining on natural images (or import published weights).
2. :class:`SSLStage`: self-supervised learning on unlabelled medical images.
3. :class:`FinetuneStage`: fine-tuning (or linear probe) at a label fraction.
4. :class:`EvaluateStage`: in-distribution and OOD metrics, and the data-efficiency sweep.

Every stage takes its shared options as typed configs (:mod:`monai_remedis.stages.config`).
"""

from __future__ import annotations

from monai_remedis.stages.config import OptimConfig, RuntimeConfig, SweepConfig
from monai_remedis.stages.evaluate import EvaluateStage, ModelSpec, ReportConfig, SweepData
from monai_remedis.stages.finetune import FinetuneStage
from monai_remedis.stages.pretrain import PretrainStage
from monai_remedis.stages.ssl import SSLStage

__all__ = [
    "EvaluateStage",
    "FinetuneStage",
    "ModelSpec",
    "OptimConfig",
    "PretrainStage",
    "ReportConfig",
    "RuntimeConfig",
    "SSLStage",
    "SweepConfig",
    "SweepData",
]
