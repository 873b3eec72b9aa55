"""A picklable sweep runner for executor tests: predicts a fixed score per job, records the process it ran in."""

from __future__ import annotations

import os
import time

import numpy as np

from monai_remedis.stages.evaluate import Job, RunStore

LABELS = np.array([0, 1, 0, 1, 1, 0])


class ToyRunner:
    """Scores ``fraction`` on the positive class (a better run with more labels); fails on ``fail_init``.

    With ``sleep``, each run first writes its process id to ``<store>/pids/`` and sleeps that many seconds.
    """

    def __init__(self, store: RunStore, fail_init: str | None = None, sleep: float = 0.0) -> None:
        self.store = store
        self.fail_init = fail_init
        self.sleep = sleep

    def __call__(self, job: Job):
        finished = self.store.load(job)
        if finished is not None:
            return finished
        if job.init == self.fail_init:
            raise RuntimeError("toy failure")
        if self.sleep:
            (self.store.root / "pids").mkdir(parents=True, exist_ok=True)
            (self.store.root / "pids" / str(os.getpid())).touch()
            time.sleep(self.sleep)
        p1 = np.where(LABELS == 1, 0.5 + job.fraction / 4, 0.5 - job.fraction / 4) + 0.01 * job.seed
        probs = np.stack([1 - p1, p1], axis=1)
        return self.store.save(job, probs, LABELS, {"pid": os.getpid()})
