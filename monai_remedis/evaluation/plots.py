"""The pictures a user looks at after a run: training curves, augmented views, embedding maps, ROC, reliability.

Every function writes one PNG (matplotlib, Agg backend) and returns its path. They take plain arrays, so each
stage calls them on what it already has (``history.json``, a batch of views, features, test probabilities).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402


def _save(fig: plt.Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_history(history: Mapping[str, Sequence[float]], path: str | Path, keys: Sequence[str] | None = None) -> Path:
    """One panel per logged series of ``history.json`` (loss, lr, kNN accuracy, collapse signals) against epoch.

    Args:
        history: ``{"epoch": [...], key: [...]}`` as :class:`~monai_remedis.engines.handlers.HistoryRecorder` writes.
        path: PNG to write.
        keys: series to draw (default: every series but ``epoch``, ``loss`` and ``lr`` first).

    Raises:
        ValueError: when the history holds no epoch.
    """
    epochs = list(history.get("epoch", []))
    if not epochs:
        raise ValueError(f"{path}: the history holds no epoch to plot.")
    present = [k for k in history if k != "epoch" and len(history[k]) == len(epochs)]
    keys = [k for k in (keys or sorted(present, key=lambda k: (k not in ("loss", "lr"), k))) if k in present]
    fig, axes = plt.subplots(1, max(1, len(keys)), figsize=(3.2 * max(1, len(keys)), 2.8), dpi=110, squeeze=False)
    for ax, key in zip(axes[0], keys, strict=False):
        ax.plot(epochs, history[key], marker="o", ms=3)
        ax.set_title(key)
        ax.set_xlabel("epoch")
        if key == "lr":
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    return _save(fig, path)


def _display(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """A 2D (H, W) or (H, W, 3) array in [0, 1] for imshow: the middle slice of 3D, channels last, min-max scaled."""
    a = np.asarray(image.detach().float().cpu() if isinstance(image, torch.Tensor) else image, dtype=np.float32)
    if a.ndim == 4:  # (C, x, y, z): middle axial slice
        a = a[..., a.shape[-1] // 2]
    a = a[0] if a.shape[0] == 1 else np.moveaxis(a[:3], 0, -1)
    a = np.swapaxes(a, 0, 1)  # MONAI layout (x, y) -> image rows (y, x)
    lo, hi = float(a.min()), float(a.max())
    return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)


def plot_view_grid(views: Sequence[torch.Tensor], path: str | Path, max_images: int = 8) -> Path:
    """A grid of augmented views: one row per view key, one column per image, so a user sees what SSL trains on.

    Args:
        views: ``num_views`` batches ``(B, C, *spatial)`` (``view_0``, ``view_1``, ...).
        path: PNG to write.
        max_images: columns.
    """
    n = min(max_images, int(views[0].shape[0]))
    fig, axes = plt.subplots(len(views), n, figsize=(1.4 * n, 1.4 * len(views)), dpi=110, squeeze=False)
    for r, batch in enumerate(views):
        for c in range(n):
            ax = axes[r][c]
            ax.imshow(_display(batch[c]), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(f"view_{r}", fontsize=8)
    return _save(fig, path)


def embedding_coordinates(features: np.ndarray) -> np.ndarray:
    """2D coordinates of standardised features by PCA (scikit-learn), deterministic."""
    from sklearn.decomposition import PCA

    x = np.asarray(features, dtype=np.float64)
    x = (x - x.mean(0)) / (x.std(0) + 1e-8)
    return PCA(n_components=2, random_state=0).fit_transform(x)


def plot_embedding_map(
    features: np.ndarray,
    path: str | Path,
    labels: Sequence[int] | None = None,
    sites: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
) -> Path:
    """PCA map of embeddings, one panel coloured by label and one by site (where given).

    Args:
        features: ``(N, D)`` embeddings.
        path: PNG to write.
        labels: class index per row.
        sites: acquisition site per row (e.g. in-distribution test vs an OOD set).
        class_names: names of the label values.
    """
    xy = embedding_coordinates(features)
    panels = [(name, values) for name, values in (("label", labels), ("site", sites)) if values is not None]
    panels = panels or [("embedding", [""] * len(xy))]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8), dpi=110, squeeze=False)
    for ax, (title, values) in zip(axes[0], panels, strict=True):
        values = list(values)
        for group in sorted(set(values), key=str):
            mask = np.array([v == group for v in values])
            name = class_names[int(group)] if title == "label" and class_names else str(group)
            ax.scatter(xy[mask, 0], xy[mask, 1], s=6, alpha=0.7, label=name)
        ax.set_title(f"PCA of embeddings, by {title}")
        if len(set(values)) > 1:
            ax.legend(fontsize=7, markerscale=2)
    return _save(fig, path)


def plot_roc(probs: np.ndarray, labels: np.ndarray, path: str | Path, class_names: Sequence[str] | None = None) -> Path:
    """ROC curves: the positive class for binary tasks, one-vs-rest per class otherwise (scikit-learn ``roc_curve``)."""
    from sklearn.metrics import roc_auc_score, roc_curve

    probs, labels = np.asarray(probs), np.asarray(labels).astype(int)
    classes = [1] if probs.shape[1] == 2 else list(range(probs.shape[1]))
    fig, ax = plt.subplots(figsize=(4.2, 4), dpi=110)
    for c in classes:
        positive = labels == c
        if positive.all() or not positive.any():
            continue
        fpr, tpr, _ = roc_curve(positive, probs[:, c])
        name = class_names[c] if class_names else f"class {c}"
        ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(positive, probs[:, c]):.3f})")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(fontsize=7)
    return _save(fig, path)


def reliability_bins(probs: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> dict[str, np.ndarray]:
    """Top-label confidence vs accuracy in equal-width bins (the data of a reliability diagram and of ECE)."""
    probs, labels = np.asarray(probs), np.asarray(labels).astype(int)
    confidence, predicted = probs.max(1), probs.argmax(1)
    edges = np.linspace(0, 1, n_bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, n_bins - 1)
    count = np.bincount(which, minlength=n_bins)
    correct = np.bincount(which, weights=(predicted == labels).astype(float), minlength=n_bins)
    conf_sum = np.bincount(which, weights=confidence, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"edges": edges, "count": count, "accuracy": correct / count, "confidence": conf_sum / count}


def plot_reliability(probs: np.ndarray, labels: np.ndarray, path: str | Path, n_bins: int = 10) -> Path:
    """Reliability diagram: accuracy per confidence bin against the diagonal of perfect calibration."""
    bins = reliability_bins(probs, labels, n_bins)
    centres = (bins["edges"][:-1] + bins["edges"][1:]) / 2
    used = bins["count"] > 0
    fig, ax = plt.subplots(figsize=(4.2, 4), dpi=110)
    ax.bar(centres[used], bins["accuracy"][used], width=1 / n_bins, edgecolor="k", alpha=0.7, label="accuracy")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8, label="perfect calibration")
    ax.set_xlabel("confidence (top-label probability)")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    return _save(fig, path)
