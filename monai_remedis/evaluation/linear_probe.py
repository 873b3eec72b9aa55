"""Linear-probe fast path of the data-efficiency sweep: frozen-backbone features, cached, and a torch logistic head.

A sweep of ``fractions x seeds`` fine-tunes is the expensive part of REMEDIS's evaluation. With the backbone frozen,
every run sees the same features, so they are extracted once per init (:func:`extract_features`, cached on disk
by :class:`FeatureCache`) and each run only fits a multinomial logistic regression on its labelled subset
(:func:`train_linear_probe`): full-batch L-BFGS in torch, milliseconds per fit for thousands of 512-d features.

Details:

* features are standardised with the mean/std of the whole (unlabelled) training pool, a label-free preprocessing
  that every run shares;
* the L2 strength is chosen from a grid by validation AUC (validation data only; ties go to the stronger
  penalty); without validation data the middle of the grid is used;
* no augmentation: a linear probe measures the representation, and the fine-tune path is there for the rest.

Example::

    cache = FeatureCache("runs/eval/features")
    train = cache.load_or_extract("remedis/train", make_backbone, train_items, eval_transform, {"w": digest})
    probe = train_linear_probe(train.features[idx], train.labels[idx], num_classes=2, val=(xv, yv),
                               standardise=train.features)
    probs = probe.predict_proba(test.features)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import pickle
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from monai.data import DataLoader, Dataset, list_data_collate

from monai_remedis.data.duplicates import array_hash
from monai_remedis.engines.fingerprint import transform_digest
from monai_remedis.engines.runtime import atomic_torch_save
from monai_remedis.evaluation.statistics import auc_score

__all__ = [
    "DEFAULT_L2_GRID",
    "FeatureCache",
    "FeatureSet",
    "LinearProbe",
    "datalist_fingerprint",
    "extract_features",
    "file_fingerprint",
    "fit_logistic_regression",
    "single_thread",
    "sklearn_c",
    "train_linear_probe",
]

logger = logging.getLogger("monai_remedis")

DEFAULT_L2_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
"""L2 penalties (on standardised features, mean cross-entropy loss) tried by :func:`train_linear_probe`."""


@dataclass
class FeatureSet:
    """Frozen-backbone features of one datalist, in datalist order.

    Attributes:
        features: ``(N, D)`` float32.
        labels: ``(N,)`` int64.
        ids: item ids (``id`` key, else the index as a string).
    """

    features: torch.Tensor
    labels: torch.Tensor
    ids: list[str]

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def _item_labels(datalist: Sequence[Mapping[str, Any]]) -> torch.Tensor:
    missing = next((i for i, item in enumerate(datalist) if "label" not in item), None)
    if missing is not None:
        raise ValueError(f"item {missing} ({datalist[missing].get('id', '?')}) has no 'label'.")
    return torch.as_tensor([int(item["label"]) for item in datalist], dtype=torch.int64)


def _plain(images: torch.Tensor) -> torch.Tensor:
    """A plain tensor (MONAI ``MetaTensor`` metadata would follow the features into the cache files)."""
    return images.as_tensor() if hasattr(images, "as_tensor") else torch.as_tensor(images)


@torch.no_grad()
def extract_features(
    backbone: nn.Module,
    datalist: Sequence[Mapping[str, Any]],
    transform: Callable,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    num_workers: int = 0,
) -> FeatureSet:
    """Run the frozen backbone (eval mode) over a labelled datalist.

    Args:
        backbone: module mapping ``(B, C, *spatial)`` to ``(B, D)``.
        datalist: items with ``image`` and ``label``.
        transform: the deterministic evaluation transform.
        batch_size: inference batch size.
        device: device of the forward passes (features come back on CPU).
        num_workers: data-loader workers.

    Returns:
        the :class:`FeatureSet`.

    Raises:
        ValueError: empty datalist or an item without ``label``.
    """
    if not datalist:
        raise ValueError("extract_features: the datalist is empty.")
    labels = _item_labels(datalist)
    loader = DataLoader(
        Dataset([dict(item) for item in datalist], transform=transform),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=list_data_collate,
    )
    backbone = backbone.to(device).eval()
    chunks = [backbone(_plain(batch["image"]).to(device)).float().cpu() for batch in loader]
    ids = [str(item.get("id", i)) for i, item in enumerate(datalist)]
    return FeatureSet(torch.cat(chunks), labels, ids)


def file_fingerprint(path: str | Path | None) -> str:
    """SHA-256 of a file's bytes (``"none"`` for None): identifies a checkpoint independently of its path."""
    if path is None:
        return "none"
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def datalist_fingerprint(
    datalist: Sequence[Mapping[str, Any]], transform: Callable | None = None, probe_items: int = 2
) -> str:
    """Hash of a datalist's identity and of what ``transform`` makes of its first items.

    Items contribute their ``id``, ``label`` and image (in-memory pixels, or path + size + modification time);
    the transform's :func:`~monai_remedis.engines.fingerprint.transform_digest` on the first ``probe_items`` is
    hashed too, so changing the evaluation transform (size, intensity window) changes the fingerprint without
    hashing every transformed image.

    Args:
        datalist: items.
        transform: the transform whose output the cache holds (None: not part of the fingerprint).
        probe_items: how many items are transformed for the fingerprint.

    Returns:
        hex digest.
    """
    digest = hashlib.sha256()
    for item in datalist:
        image = item.get("image")
        if isinstance(image, (str, Path)):
            stat = Path(image).stat() if Path(image).exists() else None
            image_key = f"{image}:{stat.st_size if stat else -1}:{stat.st_mtime_ns if stat else -1}"
        else:
            image_key = array_hash(image) if image is not None else "none"
        digest.update(json.dumps([str(item.get("id")), str(item.get("label")), image_key]).encode())
    if transform is not None:
        digest.update(str(transform_digest(transform, datalist, probe_items)).encode())
    return digest.hexdigest()


class FeatureCache:
    """On-disk cache of :class:`FeatureSet` objects keyed by everything that determines them.

    Files are ``<root>/<name>-<key[:16]>.pt`` (plain tensors, read with ``weights_only=True``); the full key is
    stored inside and checked on load.

    Args:
        root: cache folder (created on first write).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(parts: Mapping[str, Any]) -> str:
        """Stable hash of the key parts (JSON with sorted keys)."""
        return hashlib.sha256(json.dumps(dict(parts), sort_keys=True, default=str).encode()).hexdigest()

    def path(self, name: str, key: str) -> Path:
        """File of ``name`` under ``key`` (``/`` in names becomes a sub-folder)."""
        return self.root / f"{name}-{key[:16]}.pt"

    def load_or_extract(
        self,
        name: str,
        backbone_factory: Callable[[], nn.Module],
        datalist: Sequence[Mapping[str, Any]],
        transform: Callable,
        key_parts: Mapping[str, Any],
        batch_size: int = 256,
        device: torch.device | str = "cpu",
    ) -> FeatureSet:
        """Cached features of ``datalist``, extracting them (and writing the cache) on a miss.

        Args:
            name: readable name, e.g. ``"remedis/train"``.
            backbone_factory: builds the frozen backbone with its weights (called on a miss only).
            datalist: items.
            transform: evaluation transform.
            key_parts: what identifies the backbone (name, weights fingerprint, ...); the datalist and transform
                fingerprint is added here.
            batch_size: inference batch size.
            device: inference device.

        Returns:
            the features.
        """
        key = self.key({**key_parts, "data": datalist_fingerprint(datalist, transform)})
        path = self.path(name, key)
        if path.is_file():
            try:
                stored = torch.load(path, map_location="cpu", weights_only=True)
            except (pickle.UnpicklingError, RuntimeError, EOFError) as exc:  # unreadable: extract again
                logger.warning("ignoring unreadable feature cache %s: %s", path, str(exc).splitlines()[0])
                stored = {}
            if stored.get("key") == key:
                self.hits += 1
                return FeatureSet(stored["features"], stored["labels"], list(stored["ids"]))
        self.misses += 1
        features = extract_features(backbone_factory(), datalist, transform, batch_size, device)
        payload = {"key": key, "features": features.features, "labels": features.labels, "ids": features.ids}
        atomic_torch_save(payload, path)
        logger.info("cached %d features of %s in %s", len(features), name, path)
        return features


def fit_logistic_regression(
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    l2: float,
    max_iter: int = 100,
    init: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression by full-batch L-BFGS: ``min mean CE(xW + b, y) + l2/2 * ||W||^2``.

    The same model as ``sklearn.linear_model.LogisticRegression(C=sklearn_c(l2, N, K))`` (L2 penalty, lbfgs,
    unpenalised intercept), whose objective is ``C * sum CE + 1/2 ||W||^2``: dividing it by ``C * N`` gives ours
    with ``l2 = 1 / (C * N)``. For ``K = 2`` scikit-learn fits one weight vector ``v = w_1 - w_0`` while the softmax
    here fits two; at the optimum ``w_0 = -w_1``, so the penalty on ``v`` is ``l2/4 ||v||^2`` and ``C`` doubles
    (:func:`sklearn_c`). ``tests/evaluation/test_metrics_against_sklearn.py`` checks the probabilities agree.

    Args:
        x: ``(N, D)`` features (standardise them first).
        y: ``(N,)`` integer labels.
        num_classes: ``K``.
        l2: penalty on the weights (not the bias).
        max_iter: L-BFGS iterations.
        init: ``(weight, bias)`` to start from (warm start along a penalty path); default zeros.

    Returns:
        ``(weight (D, K), bias (K,))``, deterministic for given inputs.
    """
    x = x.float()
    if init is None:
        weight = torch.zeros(x.shape[1], num_classes, requires_grad=True)
        bias = torch.zeros(num_classes, requires_grad=True)
    else:
        weight, bias = (t.detach().clone().float().requires_grad_(True) for t in init)
    optimizer = torch.optim.LBFGS(
        [weight, bias],
        lr=1.0,
        max_iter=max_iter,
        history_size=10,
        tolerance_grad=1e-5,
        tolerance_change=1e-7,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(x @ weight + bias, y) + 0.5 * l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return weight.detach().float(), bias.detach().float()


def sklearn_c(l2: float, n: int, num_classes: int) -> float:
    """scikit-learn's ``C`` for the model :func:`fit_logistic_regression` fits with penalty ``l2`` on ``n`` samples:
    ``1 / (l2 * n)``, twice that for two classes (see there)."""
    return (2.0 if num_classes == 2 else 1.0) / (l2 * n)


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run torch ops on one intra-op thread: tiny full-batch fits are dominated by thread hand-offs otherwise
    (about 50x slower with 2 threads on a busy 2-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@dataclass
class LinearProbe:
    """A fitted linear head on standardised features.

    Attributes:
        weight: ``(D, K)``.
        bias: ``(K,)``.
        mean: ``(D,)`` standardisation mean.
        std: ``(D,)`` standardisation scale.
        l2: the chosen penalty.
        val_auc: validation AUC of the chosen penalty (None without validation data).
        val_aucs: validation AUC of every penalty tried.
    """

    weight: torch.Tensor
    bias: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    l2: float
    val_auc: float | None = None
    val_aucs: dict[str, float] | None = None

    def predict_proba(self, x: torch.Tensor) -> np.ndarray:
        """Softmax probabilities ``(N, K)`` for features ``x``."""
        z = (x.float() - self.mean) / self.std
        return torch.softmax(z @ self.weight + self.bias, dim=1).numpy()


def _standardiser(pool: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean = pool.float().mean(dim=0)
    std = pool.float().std(dim=0, unbiased=False).clamp_min(1e-6)
    return mean, std


def train_linear_probe(
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    val: tuple[torch.Tensor, torch.Tensor] | None = None,
    l2_grid: Sequence[float] = DEFAULT_L2_GRID,
    standardise: torch.Tensor | None = None,
    max_iter: int = 100,
) -> LinearProbe:
    """Fit a logistic-regression head, choosing the L2 penalty by validation AUC.

    Args:
        x: ``(n, D)`` features of the labelled subset.
        y: ``(n,)`` labels.
        num_classes: ``K``.
        val: ``(features, labels)`` of the validation set (model selection only; never test or OOD data).
        l2_grid: penalties tried.
        standardise: features whose mean/std standardise every input (default: ``x``); pass the whole unlabelled
            training pool so that tiny subsets get stable statistics.
        max_iter: L-BFGS iterations per fit (the path is warm-started from the strongest penalty).

    Returns:
        the :class:`LinearProbe` of the chosen penalty.

    Raises:
        ValueError: empty training set or empty grid.
    """
    if x.shape[0] == 0:
        raise ValueError("train_linear_probe: no labelled items.")
    grid = sorted(float(v) for v in l2_grid)
    if not grid:
        raise ValueError("train_linear_probe: l2_grid is empty.")
    with single_thread():
        return _fit_path(x, y, num_classes, val, grid, standardise, max_iter)


def _fit_path(
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    val: tuple[torch.Tensor, torch.Tensor] | None,
    grid: list[float],
    standardise: torch.Tensor | None,
    max_iter: int,
) -> LinearProbe:
    mean, std = _standardiser(standardise if standardise is not None else x)
    z = (x.float() - mean) / std
    if val is None or len(grid) == 1:
        l2 = grid[len(grid) // 2]
        w, b = fit_logistic_regression(z, y, num_classes, l2, max_iter)
        return LinearProbe(w, b, mean, std, l2)
    yv = val[1].numpy()
    best: LinearProbe | None = None
    scores: dict[str, float] = {}
    start: tuple[torch.Tensor, torch.Tensor] | None = None
    for l2 in reversed(grid):  # strongest penalty first (a tie keeps the simpler model), each warm-starting the next
        w, b = start = fit_logistic_regression(z, y, num_classes, l2, max_iter, init=start)
        probe = LinearProbe(w, b, mean, std, l2)
        auc = auc_score(probe.predict_proba(val[0]), yv)
        scores[f"{l2:g}"] = auc
        better = np.isfinite(auc) and (best is None or best.val_auc is None or auc > best.val_auc)
        if best is None or better:
            best = probe
            best.val_auc = float(auc) if np.isfinite(auc) else None
    assert best is not None
    best.val_aucs = scores
    return best
