"""One config per modality bundle the app can serve, and the app's ``--conf`` keys.

``monailabel start_server --app apps/monailabel --studies <folder> --conf models cxr --conf cxr_encoder <backbone.pt>``
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ModalityConfig:
    """What the app needs to know about one bundle beyond the bundle's own configs.

    Attributes:
        bundle: bundle name under ``bundles/`` (its configs give classes, transforms and the fine-tune stage).
        description: shown in MONAI Label's model list (3D Slicer, OHIF).
        checked: True when the app's tests run this bundle end to end against real monailabel; False when it is
            declared (same code path, not yet run in tests).
        overrides: bundle config overrides the app always applies (users add their own with ``<bundle>_overrides``).
    """

    bundle: str
    description: str
    checked: bool = False
    overrides: Mapping[str, Any] = field(default_factory=dict)


MODALITIES: dict[str, ModalityConfig] = {
    c.bundle: c
    for c in (
        ModalityConfig("cxr", "Chest X-ray classification (normal / pneumonia) from a REMEDIS encoder", checked=True),
        ModalityConfig(
            "fundus", "Fundus photograph diabetic-retinopathy grade (ICDR 0-4) from a REMEDIS encoder", True
        ),
        ModalityConfig("dermatology", "Dermatoscopic lesion class (7 HAM10000 classes) from a REMEDIS encoder"),
        ModalityConfig("pathology", "H&E tile tissue class (8 classes) from a REMEDIS encoder"),
        ModalityConfig("mammography", "Mammogram abnormality from a REMEDIS encoder"),
        ModalityConfig("ct3d", "CT volume classification (3D) from a REMEDIS encoder"),
    )
}
"""Modality bundles the app knows, by bundle name."""


def get_modality(name: str) -> ModalityConfig:
    """The config of bundle ``name``.

    Raises:
        KeyError: listing the known bundles.
    """
    if name not in MODALITIES:
        raise KeyError(f"no MONAI Label config for bundle '{name}'. Known: {', '.join(MODALITIES)}.")
    return MODALITIES[name]


@dataclass(frozen=True)
class AppSettings:
    """Per-bundle settings read from MONAI Label's ``--conf key value`` pairs.

    Attributes:
        modality: the bundle's config.
        encoder: the REMEDIS encoder (stage-2 ``backbone.pt``) every fine-tune starts from.
        model_dir: where the app publishes this bundle's fine-tuned ``classifier.pt`` (``<model_dir>/<bundle>/``).
        initial_weights: a fine-tuned ``classifier.pt`` served until the app trains its own (optional).
        overrides: bundle config overrides (``image_size``, ``backbone``...).
        device: ``cpu``, ``cuda``, ``cuda:1``...
    """

    modality: ModalityConfig
    encoder: Path
    model_dir: Path
    initial_weights: Path | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    device: str = "cpu"


def settings_from_conf(app_dir: str | Path, conf: Mapping[str, str]) -> list[AppSettings]:
    """Read the app's ``--conf`` keys.

    Keys: ``models`` (comma-separated bundle names or ``all``; default ``cxr``), ``<bundle>_encoder`` (default
    ``runs/<bundle>/ssl/backbone.pt``, the bundle's stage-2 output), ``<bundle>_weights``, ``<bundle>_overrides``
    (a JSON object), ``model_dir`` (default ``<app_dir>/model``) and ``device`` (default ``cpu``).

    Raises:
        KeyError: naming an unknown bundle in ``models``.
        ValueError: when ``<bundle>_overrides`` is not a JSON object.
    """
    names = [n.strip() for n in conf.get("models", "cxr").split(",") if n.strip()]
    names = list(MODALITIES) if names == ["all"] else names
    model_dir = Path(conf.get("model_dir", Path(app_dir) / "model"))
    out = []
    for name in names:
        modality = get_modality(name)
        overrides = json.loads(conf.get(f"{name}_overrides", "{}"))
        if not isinstance(overrides, dict):
            raise ValueError(f"{name}_overrides must be a JSON object, got {overrides!r}.")
        weights = conf.get(f"{name}_weights")
        out.append(
            AppSettings(
                modality=modality,
                encoder=Path(conf.get(f"{name}_encoder", f"runs/{name}/ssl/backbone.pt")).resolve(),
                model_dir=model_dir.resolve() / name,
                initial_weights=Path(weights).resolve() if weights else None,
                overrides={**modality.overrides, **overrides},
                device=conf.get("device", "cpu"),
            )
        )
    return out
