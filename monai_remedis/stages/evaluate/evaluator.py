"""Single-model evaluation: a classifier's metrics on a datalist, with a bootstrap CI of the AUC."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from monai_remedis.backbones.factory import create_backbone
from monai_remedis.engines.runtime import resolve_device
from monai_remedis.evaluation.predict import predict
from monai_remedis.evaluation.statistics import auc_score, bootstrap_ci, classification_metrics
from monai_remedis.models.classifier import Classifier


@dataclass(frozen=True)
class ModelSpec:
    """The architecture every evaluated or swept model is built with (weights come from checkpoints).

    Attributes:
        backbone: registered backbone name.
        in_channels: image channels.
        num_classes: task classes.
        spatial_dims: 2 for images, 3 for volumes.
    """

    backbone: str
    in_channels: int
    num_classes: int
    spatial_dims: int = 2

    def new_backbone(self) -> torch.nn.Module:
        """A freshly initialised backbone."""
        return create_backbone(self.backbone, in_channels=self.in_channels, spatial_dims=self.spatial_dims)

    def load_classifier(self, path: str | Path) -> Classifier:
        """The classifier stored at ``path`` (a ``classifier.pt`` state dict), in eval mode."""
        model = Classifier(self.new_backbone(), self.num_classes)
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model.eval()


def patient_groups(datalist: Sequence[Mapping[str, Any]]) -> np.ndarray | None:
    """Patient id per item for a cluster bootstrap, or None when no item has one."""
    if not any("patient_id" in d for d in datalist):
        return None
    return np.array([str(d.get("patient_id", f"item{i}")) for i, d in enumerate(datalist)])


class Evaluator:
    """Score classifiers on datalists: metrics plus a bootstrap CI of the AUC (by patient when ids exist).

    Args:
        model: architecture of the classifiers.
        transform: default evaluation transform.
        batch_size: inference batch size.
        device: ``auto`` or a device string.
        n_boot: bootstrap resamples of the AUC interval (0: none).
    """

    def __init__(
        self, model: ModelSpec, transform: Callable, batch_size: int = 256, device: str = "auto", n_boot: int = 500
    ) -> None:
        self.model = model
        self.transform = transform
        self.batch_size = batch_size
        self.device = device
        self.n_boot = n_boot
        self.predictions: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # of evaluate_classifiers, for the figures

    def scores(
        self, probs: np.ndarray, labels: np.ndarray, datalist: Sequence[Mapping[str, Any]], bootstrap: bool = True
    ) -> dict[str, Any]:
        """Metrics of predictions, with a bootstrap CI of the AUC (by patient when ids exist)."""
        result: dict[str, Any] = {"metrics": classification_metrics(probs, labels)}
        if bootstrap and self.n_boot > 0:
            ci = bootstrap_ci(probs, labels, auc_score, n_boot=self.n_boot, groups=patient_groups(datalist))
            result["auc_ci"] = {
                "point": ci.point,
                "low": ci.low,
                "high": ci.high,
                "n_skipped": ci.n_skipped,
                "by_patient": ci.cluster,
            }
        return result

    def predict(
        self, model: torch.nn.Module, datalist: Sequence[dict[str, Any]], transform: Callable | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Softmax probabilities and labels of ``model`` on ``datalist``."""
        return predict(model, datalist, transform or self.transform, self.batch_size, resolve_device(self.device))

    def evaluate_set(
        self,
        model: torch.nn.Module,
        datalist: Sequence[dict[str, Any]],
        transform: Callable | None = None,
        bootstrap: bool = True,
        name: str | None = None,
    ) -> dict[str, Any]:
        """Metrics (and the AUC interval) of ``model`` on one datalist (predictions kept as ``name``, if given)."""
        probs, labels = self.predict(model, datalist, transform)
        if name is not None:
            self.predictions[name] = (probs, labels)
        return self.scores(probs, labels, datalist, bootstrap)

    def evaluate_classifiers(
        self,
        classifiers: Mapping[str, str | Path],
        test_datalist: Sequence[dict[str, Any]],
        ood_sets: Mapping[str, Mapping[str, Any]],
    ) -> dict[str, Any]:
        """In-distribution test and zero-shot OOD metrics of every classifier.

        Args:
            classifiers: name -> ``classifier.pt``; the name prefixes each evaluation (``"<name>: <set>"``), the
                empty name none.
            test_datalist: in-distribution test items (may be empty).
            ood_sets: name -> ``{"datalist", "transform" (optional), "note"}``.
        """
        evaluations: dict[str, Any] = {}
        for name, path in classifiers.items():
            prefix = f"{name}: " if name else ""
            model = self.model.load_classifier(path)
            if test_datalist:
                key = f"{prefix}test (in-distribution)"
                evaluations[key] = self.evaluate_set(model, test_datalist, name=key)
            for ood_name, ood in ood_sets.items():
                key = f"{prefix}{ood_name} (zero-shot)"
                result = self.evaluate_set(model, ood["datalist"], ood.get("transform"), name=key)
                evaluations[key] = {**result, "note": ood.get("note", "")}
        return evaluations
