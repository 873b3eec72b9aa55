"""The parts of a bundle that inference needs: the evaluation transform, the network and the class names."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch.nn as nn

from monai_remedis.backbones import create_backbone
from monai_remedis.backbones.weights import WeightsLoadError, load_backbone_weights, read_state_dict
from monai_remedis.models.classifier import Classifier


@dataclass
class BundleModel:
    """A bundle's backbone (weights loaded), its classifier when the weights hold a head, and its eval transform."""

    backbone: nn.Module
    transform: Callable
    class_names: list[str]
    classifier: nn.Module | None = None
    config: dict[str, Any] = field(default_factory=dict)


def _class_names(bundle: Path, num_classes: int) -> list[str]:
    """``network_data_format.outputs.pred.channel_def`` of the bundle's metadata, else ``class_0``..."""
    meta = bundle / "configs" / "metadata.json"
    if meta.is_file():
        outputs = json.loads(meta.read_text()).get("network_data_format", {}).get("outputs", {})
        channel_def = next(iter(outputs.values()), {}).get("channel_def", {})
        if len(channel_def) == num_classes:
            return [str(channel_def[str(i)]) for i in range(num_classes)]
    return [f"class_{i}" for i in range(num_classes)]


def _is_classifier_checkpoint(state: Mapping[str, Any]) -> bool:
    return any(k.startswith("head.") for k in state) and any(k.startswith("backbone.") for k in state)


def load_bundle_model(
    bundle: str | Path, weights: str | Path, overrides: Mapping[str, Any] | None = None, stage: str = "finetune"
) -> BundleModel:
    """Build a bundle's network from ``weights`` and read its evaluation transform.

    Args:
        bundle: bundle name (``cxr``...) or folder.
        weights: a stage checkpoint: ``classifier.pt`` (fine-tune: backbone and head, for ``predict`` and ``embed``)
            or ``backbone.pt`` (stages 1-2, or any backbone state dict: ``embed`` only).
        overrides: bundle config overrides (``backbone``, ``in_channels``, ``image_size``, ...).
        stage: the stage whose config supplies ``eval_transform`` and the network settings.

    Raises:
        FileNotFoundError: the weights file does not exist.
        WeightsLoadError: the file does not fit the bundle's backbone (names the file and tensors).
    """
    from monai.bundle import ConfigParser

    from monai_remedis.configs import bundle_config_files, bundle_dir

    if not Path(weights).is_file():
        raise FileNotFoundError(f"weights file not found: '{weights}'.")
    folder = bundle_dir(str(bundle))
    parser = ConfigParser()
    parser.read_config(bundle_config_files(folder, stage))
    for key, value in (overrides or {}).items():
        parser[key] = value
    settings = {k: parser.get_parsed_content(k) for k in ("backbone", "in_channels", "spatial_dims", "num_classes")}
    backbone = create_backbone(
        settings["backbone"], in_channels=int(settings["in_channels"]), spatial_dims=int(settings["spatial_dims"])
    )
    classifier = None
    state = read_state_dict(weights)
    if _is_classifier_checkpoint(state):
        classifier = Classifier(backbone, int(settings["num_classes"]))
        try:
            classifier.load_state_dict(state)
        except RuntimeError as exc:
            raise WeightsLoadError(f"{weights}: does not fit the bundle's classifier: {exc}") from exc
    else:
        load_backbone_weights(backbone, weights)
    return BundleModel(
        backbone=backbone,
        transform=parser.get_parsed_content("eval_transform"),
        class_names=_class_names(folder, int(settings["num_classes"])),
        classifier=classifier,
        config=settings,
    )
