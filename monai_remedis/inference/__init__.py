"""Embeddings and class probabilities for new, unlabelled images (``monai-remedis embed`` / ``predict``).

Python API::

    from monai_remedis.inference import load_bundle_model, image_items, embed, predict_probabilities

    model = load_bundle_model("cxr", weights="runs/cxr/ssl/backbone.pt")       # backbone + eval transform
    items = image_items("/data/new_cxr_pngs")                                 # folder, datalist JSON or CSV
    features = embed(model.backbone, items, model.transform)                  # (N, feature_dim)
"""

from __future__ import annotations

from monai_remedis.inference.api import embed, image_items, predict_probabilities, unlabelled
from monai_remedis.inference.bundle import BundleModel, load_bundle_model
from monai_remedis.inference.export import export_bundle_model

__all__ = [
    "BundleModel",
    "embed",
    "export_bundle_model",
    "image_items",
    "load_bundle_model",
    "predict_probabilities",
    "unlabelled",
]
