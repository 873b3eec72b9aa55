"""MONAI Label infer task: class probabilities named from the bundle's ``channel_def``, the embedding on request."""

from __future__ import annotations

from typing import Any

from monailabel.interfaces.tasks.infer_v2 import InferTask, InferType

from remedis_label.runtime import BundleRuntime


def _flag(value: Any) -> bool:
    """A request flag given as a JSON bool or a string (``--conf`` values are strings)."""
    return value is True or str(value).strip().lower() in ("1", "true", "yes", "on")


class RemedisClassificationInfer(InferTask):
    """Classify one image with the bundle's served model.

    The result JSON (``output=json`` on ``POST /infer/<bundle>``)::

        {"prediction": "pneumonia", "probabilities": {"normal": 0.12, "pneumonia": 0.88},
         "trained": true, "weights": ".../model/cxr/classifier.pt", "bundle": "cxr"}

    plus ``"embedding": [...]`` (the backbone features) when the request has ``"embedding": true``.
    ``trained: false`` means no fine-tuned classifier exists yet: probabilities are uniform.

    Args:
        runtime: the bundle's shared model holder.
    """

    def __init__(self, runtime: BundleRuntime) -> None:
        self.runtime = runtime
        modality = runtime.settings.modality
        super().__init__(
            type=InferType.CLASSIFICATION,
            labels=None,
            dimension=3 if modality.bundle == "ct3d" else 2,
            description=modality.description,
            config={"embedding": False},
        )

    def info(self) -> dict[str, Any]:
        """MONAI Label's model info, with the class names, the served weights and whether they are fine-tuned."""
        info = super().info()
        try:
            model = self.runtime.model()
        except FileNotFoundError as exc:
            return {**info, "error": str(exc)}
        self.labels = {name: i for i, name in enumerate(model.class_names)}
        return {
            **info,
            "labels": self.labels,
            "bundle": self.runtime.bundle,
            "weights": str(model.weights),
            "trained": model.trained,
        }

    def is_valid(self) -> bool:
        return self.runtime.weights().is_file()

    def get_path(self, validate: bool = True) -> str | None:
        path = self.runtime.weights()
        return str(path) if path.is_file() or not validate else None

    def __call__(self, request: dict[str, Any]) -> tuple[None, dict[str, Any]]:
        """Run on ``request["image"]`` (a datastore image, already resolved to a path by the app).

        Raises:
            ValueError: when the image is not a file path.
        """
        image = request.get("image")
        if not isinstance(image, str):
            raise ValueError(f"{self.runtime.bundle}: infer needs an image path, got {type(image).__name__}.")
        model = self.runtime.model()
        probs = self.runtime.probabilities([image])[0]
        result: dict[str, Any] = {
            "bundle": self.runtime.bundle,
            "prediction": model.class_names[int(probs.argmax())],
            "probabilities": {name: float(p) for name, p in zip(model.class_names, probs, strict=True)},
            "trained": model.trained,
            "weights": str(model.weights),
        }
        if _flag(request.get("embedding", False)):
            result["embedding"] = [float(v) for v in self.runtime.embeddings([image])[0]]
        return None, result
