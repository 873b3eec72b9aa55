"""Each hand-written metric of evaluation/statistics.py agrees with scikit-learn on random data, and the linear probe
with ``sklearn.linear_model.LogisticRegression`` at the matching penalty."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn import metrics
from sklearn.linear_model import LogisticRegression

from monai_remedis.evaluation.linear_probe import fit_logistic_regression, sklearn_c
from monai_remedis.evaluation.statistics import (
    accuracy_score,
    auc_score,
    binary_auc,
    classification_metrics,
    expected_calibration_error,
)

CASES = [(2, 0), (2, 1), (3, 2), (5, 3), (10, 4)]  # (classes, seed)


def _random_case(k: int, seed: int, n: int = 300, ties: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    labels[:k] = np.arange(k)  # every class present
    logits = rng.normal(size=(n, k)) + rng.uniform(0.0, 2.0) * np.eye(k)[labels]
    if ties:
        logits = np.round(logits, 1)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return probs, labels


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize(("k", "seed"), CASES)
def test_auc_matches_roc_auc_score(k: int, seed: int, ties: bool) -> None:
    probs, labels = _random_case(k, seed, ties=ties)
    expected = (
        metrics.roc_auc_score(labels, probs[:, 1])
        if k == 2
        else metrics.roc_auc_score(labels, probs, multi_class="ovr", average="macro")
    )
    assert auc_score(probs, labels) == pytest.approx(expected, abs=1e-12)
    for c in range(k):  # one-vs-rest, per class
        assert binary_auc(probs[:, c], labels == c) == pytest.approx(
            metrics.roc_auc_score(labels == c, probs[:, c]), abs=1e-12
        )


@pytest.mark.parametrize(("k", "seed"), CASES)
def test_classification_report_matches_sklearn(k: int, seed: int) -> None:
    probs, labels = _random_case(k, seed)
    pred = probs.argmax(axis=1)
    report = classification_metrics(probs, labels, top_k=(1, 2, 3))
    assert accuracy_score(probs, labels) == report["accuracy"] == pytest.approx(metrics.accuracy_score(labels, pred))
    for top in (2, 3):
        if top < k:  # sklearn refuses k >= n_classes
            expected = metrics.top_k_accuracy_score(labels, probs, k=top, labels=np.arange(k))
            assert report[f"top{top}_accuracy"] == pytest.approx(expected)
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        labels, pred, labels=np.arange(k), zero_division=np.nan
    )
    for c, row in enumerate(report["per_class"]):
        assert row["support"] == support[c] and row["recall"] == pytest.approx(recall[c])
        assert row["precision"] == pytest.approx(precision[c], nan_ok=True)
        assert row["f1"] == pytest.approx(f1[c], nan_ok=True)
        assert row["auc"] == pytest.approx(metrics.roc_auc_score(labels == c, probs[:, c]))
    assert report["macro_f1"] == pytest.approx(metrics.f1_score(labels, pred, average="macro"))
    np.testing.assert_array_equal(report["confusion_matrix"], metrics.confusion_matrix(labels, pred, labels=range(k)))


@pytest.mark.parametrize(("k", "seed"), CASES)
def test_ece_matches_a_direct_binning(k: int, seed: int) -> None:
    """scikit-learn has no ECE: the reference bins the top-1 confidences into (lo, hi] with numpy."""
    probs, labels = _random_case(k, seed)
    confidence = probs.max(axis=1).astype(np.float32)
    correct = probs.argmax(axis=1) == labels
    bins = np.clip(np.ceil(confidence * 15).astype(int) - 1, 0, 14)
    expected = sum(
        np.sum(bins == b) / len(labels) * abs(confidence[bins == b].mean() - correct[bins == b].mean())
        for b in range(15)
        if np.any(bins == b)
    )
    assert expected_calibration_error(probs, labels, n_bins=15) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(("k", "l2"), [(2, 0.1), (2, 0.01), (3, 0.1), (4, 0.01)])
def test_linear_probe_matches_logistic_regression(k: int, l2: float) -> None:
    """Our ``mean CE + l2/2 ||W||^2`` softmax fit and sklearn's at ``C = sklearn_c(l2, n, k)`` give the same model."""
    rng = np.random.default_rng(k)
    n, d = 240, 12
    labels = rng.integers(0, k, n)
    x = rng.normal(size=(n, d)) + 0.8 * rng.normal(size=(k, d))[labels]
    weight, bias = fit_logistic_regression(
        torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(labels), k, l2, max_iter=500
    )
    ours = torch.softmax(torch.as_tensor(x, dtype=torch.float32) @ weight + bias, dim=1).numpy()
    reference = LogisticRegression(C=sklearn_c(l2, n, k), tol=1e-10, max_iter=10_000).fit(x, labels)
    np.testing.assert_allclose(ours, reference.predict_proba(x), atol=2e-3)
