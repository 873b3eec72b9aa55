"""A bundle's model as the app serves it: which weights, reloaded when training publishes, embeddings cached.

No MONAI Label import here: the infer task, the train task and the strategies share one :class:`BundleRuntime`.
The network, class names and evaluation transform come from :func:`monai_remedis.inference.load_bundle_model`; a
bundle's ``configs/inference.yaml`` (``network_def``, ``preprocessing``...) can replace that loader through the
``loader`` argument without touching the tasks.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from remedis_label.configs import AppSettings

PUBLISHED_NAME = "classifier.pt"
"""File name of the fine-tuned model the app publishes in ``<model_dir>/<bundle>/``."""


@dataclass
class LoadedModel:
    """The network the app serves now, and where it came from."""

    classifier: torch.nn.Module
    backbone: torch.nn.Module
    transform: Callable
    class_names: list[str]
    spatial_dims: int
    weights: Path
    trained: bool


def _default_loader(bundle: str, weights: Path, overrides: Mapping[str, Any]) -> Any:
    from monai_remedis.inference import load_bundle_model

    return load_bundle_model(bundle, weights, overrides)


class BundleRuntime:
    """Serve one bundle: the published classifier, else ``initial_weights``, else the encoder with a zero head.

    With only the encoder, probabilities are uniform (the head starts at zero, as BiT fine-tuning does) and the
    result says ``trained: false``; embeddings are the encoder's, which is what coverage-based selection needs.

    Args:
        settings: the bundle's app settings (encoder, model folder, overrides, device).
        loader: ``(bundle, weights, overrides) -> BundleModel`` (backbone, classifier or None, transform, classes).
    """

    def __init__(self, settings: AppSettings, loader: Callable[..., Any] = _default_loader) -> None:
        self.settings = settings
        self.bundle = settings.modality.bundle
        self._loader = loader
        self._lock = threading.RLock()
        self._loaded: LoadedModel | None = None
        self._key: tuple[str, int] | None = None
        self._embeddings: dict[str, np.ndarray] = {}

    @property
    def published(self) -> Path:
        """Where training publishes the fine-tuned classifier."""
        return self.settings.model_dir / PUBLISHED_NAME

    def weights(self) -> Path:
        """The checkpoint served now: published classifier > initial weights > REMEDIS encoder."""
        for path in (self.published, self.settings.initial_weights):
            if path is not None and path.is_file():
                return path
        return self.settings.encoder

    def model(self) -> LoadedModel:
        """The served model, reloaded when its checkpoint file changed (a new one was published).

        Raises:
            FileNotFoundError: when no checkpoint exists (names the encoder path to set).
        """
        weights = self.weights()
        if not weights.is_file():
            raise FileNotFoundError(
                f"{self.bundle}: no model yet and no REMEDIS encoder at '{weights}'; start the server with "
                f"--conf {self.bundle}_encoder <stage-2 backbone.pt>."
            )
        key = (str(weights), weights.stat().st_mtime_ns)
        with self._lock:
            if self._key != key:
                self._loaded = self._load(weights)
                self._key = key
                self._embeddings.clear()
            assert self._loaded is not None
            return self._loaded

    def _load(self, weights: Path) -> LoadedModel:
        from monai_remedis.models.classifier import Classifier

        bundle_model = self._loader(self.bundle, weights, dict(self.settings.overrides))
        trained = bundle_model.classifier is not None
        classifier = bundle_model.classifier or Classifier(bundle_model.backbone, len(bundle_model.class_names))
        device = torch.device(self.settings.device)
        classifier = classifier.to(device).eval()
        return LoadedModel(
            classifier=classifier,
            backbone=classifier.backbone,
            transform=bundle_model.transform,
            class_names=list(bundle_model.class_names),
            spatial_dims=int(bundle_model.config.get("spatial_dims", 2)),
            weights=weights,
            trained=trained,
        )

    def probabilities(self, images: Sequence[str]) -> np.ndarray:
        """Softmax class probabilities ``(N, C)`` of image paths, in order."""
        from monai_remedis.inference import predict_probabilities

        model = self.model()
        items = [{"image": str(p), "id": str(p)} for p in images]
        with self._lock:
            return predict_probabilities(model.classifier, items, model.transform, device=self.settings.device)

    def embeddings(self, images: Sequence[str]) -> np.ndarray:
        """Backbone features ``(N, feature_dim)`` of image paths, cached per image until the model changes."""
        from monai_remedis.inference import embed

        model = self.model()
        with self._lock:
            missing = [str(p) for p in dict.fromkeys(map(str, images)) if str(p) not in self._embeddings]
            if missing:
                items = [{"image": p, "id": p} for p in missing]
                features = embed(model.backbone, items, model.transform, device=self.settings.device)
                self._embeddings.update(zip(missing, features, strict=True))
            return np.stack([self._embeddings[str(p)] for p in images]) if images else np.zeros((0, 0))

    def publish(self, classifier: str | Path) -> Path:
        """Copy a fine-tuned ``classifier.pt`` to :attr:`published` atomically; the next call serves it."""
        self.published.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.published.with_suffix(".pt.tmp")
        shutil.copyfile(classifier, tmp)
        tmp.replace(self.published)
        return self.published
