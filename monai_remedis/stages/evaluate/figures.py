"""Figures of the evaluation report: ROC and reliability diagrams per evaluated set, and a 2D embedding map.

Written next to ``report.md`` (``figures/``) and linked from it; each is cheap (the embedding map embeds at most
``max_items`` images per set).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from monai_remedis.evaluation.linear_probe import extract_features
from monai_remedis.evaluation.plots import plot_embedding_map, plot_reliability, plot_roc

logger = logging.getLogger("monai_remedis")
FIGURES_DIR = "figures"


def slug(name: str) -> str:
    """A file-name form of an evaluation name (``"test (in-distribution)"`` -> ``test_in-distribution``)."""
    return re.sub(r"[^A-Za-z0-9.-]+", "_", name).strip("_") or "set"


def write_prediction_figures(
    out: Path, predictions: Mapping[str, tuple[np.ndarray, np.ndarray]], class_names: Sequence[str] | None = None
) -> dict[str, dict[str, str]]:
    """``figures/roc_<set>.png`` and ``figures/reliability_<set>.png`` per evaluated set; returns their paths."""
    files: dict[str, dict[str, str]] = {}
    for name, (probs, labels) in predictions.items():
        if len(np.unique(labels)) < 2:
            logger.info("figures of '%s' skipped: one class only", name)
            continue
        files[name] = {
            "roc": str(plot_roc(probs, labels, out / FIGURES_DIR / f"roc_{slug(name)}.png", class_names)),
            "reliability": str(plot_reliability(probs, labels, out / FIGURES_DIR / f"reliability_{slug(name)}.png")),
        }
    return files


def write_embedding_map(
    out: Path,
    backbone: torch.nn.Module,
    sets: Mapping[str, tuple[Sequence[Mapping[str, Any]], Callable]],
    device: torch.device | str = "cpu",
    max_items: int = 300,
    class_names: Sequence[str] | None = None,
) -> str | None:
    """``figures/embedding_map.png``: PCA of the backbone's features of the first ``max_items`` items of each set,
    coloured by label and by site (the item's ``site``, else the set's name)."""
    features, labels, sites = [], [], []
    for name, (datalist, transform) in sets.items():
        items = [item for item in list(datalist)[:max_items] if item.get("label") is not None]
        if not items:
            continue
        feats = extract_features(backbone, items, transform, device=device)
        features.append(feats.features.numpy())
        labels += feats.labels.tolist()
        sites += [str(item.get("site") or name) for item in items]
    if not features:
        logger.info("embedding map skipped: no labelled items to embed")
        return None
    path = out / FIGURES_DIR / "embedding_map.png"
    return str(plot_embedding_map(np.concatenate(features), path, labels, sites, class_names))


def figures_markdown(predictions: Mapping[str, Mapping[str, str]], embedding: str | None, out: Path) -> str:
    """The report section that shows the figures (paths relative to ``report.md``)."""
    lines = ["", "## Figures", ""]
    for name, files in predictions.items():
        roc, reliability = (Path(files[k]).relative_to(out) for k in ("roc", "reliability"))
        lines += [
            f"**{name}**: ROC and reliability",
            "",
            f"![ROC, {name}]({roc}) ![reliability, {name}]({reliability})",
            "",
        ]
    if embedding:
        lines += ["**Embedding map** (PCA of backbone features, by label and by site)", ""]
        lines += [f"![embedding map]({Path(embedding).relative_to(out)})", ""]
    return "\n".join(lines)
