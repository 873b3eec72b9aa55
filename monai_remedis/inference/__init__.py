"""Embeddings and class probabilities for new, unlabelled images (``monai-remedis embed`` / ``predict``).

Python API::

    from monai_remedis.inference import load_bundle_model, image_items, embed, predict_probabilities

    model = load_bundle_model("cxr", weights="runs/cxr/ssl/backbone.pt")       # backbone + eval transform
    items = image_items("/data/new_cxr_pngs")                                 # folder, datalist JSON or CSV
    features = embed(model.backbone, items, model.transform)                  # (N, feature_dim)
"""

from __future__ import annotations

import importlib
from typing import Any

# The API is imported on first use, so that ``monai_remedis.inference.cli`` (parsed by every ``monai-remedis``
# command) does not import MONAI and torch for commands that only print, such as ``monai-remedis configs``.
_API = {  # name -> the module of this package that defines it
    "embed": "api",
    "image_items": "api",
    "predict_probabilities": "api",
    "unlabelled": "api",
    "BundleModel": "bundle",
    "load_bundle_model": "bundle",
    "export_bundle_model": "export",
}

__all__ = sorted(_API, key=str.lower)


def __getattr__(name: str) -> Any:
    """Import the API name ``name`` from its module on first use."""
    if name in _API:
        return getattr(importlib.import_module(f"{__name__}.{_API[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
