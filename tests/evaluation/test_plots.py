"""The PNGs a user opens after a run: they exist, show data, and the reliability bins agree with the ECE."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from monai_remedis.data import medmnist_datalist
from monai_remedis.evaluation.plots import (
    embedding_coordinates,
    plot_embedding_map,
    plot_history,
    plot_reliability,
    plot_roc,
    plot_view_grid,
    reliability_bins,
)
from monai_remedis.evaluation.statistics import expected_calibration_error


def _is_png_with_content(path: Path) -> bool:
    image = np.asarray(Image.open(path).convert("L"), dtype=np.float32)
    return image.shape[0] > 100 and image.std() > 5  # not a blank canvas


def test_history_curves(tmp_path: Path):
    history = {"epoch": [1, 2, 3], "loss": [5.0, 4.0, 3.5], "lr": [1e-3, 5e-4, 0.0], "knn_auc": [0.7, 0.8, 0.85]}
    assert _is_png_with_content(plot_history(history, tmp_path / "curves.png"))
    validated_once = {"epoch": [1, 2, 3], "loss": [5.0, 4.0, 3.5], "val_auc": [None, 0.8, None]}  # as recorded
    assert _is_png_with_content(plot_history(validated_once, tmp_path / "gaps.png"))
    with pytest.raises(ValueError, match="no epoch"):
        plot_history({"epoch": []}, tmp_path / "empty.png")


def test_view_grid_of_real_xrays(pneumonia_npz: Path, tmp_path: Path):
    items = medmnist_datalist(pneumonia_npz, "train", limit=6)
    batch = torch.stack([torch.as_tensor(it["image"]).float() for it in items])
    path = plot_view_grid([batch, batch.flip(-1)], tmp_path / "views.png")
    assert _is_png_with_content(path)


def test_embedding_map_by_label_and_site(tmp_path: Path):
    rng = np.random.default_rng(0)
    features = np.concatenate([rng.normal(0, 1, (40, 16)), rng.normal(3, 1, (40, 16))])
    labels, sites = [0] * 40 + [1] * 40, ["a", "b"] * 40
    xy = embedding_coordinates(features)
    assert abs(xy[:40, 0].mean() - xy[40:, 0].mean()) > 2  # the first component separates the two clusters
    path = plot_embedding_map(features, tmp_path / "map.png", labels, sites, ["normal", "pneumonia"])
    assert _is_png_with_content(path)


def test_roc_and_reliability(tmp_path: Path):
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 300)
    logits = rng.normal(0, 1, (300, 3)) + 2 * np.eye(3)[labels]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert _is_png_with_content(plot_roc(probs, labels, tmp_path / "roc.png"))
    assert _is_png_with_content(plot_reliability(probs, labels, tmp_path / "rel.png"))
    bins = reliability_bins(probs, labels, n_bins=15)
    used = bins["count"] > 0
    ece = float((bins["count"][used] / len(labels) * np.abs(bins["accuracy"][used] - bins["confidence"][used])).sum())
    assert ece == pytest.approx(expected_calibration_error(probs, labels, n_bins=15), abs=1e-6)  # float32 sums
