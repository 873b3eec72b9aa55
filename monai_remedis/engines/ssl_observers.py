"""What a user watches during SSL, written to the run directory: curves, the online kNN monitor, augmented views.

* :class:`LearningRateMetric`: the learning rate at the end of each epoch as ``engine.state.metrics["lr"]`` (so
  ``history.json``, TensorBoard and MLflow hold it).
* :func:`knn_monitor`: the :class:`~monai_remedis.engines.knn_monitor.KNNMonitor` on a labelled subset of the
  bundle's diagnostics set (at most ``max_items`` images per side), or None with a log line for unlabelled data.
* :class:`CurvesPlot`: ``plots/ssl_curves.png`` (loss, learning rate, kNN accuracy/AUC per epoch) when training ends.
* :func:`write_view_grid`: ``plots/augmented_views.png``, the views SSL trains on, from a copy of the transform
  (the training augmentations' random state is not touched).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events

from monai_remedis.engines.handlers import HistoryRecorder
from monai_remedis.engines.knn_monitor import KNNMonitor
from monai_remedis.evaluation.plots import plot_history, plot_view_grid

logger = logging.getLogger("monai_remedis")
PLOTS_DIR = "plots"
CURVE_KEYS = ("loss", "lr", "knn_accuracy", "knn_auc")


class LearningRateMetric:
    """Put the first parameter group's learning rate into ``engine.state.metrics["lr"]`` after every epoch."""

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        engine.state.metrics["lr"] = float(self.optimizer.param_groups[0]["lr"])


def knn_monitor(
    backbone: torch.nn.Module,
    diagnostics: Mapping[str, Any] | None,
    device: torch.device | str,
    max_items: int = 256,
    every: int = 1,
) -> KNNMonitor | None:
    """The online kNN monitor of SSL on the diagnostics set (``{"train", "val", "transform"}``), or None.

    The bank is the first ``max_items`` labelled training items (SSL never uses their labels), the queries the
    first ``max_items`` validation items. None, with a log line, when the bundle has no labelled diagnostics set
    (e.g. an unlabelled DICOM datalist) or ``max_items`` is 0.
    """
    bank = list((diagnostics or {}).get("train") or [])[:max_items]
    queries = list((diagnostics or {}).get("val") or [])[:max_items]
    unlabelled = [item for item in bank + queries if item.get("label") is None]
    if max_items <= 0 or not bank or not queries or unlabelled:
        logger.info(
            "SSL kNN monitor skipped: it needs labelled train and validation items (%s).",
            "max_items is 0" if max_items <= 0 else "an item has no label" if unlabelled else "a split is empty",
        )
        return None
    labels = [int(float(item["label"])) for item in bank + queries]
    return KNNMonitor(
        backbone,
        bank,
        queries,
        diagnostics["transform"],
        num_classes=max(labels) + 1,
        every=every,
        device=device,
    )


class CurvesPlot:
    """Write ``run_dir/plots/ssl_curves.png`` from the run's history when training completes.

    Args:
        history: the run's history recorder (its in-memory history is plotted).
        path: PNG to write.
        keys: series to draw, in this order, where present.
    """

    def __init__(self, history: HistoryRecorder, path: str | Path, keys: Sequence[str] = CURVE_KEYS) -> None:
        self.history, self.path, self.keys = history, Path(path), list(keys)

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        history = self.history.history
        if history.get("epoch"):
            plot_history(history, self.path, keys=[k for k in self.keys if k in history])


def write_view_grid(
    items: Sequence[Mapping[str, Any]], transform: Callable, path: str | Path, max_images: int = 8
) -> Path | None:
    """Plot the augmented views (``view_0``, ``view_1``, ...) of the first ``max_images`` items.

    Runs a deep copy of ``transform``, so the training pipeline's random state is unchanged. Returns None (with a
    log line) for a strategy whose transform makes no ``view_*`` keys.
    """
    views: dict[str, list[torch.Tensor]] = {}
    sampler = copy.deepcopy(transform)
    for item in list(items)[:max_images]:
        out = sampler(dict(item))
        for key in sorted(k for k in out if str(k).startswith("view_")):
            views.setdefault(key, []).append(torch.as_tensor(out[key]))
    if not views:
        logger.info("augmented-view grid skipped: the SSL transform makes no 'view_*' keys.")
        return None
    return plot_view_grid([torch.stack(v) for v in views.values()], path, max_images=max_images)
