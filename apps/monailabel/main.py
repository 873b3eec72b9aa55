"""MONAI Label app serving REMEDIS classifiers: ``monailabel start_server --app apps/monailabel --studies <folder>``.

Per bundle named in ``--conf models`` (default ``cxr``) the app offers an infer task ``<bundle>``, a train task
``<bundle>`` and the active-learning strategies ``<bundle>_coverage`` and ``<bundle>_uncertainty``.
See docs/monailabel.md.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from monailabel.interfaces.app import MONAILabelApp
from monailabel.interfaces.tasks.infer_v2 import InferTask
from monailabel.interfaces.tasks.strategy import Strategy
from monailabel.interfaces.tasks.train import TrainTask
from monailabel.tasks.activelearning.random import Random

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # MONAI Label loads main.py by path

from remedis_label.configs import settings_from_conf  # noqa: E402
from remedis_label.infer import RemedisClassificationInfer  # noqa: E402
from remedis_label.runtime import BundleRuntime  # noqa: E402
from remedis_label.strategy import CoverageStrategy, UncertaintyStrategy  # noqa: E402
from remedis_label.train import RemedisFinetuneTrain  # noqa: E402

logger = logging.getLogger(__name__)


class RemedisApp(MONAILabelApp):
    """REMEDIS classification models, fine-tuned from the labels annotators make in this datastore."""

    def __init__(self, app_dir: str, studies: str, conf: dict[str, Any]) -> None:
        self.runtimes = {s.modality.bundle: BundleRuntime(s) for s in settings_from_conf(app_dir, conf or {})}
        for name, runtime in self.runtimes.items():
            logger.info("%s: serving %s (encoder %s)", name, runtime.weights(), runtime.settings.encoder)
        super().__init__(
            app_dir=app_dir,
            studies=studies,
            conf=conf,
            name="REMEDIS classification",
            description="Label-efficient classifiers fine-tuned from REMEDIS encoders on your labels",
            version="0.1.0",
        )

    def init_infers(self) -> dict[str, InferTask]:
        return {name: RemedisClassificationInfer(rt) for name, rt in self.runtimes.items()}

    def init_trainers(self) -> dict[str, TrainTask]:
        return {name: RemedisFinetuneTrain(rt) for name, rt in self.runtimes.items()}

    def init_strategies(self) -> dict[str, Strategy]:
        strategies: dict[str, Strategy] = {"random": Random()}
        for name, rt in self.runtimes.items():
            strategies[f"{name}_coverage"] = CoverageStrategy(rt)
            strategies[f"{name}_uncertainty"] = UncertaintyStrategy(rt)
        return strategies
