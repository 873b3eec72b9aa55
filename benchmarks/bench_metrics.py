"""Hand-written AUC and bootstraps against scikit-learn / scipy: is keeping our own worth it?

On the PneumoniaMNIST test-set size (624 images, binary) and a 5-class set of 400 images, with random predictions:

* one AUC call: :func:`monai_remedis.evaluation.statistics.auc_score` vs ``sklearn.metrics.roc_auc_score``;
* a 1000-resample percentile bootstrap of the AUC: :func:`~monai_remedis.evaluation.statistics.bootstrap_ci`
  (our AUC) vs ``scipy.stats.bootstrap(method="percentile")`` with ``roc_auc_score`` as the statistic.

scipy's bootstrap resamples observations only: it has no cluster (patient-level) resampling, which the cluster
bootstrap (``groups=``) needs. Medians of 5 rounds, one thread; the AUC values agree to 1e-12 and, for the
intervals, to Monte-Carlo error (the two use different random draws).

    python benchmarks/bench_metrics.py --out benchmarks/results/metrics.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from scipy.stats import bootstrap
from sklearn.metrics import roc_auc_score

from monai_remedis.evaluation.statistics import auc_score, bootstrap_ci

ROUNDS = 5
N_BOOT = 1000


def _median_seconds(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        times.append((time.perf_counter() - start) / repeat)
    return statistics.median(times)


def _case(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[labels]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return probs, labels


def _sklearn_auc(probs: np.ndarray, labels: np.ndarray) -> float:
    if probs.shape[1] == 2:
        return float(roc_auc_score(labels, probs[:, 1]))
    return float(roc_auc_score(labels, probs, multi_class="ovr", average="macro"))


def _scipy_bootstrap(probs: np.ndarray, labels: np.ndarray, seed: int):
    """scipy's percentile bootstrap of the sklearn AUC, resampling row indices (2-D ``probs`` cannot be passed)."""
    return bootstrap(
        (np.arange(len(labels)),),
        lambda idx: _sklearn_auc(probs[idx], labels[idx]),
        n_resamples=N_BOOT,
        vectorized=False,
        method="percentile",
        random_state=seed,
    )


def run() -> dict:
    torch.set_num_threads(1)
    out = {"platform": platform.processor() or platform.machine(), "n_boot": N_BOOT, "cases": {}}
    for name, (n, k) in {"binary_624": (624, 2), "5class_400": (400, 5)}.items():
        probs, labels = _case(n, k, seed=0)
        ours_auc = _median_seconds(lambda p=probs, y=labels: auc_score(p, y), 200)
        sk_auc = _median_seconds(lambda p=probs, y=labels: _sklearn_auc(p, y), 200)
        ours_ci = bootstrap_ci(probs, labels, auc_score, n_boot=N_BOOT)
        sp_ci = _scipy_bootstrap(probs, labels, seed=0).confidence_interval
        ours_boot = _median_seconds(lambda p=probs, y=labels: bootstrap_ci(p, y, auc_score, n_boot=N_BOOT), 1)
        sp_boot = _median_seconds(lambda p=probs, y=labels: _scipy_bootstrap(p, y, seed=0), 1)
        out["cases"][name] = {
            "auc_ours_ms": 1e3 * ours_auc,
            "auc_sklearn_ms": 1e3 * sk_auc,
            "auc_abs_diff": abs(auc_score(probs, labels) - _sklearn_auc(probs, labels)),
            "bootstrap_ours_s": ours_boot,
            "bootstrap_scipy_sklearn_s": sp_boot,
            "ci_ours": [ours_ci.low, ours_ci.high],
            "ci_scipy": [float(sp_ci.low), float(sp_ci.high)],
        }
        c = out["cases"][name]
        print(
            f"{name}: AUC {c['auc_ours_ms']:.3f} ms (ours) vs {c['auc_sklearn_ms']:.3f} ms (sklearn), "
            f"|diff| {c['auc_abs_diff']:.1e}; bootstrap x{N_BOOT} {ours_boot:.2f} s vs {sp_boot:.2f} s; "
            f"CI ours [{ours_ci.low:.4f}, {ours_ci.high:.4f}] scipy [{sp_ci.low:.4f}, {sp_ci.high:.4f}]"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args()
    result = run()
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
