"""Statistics for REMEDIS-style evaluation: classification metrics, bootstrap intervals and data-efficiency.

All functions take plain numpy arrays of class probabilities ``(N, K)`` and integer labels ``(N,)``.

* AUC is the Mann-Whitney statistic (ties count one half), vectorised in numpy. It has the same semantics as
  :py:func:`monai.metrics.compute_roc_auc` (checked in the tests) but MONAI's version loops in Python
  (about 12 ms for 5000 samples), which is too slow inside a 1000-resample bootstrap.
* Expected calibration error reuses :py:func:`monai.metrics.calibration_binning` on the max-probability
  confidence and the 0/1 correctness of the top-1 prediction.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from monai.metrics import calibration_binning

__all__ = [
    "BootstrapCI",
    "accuracy_score",
    "auc_score",
    "binary_auc",
    "bootstrap_ci",
    "classification_metrics",
    "expected_calibration_error",
    "label_reduction_factor",
    "paired_seed_bootstrap_difference",
    "summarise_sweep",
]

MetricFn = Callable[[np.ndarray, np.ndarray], float]

# ----------------------------------------------------------------------------------------------------------------------
# input handling
# ----------------------------------------------------------------------------------------------------------------------


def _as_probs_labels(probs: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert inputs to ``(N, K)`` float probabilities and ``(N,)`` int labels.

    A 1-D ``probs`` (or ``(N, 1)``) is read as the probability of class 1 of a binary problem.
    """
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels)
    if p.ndim == 2 and p.shape[1] == 1:
        p = p[:, 0]
    if p.ndim == 1:
        p = np.stack([1.0 - p, p], axis=1)
    if p.ndim != 2:
        raise ValueError(f"probs must have shape (N, K) or (N,), got {np.shape(probs)}.")
    if y.ndim != 1 or y.shape[0] != p.shape[0]:
        raise ValueError(f"labels must have shape ({p.shape[0]},), got {y.shape}.")
    if y.size and not np.all(np.equal(np.mod(y, 1), 0)):
        raise ValueError("labels must be integer class indices.")
    y = y.astype(np.int64)
    if y.size and (y.min() < 0 or y.max() >= p.shape[1]):
        raise ValueError(f"labels must be in [0, {p.shape[1]}), got range [{y.min()}, {y.max()}].")
    return p, y


# ----------------------------------------------------------------------------------------------------------------------
# point metrics
# ----------------------------------------------------------------------------------------------------------------------


def binary_auc(scores: np.ndarray, targets: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for the binary ``targets`` (Mann-Whitney U / (n_pos * n_neg)).

    Tied scores get their average rank, so a tied positive/negative pair counts one half, exactly as in
    :py:func:`monai.metrics.compute_roc_auc` and ``sklearn.metrics.roc_auc_score``
    (``tests/evaluation/test_metrics_against_sklearn.py``). Kept because bootstraps call it thousands of times:
    about 30x faster per call than ``roc_auc_score`` (``benchmarks/bench_metrics.py``).

    Args:
        scores: ``(N,)`` scores, higher meaning more likely positive.
        targets: ``(N,)`` booleans or 0/1.

    Returns:
        The AUC, or NaN when ``targets`` has no positive or no negative (undefined, no warning).
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    t = np.asarray(targets).ravel().astype(bool)
    n_pos = int(t.sum())
    n_neg = t.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    mid_rank = np.cumsum(counts) - (counts - 1) / 2.0  # 1-based average rank of each distinct score
    rank_sum = mid_rank[inverse][t].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _per_class_auc(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    """One-vs-rest AUC of every class column (NaN where the class is absent or is the only class)."""
    return np.array([binary_auc(p[:, k], y == k) for k in range(p.shape[1])], dtype=np.float64)


def _macro_auc(per_class: np.ndarray) -> float:
    """Mean of the defined (finite) per-class AUCs; NaN when none is defined."""
    defined = per_class[np.isfinite(per_class)]
    return float(np.mean(defined)) if defined.size else float("nan")


def auc_score(probs: np.ndarray, labels: np.ndarray) -> float:
    """AUC used as the headline metric: binary AUC of class 1, or macro one-vs-rest AUC for ``K > 2``.

    Classes whose AUC is undefined (absent from ``labels``) are left out of the macro mean.

    Args:
        probs: ``(N, K)`` class probabilities (or ``(N,)`` probability of class 1).
        labels: ``(N,)`` integer labels.

    Returns:
        The AUC, NaN when undefined (e.g. a single class in ``labels``); usable as a bootstrap ``metric_fn``.
    """
    p, y = _as_probs_labels(probs, labels)
    if p.shape[1] == 2:
        return binary_auc(p[:, 1], y == 1)
    return _macro_auc(_per_class_auc(p, y))


def accuracy_score(probs: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy (argmax, ties to the lowest class index); NaN for an empty set."""
    p, y = _as_probs_labels(probs, labels)
    return float(np.mean(p.argmax(axis=1) == y)) if y.size else float("nan")


def _top_k_accuracy(p: np.ndarray, y: np.ndarray, k: int) -> float:
    """Fraction of samples whose label is among the ``k`` highest probabilities (stable: lower index wins ties)."""
    top = np.argsort(-p, axis=1, kind="stable")[:, :k]
    return float(np.mean(np.any(top == y[:, None], axis=1))) if y.size else float("nan")


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> float:
    """Expected calibration error (Guo et al. 2017) of the top-1 prediction.

    Confidence is the max class probability, correctness is ``argmax == label``. Confidences are put in
    ``n_bins`` equal-width bins ``(lo, hi]`` over [0, 1] by :py:func:`monai.metrics.calibration_binning`
    (``right=False`` maps a value equal to an edge into the lower bin; computation in float32), and
    ``ECE = sum_b n_b / N * |mean confidence_b - accuracy_b|``.

    Args:
        probs: ``(N, K)`` class probabilities (or ``(N,)`` probability of class 1).
        labels: ``(N,)`` integer labels.
        n_bins: number of equal-width bins.

    Returns:
        The ECE in [0, 1]; NaN for an empty set.
    """
    p, y = _as_probs_labels(probs, labels)
    if y.size == 0:
        return float("nan")
    confidence = torch.as_tensor(p.max(axis=1), dtype=torch.float32).view(1, 1, -1)
    correct = torch.as_tensor(p.argmax(axis=1) == y, dtype=torch.float32).view(1, 1, -1)
    mean_p, mean_gt, counts = calibration_binning(confidence, correct, num_bins=n_bins, right=False)
    gap = torch.nan_to_num(torch.abs(mean_p - mean_gt), nan=0.0)
    return float((gap * counts).sum() / counts.sum())


def _per_class_prf(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and F1 per class from a confusion matrix (rows: true, columns: predicted).

    Precision is NaN for a class never predicted, recall NaN for a class never present, and
    F1 = 2TP / (2TP + FP + FN) is NaN only when the class is neither present nor predicted.
    """
    tp = np.diag(confusion).astype(np.float64)
    predicted = confusion.sum(axis=0).astype(np.float64)
    support = confusion.sum(axis=1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, tp / predicted, np.nan)
        recall = np.where(support > 0, tp / support, np.nan)
        f1_denom = predicted + support  # = 2TP + FP + FN
        f1 = np.where(f1_denom > 0, 2.0 * tp / f1_denom, np.nan)
    return precision, recall, f1


def classification_metrics(
    probs: np.ndarray, labels: np.ndarray, top_k: Sequence[int] = (1, 2), n_bins: int = 15
) -> dict[str, Any]:
    """Standard classification report for one model on one test set.

    Args:
        probs: ``(N, K)`` class probabilities (or ``(N,)`` probability of class 1 for a binary task).
        labels: ``(N,)`` integer labels in ``[0, K)``.
        top_k: the ``k`` values for ``top{k}_accuracy``; values larger than ``K`` are skipped with a note.
        n_bins: number of equal-width confidence bins of the ECE.

    Returns:
        A JSON-serialisable dict with keys

        - ``n_samples``, ``n_classes``;
        - ``auc``: binary (``K == 2``): AUC of class 1; multi-class: macro mean of the defined one-vs-rest AUCs;
        - ``auc_per_class``: one-vs-rest AUC per class (NaN for a class absent from ``labels``);
        - ``accuracy`` and ``top{k}_accuracy`` for each ``k`` in ``top_k``;
        - ``per_class``: list of ``{"class", "precision", "recall", "f1", "support", "auc"}``;
        - ``macro_f1``: mean F1 over the classes present in ``labels``;
        - ``confusion_matrix``: list of lists, rows = true class, columns = predicted class;
        - ``ece``: expected calibration error (see :py:func:`expected_calibration_error`);
        - ``notes``: human-readable notes about undefined quantities.
    """
    p, y = _as_probs_labels(probs, labels)
    n, k_classes = p.shape
    notes: list[str] = []
    pred = p.argmax(axis=1)
    confusion = np.zeros((k_classes, k_classes), dtype=np.int64)
    np.add.at(confusion, (y, pred), 1)
    support = confusion.sum(axis=1)
    precision, recall, f1 = _per_class_prf(confusion)

    per_class_auc = _per_class_auc(p, y)
    absent = [int(c) for c in np.flatnonzero(support == 0)]
    if absent:
        notes.append(f"classes {absent} absent from labels: their AUC/recall are NaN and excluded from macro means")
    never_predicted = [int(c) for c in np.flatnonzero(confusion.sum(axis=0) == 0)]
    if never_predicted:
        notes.append(f"classes {never_predicted} never predicted: their precision is NaN")
    auc = float(per_class_auc[1]) if k_classes == 2 else _macro_auc(per_class_auc)
    if not np.isfinite(auc):
        notes.append("AUC undefined: labels contain a single class")

    out: dict[str, Any] = {"n_samples": int(n), "n_classes": int(k_classes), "auc": float(auc)}
    out["auc_per_class"] = [float(a) for a in per_class_auc]
    out["accuracy"] = float(np.mean(pred == y)) if n else float("nan")
    for k in top_k:
        if k > k_classes:
            notes.append(f"top{k}_accuracy skipped: only {k_classes} classes")
            continue
        out[f"top{k}_accuracy"] = _top_k_accuracy(p, y, int(k))
    out["per_class"] = [
        {
            "class": c,
            "precision": float(precision[c]),
            "recall": float(recall[c]),
            "f1": float(f1[c]),
            "support": int(support[c]),
            "auc": float(per_class_auc[c]),
        }
        for c in range(k_classes)
    ]
    present = support > 0
    out["macro_f1"] = float(np.mean(f1[present])) if present.any() else float("nan")
    out["confusion_matrix"] = confusion.tolist()
    out["ece"] = expected_calibration_error(p, y, n_bins=n_bins)
    out["notes"] = notes
    return out


# ----------------------------------------------------------------------------------------------------------------------
# bootstrap
# ----------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BootstrapCI:
    """Result of :py:func:`bootstrap_ci`; unpacks as ``point, low, high = bootstrap_ci(...)``.

    Attributes:
        point: metric on the full (not resampled) data.
        low: lower percentile bound (``alpha / 2``), NaN when no resample gave a defined metric.
        high: upper percentile bound (``1 - alpha / 2``).
        n_boot: number of resamples drawn.
        n_skipped: resamples where the metric was undefined (non-finite) and that were left out.
        alpha: the interval is ``1 - alpha``.
        cluster: True when patients (``groups``) were resampled rather than images.
    """

    point: float
    low: float
    high: float
    n_boot: int
    n_skipped: int
    alpha: float
    cluster: bool

    def __iter__(self) -> Iterator[float]:
        return iter((self.point, self.low, self.high))

    def as_dict(self) -> dict[str, Any]:
        """All fields as a plain dict."""
        return asdict(self)


class _Resampler:
    """Draws bootstrap index sets: images with replacement, or whole patients (cluster bootstrap)."""

    def __init__(self, n: int, groups: np.ndarray | None, seed: int) -> None:
        self.n = n
        self.rng = np.random.default_rng(seed)
        self.cluster = groups is not None
        if groups is not None:
            g = np.asarray(groups)
            if g.shape != (n,):
                raise ValueError(f"groups must have shape ({n},), got {g.shape}.")
            _, inverse, counts = np.unique(g, return_inverse=True, return_counts=True)
            self.order = np.argsort(inverse, kind="stable")  # sample indices sorted by group
            self.counts = counts
            self.starts = np.concatenate([[0], np.cumsum(counts)[:-1]])

    def draw(self) -> np.ndarray:
        """One resample of sample indices."""
        if not self.cluster:
            return self.rng.integers(0, self.n, size=self.n)
        chosen = self.rng.integers(0, self.counts.size, size=self.counts.size)
        lengths = self.counts[chosen]
        # positions within the group-sorted order: start of each chosen group + 0..len-1
        offsets = np.repeat(self.starts[chosen] - np.cumsum(lengths) + lengths, lengths)
        return self.order[offsets + np.arange(lengths.sum())]


def _percentiles(values: np.ndarray, alpha: float) -> tuple[float, float]:
    """Percentile interval of the finite ``values``; NaNs when there are none."""
    if values.size == 0:
        return float("nan"), float("nan")
    low, high = np.quantile(values, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)


def bootstrap_ci(
    probs: np.ndarray,
    labels: np.ndarray,
    metric_fn: MetricFn,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    groups: np.ndarray | None = None,
) -> BootstrapCI:
    """Percentile bootstrap confidence interval of ``metric_fn(probs, labels)``.

    Args:
        probs: ``(N, ...)`` predictions passed to ``metric_fn`` (rows are resampled).
        labels: ``(N,)`` labels.
        metric_fn: ``f(probs, labels) -> float``, e.g. :py:func:`auc_score`; a non-finite return marks the
            resample as undefined (e.g. only one class drawn) and it is skipped.
        n_boot: number of resamples.
        alpha: ``1 - alpha`` interval, bounds at the ``alpha/2`` and ``1 - alpha/2`` percentiles (linear
            interpolation, ``numpy.quantile`` default).
        seed: seed of the ``numpy`` generator.
        groups: optional ``(N,)`` patient ids. When given, patients are drawn with replacement and all their
            images are kept together (cluster bootstrap), so correlated images do not shrink the interval.

    Returns:
        :py:class:`BootstrapCI` (unpacks to ``(point, low, high)``; ``n_skipped`` counts undefined resamples).
    """
    p = np.asarray(probs)
    y = np.asarray(labels)
    if p.shape[0] != y.shape[0]:
        raise ValueError(f"probs and labels must have the same length, got {p.shape[0]} and {y.shape[0]}.")
    point = float(metric_fn(p, y))
    resampler = _Resampler(y.shape[0], groups, seed)
    stats = np.array([metric_fn(p[idx], y[idx]) for idx in (resampler.draw() for _ in range(n_boot))], dtype=float)
    finite = stats[np.isfinite(stats)]
    low, high = _percentiles(finite, alpha)
    return BootstrapCI(point, low, high, int(n_boot), int(n_boot - finite.size), float(alpha), groups is not None)


def paired_seed_bootstrap_difference(
    probs_a: Sequence[np.ndarray],
    probs_b: Sequence[np.ndarray],
    labels: np.ndarray,
    metric_fn: MetricFn,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    groups: np.ndarray | None = None,
) -> dict[str, Any]:
    """Paired bootstrap of the seed-mean difference ``mean_s metric(a_s) - mean_s metric(b_s)`` on one test set.

    ``probs_a[s]`` and ``probs_b[s]`` are the predictions of two inits trained with the same seed ``s`` (in a
    label-fraction sweep: on the same labelled subset), scored on the same test images. Each replicate resamples
    the test images (or patients, with ``groups``) once for every model *and* the seed pairs with replacement, so
    the interval covers both test-set sampling and seed-to-seed training variation, while the pairing (same
    images, same labelled subset) cancels what the two inits share. With one seed it is the plain paired bootstrap of
    two models on one test set. The two-sided p-value inverts the percentile interval:
    ``p = min(1, 2 * min((1 + #{d* <= 0}) / (1 + B), (1 + #{d* >= 0}) / (1 + B)))`` over the ``B`` defined
    replicate differences ``d*``; identical models give ``p = 1``, and the smallest reachable value is ``2 / (B + 1)``.

    Args:
        probs_a: per-seed ``(N, ...)`` predictions of init A.
        probs_b: per-seed predictions of init B, same seeds in the same order.
        labels: ``(N,)`` labels.
        metric_fn: ``f(probs, labels) -> float``; replicates with a non-finite value are skipped.
        n_boot: number of replicates.
        alpha: ``1 - alpha`` percentile interval.
        seed: seed of the ``numpy`` generator.
        groups: optional ``(N,)`` patient ids for a cluster bootstrap of the test set.

    Returns:
        dict with ``diff`` (seed-mean A - B on the full test set), ``low``, ``high``, ``p_value``, ``metric_a`` and
        ``metric_b`` (seed means), ``seed_diffs`` (per-seed differences), ``n_seeds``, ``wins`` (seeds with
        A > B), ``n_boot``, ``n_skipped`` and ``cluster``.

    Raises:
        ValueError: different numbers of seeds, no seed, or lengths that do not match ``labels``.
    """
    y = np.asarray(labels)
    pa = [np.asarray(p) for p in probs_a]
    pb = [np.asarray(p) for p in probs_b]
    if len(pa) != len(pb) or not pa:
        raise ValueError(f"need the same non-zero number of seeds for A and B, got {len(pa)} and {len(pb)}.")
    if any(p.shape[0] != y.shape[0] for p in (*pa, *pb)):
        raise ValueError("every prediction array must have one row per label.")
    metric_a = np.array([metric_fn(p, y) for p in pa], dtype=float)
    metric_b = np.array([metric_fn(p, y) for p in pb], dtype=float)
    seed_diffs = metric_a - metric_b
    resampler = _Resampler(y.shape[0], groups, seed)
    n_seeds = len(pa)
    diffs = np.empty(n_boot, dtype=float)
    for i in range(n_boot):
        idx = resampler.draw()
        pairs = resampler.rng.integers(0, n_seeds, size=n_seeds)
        per_seed = {s: metric_fn(pa[s][idx], y[idx]) - metric_fn(pb[s][idx], y[idx]) for s in set(pairs.tolist())}
        diffs[i] = float(np.mean([per_seed[s] for s in pairs]))
    finite = diffs[np.isfinite(diffs)]
    low, high = _percentiles(finite, alpha)
    if finite.size:
        n_le, n_ge = np.sum(finite <= 0), np.sum(finite >= 0)
        p_value = min(1.0, 2.0 * min(n_le + 1, n_ge + 1) / (finite.size + 1))
    else:
        p_value = float("nan")
    return {
        "diff": float(np.mean(seed_diffs)),
        "low": low,
        "high": high,
        "p_value": float(p_value),
        "metric_a": float(np.mean(metric_a)),
        "metric_b": float(np.mean(metric_b)),
        "seed_diffs": [float(d) for d in seed_diffs],
        "n_seeds": int(n_seeds),
        "wins": int(np.sum(seed_diffs > 0)),
        "n_boot": int(n_boot),
        "n_skipped": int(n_boot - finite.size),
        "cluster": groups is not None,
    }


# ----------------------------------------------------------------------------------------------------------------------
# data efficiency
# ----------------------------------------------------------------------------------------------------------------------


def _crossing_fraction(fractions: np.ndarray, means: np.ndarray, target: float, interpolate: bool) -> tuple[float, int]:
    """Smallest fraction whose mean reaches ``target`` (higher is better), and its index (-1: not reached).

    Fractions with a NaN mean are ignored. With ``interpolate``, the crossing is placed by linear
    interpolation in log-fraction between the first reaching fraction and the defined fraction before it.
    """
    valid = np.flatnonzero(np.isfinite(means))
    reached = valid[means[valid] >= target]
    if reached.size == 0:
        return float("nan"), -1
    i = int(reached[0])
    before = valid[valid < i]
    if not interpolate or before.size == 0:
        return float(fractions[i]), i
    j = int(before[-1])  # means[j] < target because i is the first reaching fraction
    t = (target - means[j]) / (means[i] - means[j])
    log_f = math.log(fractions[j]) + t * (math.log(fractions[i]) - math.log(fractions[j]))
    return float(math.exp(log_f)), i


def _resample_seed_means(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per-fraction mean over seeds resampled with replacement (independently for every fraction)."""
    n_fractions, n_seeds = values.shape
    cols = rng.integers(0, n_seeds, size=(n_fractions, n_seeds))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows stay NaN
        return np.nanmean(np.take_along_axis(values, cols, axis=1), axis=1)


def _status(index: int) -> str:
    """Status string of a crossing index."""
    if index < 0:
        return "not_reached"
    return "reached_at_smallest_fraction" if index == 0 else "reached"


def _nan_mean_rows(values: np.ndarray) -> np.ndarray:
    """Mean over seeds (columns), NaN-aware and silent for all-NaN rows."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis=1)


def label_reduction_factor(
    fractions: Sequence[float],
    metric_by_fraction_seeds: Mapping[str, Any],
    baseline_init: str,
    target: float | None = None,
    interpolate: bool = False,
    higher_is_better: bool = True,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """How many times fewer labels each initialisation needs to match the baseline trained on all labels.

    The target is the baseline's seed-mean metric at the largest fraction (normally 1.0 = 100 %), unless
    ``target`` is given. For each init, the crossing fraction is the smallest fraction whose seed-mean metric
    is ``>= target`` (literally the smallest, even if a larger fraction dips below again). ``method`` is
    ``"step"`` (the grid fraction itself) or, with ``interpolate=True``, ``"log_linear"`` (linear interpolation
    of the seed-mean metric in log-fraction between the previous grid fraction and the reaching one).
    ``factor = reference_fraction / fraction`` with ``reference_fraction`` the largest fraction, i.e.
    ``1 / fraction`` when the largest fraction is 1.0 (0.1 -> 10x).

    The interval bootstraps seeds: in each replicate the seed columns of every fraction row (of every init,
    and of the baseline row giving the target unless ``target`` is fixed) are resampled with replacement,
    and the same resampled target is used for all inits. A replicate that does not reach the target ranks
    below every reached one; a percentile bound that falls on such replicates is NaN and flagged
    (``low_not_reached`` / ``high_not_reached``). Percentiles use ``method="inverted_cdf"`` (an actual replicate
    value, no interpolation between "not reached" and a factor). NaN entries (missing runs) are ignored in
    seed means.

    Args:
        fractions: ``(F,)`` label fractions in (0, 1], any order.
        metric_by_fraction_seeds: init name -> ``(F, S)`` array of the metric per fraction and seed (``S`` may
            differ between inits).
        baseline_init: the key of the supervised baseline, whose largest-fraction mean defines the target.
        target: fixed target metric instead of the baseline's (then the baseline is not needed).
        interpolate: use log-linear interpolation instead of the grid fraction.
        higher_is_better: set False for metrics where lower is better (e.g. ECE); compared on the negated metric.
        n_boot: number of seed-bootstrap replicates (0 disables the interval).
        alpha: ``1 - alpha`` interval.
        seed: seed of the ``numpy`` generator.

    Returns:
        init -> dict with ``target``, ``reference_fraction``, ``method``, ``reached`` (bool), ``status``
        (``"reached"``, ``"reached_at_smallest_fraction"`` (factor is then a lower bound) or ``"not_reached"``),
        ``fraction`` and ``factor`` (NaN when not reached), ``low``, ``high``, ``low_not_reached``,
        ``high_not_reached``, ``boot_reach_rate`` (share of replicates reaching the target), ``n_seeds``,
        ``n_boot``, ``fractions`` and ``mean_by_fraction`` (sorted by fraction).
    """
    f = np.asarray(fractions, dtype=np.float64)
    if f.ndim != 1 or f.size == 0 or np.any(f <= 0):
        raise ValueError(f"fractions must be a non-empty 1-D sequence of positive values, got {fractions}.")
    order = np.argsort(f)
    f = f[order]
    sign = 1.0 if higher_is_better else -1.0
    tables: dict[str, np.ndarray] = {}
    for init, table in metric_by_fraction_seeds.items():
        values = np.asarray(table, dtype=np.float64)
        if values.ndim == 1:
            values = values[:, None]
        if values.ndim != 2 or values.shape[0] != f.size:
            raise ValueError(f"{init!r}: expected shape ({f.size}, n_seeds), got {values.shape}.")
        tables[init] = sign * values[order]
    if target is None and baseline_init not in tables:
        raise ValueError(f"baseline_init {baseline_init!r} not in {sorted(tables)} and no target given.")

    def target_of(means_by_init: Mapping[str, np.ndarray]) -> float:
        return sign * target if target is not None else float(means_by_init[baseline_init][-1])

    means = {init: _nan_mean_rows(v) for init, v in tables.items()}
    point_target = target_of(means)
    reference = float(f[-1])

    rng = np.random.default_rng(seed)
    boot = {init: np.full(n_boot, np.nan) for init in tables}
    for b in range(n_boot):
        boot_means = {init: _resample_seed_means(v, rng) for init, v in tables.items()}
        boot_target = target_of(boot_means)
        for init, m in boot_means.items():
            frac, _ = _crossing_fraction(f, m, boot_target, interpolate)
            boot[init][b] = reference / frac if np.isfinite(frac) else 0.0  # 0.0 ranks "not reached" lowest

    results: dict[str, dict[str, Any]] = {}
    for init, m in means.items():
        frac, index = _crossing_fraction(f, m, point_target, interpolate)
        low = high = float("nan")
        low_nr = high_nr = False
        if n_boot > 0:
            low, high = (float(q) for q in np.quantile(boot[init], [alpha / 2, 1 - alpha / 2], method="inverted_cdf"))
            low_nr, high_nr = low == 0.0, high == 0.0
            low, high = (float("nan") if low_nr else low), (float("nan") if high_nr else high)
        results[init] = {
            "init": init,
            "target": sign * point_target,
            "reference_fraction": reference,
            "method": "log_linear" if interpolate else "step",
            "reached": index >= 0,
            "status": _status(index),
            "fraction": frac,
            "factor": reference / frac if index >= 0 else float("nan"),
            "low": low,
            "high": high,
            "low_not_reached": bool(low_nr),
            "high_not_reached": bool(high_nr),
            "boot_reach_rate": float(np.mean(boot[init] > 0)) if n_boot > 0 else float("nan"),
            "n_seeds": int(tables[init].shape[1]),
            "n_boot": int(n_boot),
            "fractions": f.tolist(),
            "mean_by_fraction": (sign * m).tolist(),
        }
    return results


# ----------------------------------------------------------------------------------------------------------------------
# sweep tables
# ----------------------------------------------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    """True for real numbers (python or numpy scalars), False for bools and everything else."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _metric_keys(records: Sequence[Mapping[str, Any]], exclude: set[str]) -> list[str]:
    """Keys (first-seen order) whose values are numbers (or None) in every record that has them."""
    keys: list[str] = []
    for rec in records:
        keys.extend(k for k in rec if k not in exclude and k not in keys)
    return [k for k in keys if all(_is_number(r[k]) or r[k] is None for r in records if k in r)]


def summarise_sweep(
    records: Sequence[Mapping[str, Any]],
    metrics: Sequence[str] | None = None,
    group_keys: Sequence[str] = ("init", "fraction"),
    seed_key: str = "seed",
) -> list[dict[str, Any]]:
    """Aggregate per-seed results of a data-efficiency sweep into one row per ``(init, fraction)``.

    Args:
        records: e.g. ``[{"init": "remedis", "fraction": 0.1, "seed": 0, "auc": 0.91, ...}, ...]``.
        metrics: metric keys to summarise; default: every numeric key except ``group_keys`` and ``seed_key``.
        group_keys: keys defining a row.
        seed_key: key of the seed; a repeated seed within a group raises ``ValueError``.

    Returns:
        Rows sorted by ``group_keys``, all with the same keys (ready for ``csv.DictWriter``): the group keys,
        ``n_seeds`` and, for each metric ``m``, ``m_mean``, ``m_std`` (sample std, ``ddof=1``; NaN with one
        seed), ``m_min``, ``m_max`` and ``m_n`` (number of finite values). Missing or None values count as NaN
        and are ignored.
    """
    if not records:
        return []
    exclude = {*group_keys, seed_key}
    names = list(metrics) if metrics is not None else _metric_keys(records, exclude)
    groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for rec in records:
        missing = [k for k in group_keys if k not in rec]
        if missing:
            raise ValueError(f"record {dict(rec)} lacks group keys {missing}.")
        groups.setdefault(tuple(rec[k] for k in group_keys), []).append(rec)
    rows = []
    for key in sorted(groups, key=_sort_key):
        members = groups[key]
        seeds = [r[seed_key] for r in members if seed_key in r]
        row: dict[str, Any] = dict(zip(group_keys, key, strict=True))
        if len(seeds) != len(set(seeds)):
            raise ValueError(f"duplicate {seed_key} values {seeds} for {row}.")
        row["n_seeds"] = len(members)
        for name in names:
            row.update(_describe(name, [r.get(name) for r in members]))
        rows.append(row)
    return rows


def _sort_key(key: tuple[Any, ...]) -> tuple[tuple[int, Any], ...]:
    """Sort numbers numerically before anything else, which is sorted by its string."""
    return tuple((0, float(v)) if _is_number(v) else (1, str(v)) for v in key)


def _describe(name: str, values: list[Any]) -> dict[str, float | int]:
    """``{name}_mean/std/min/max/n`` of the finite values (NaN when there are none)."""
    v = np.array([np.nan if x is None else float(x) for x in values], dtype=np.float64)
    v = v[np.isfinite(v)]
    nan = float("nan")
    return {
        f"{name}_mean": float(v.mean()) if v.size else nan,
        f"{name}_std": float(v.std(ddof=1)) if v.size > 1 else nan,
        f"{name}_min": float(v.min()) if v.size else nan,
        f"{name}_max": float(v.max()) if v.size else nan,
        f"{name}_n": int(v.size),
    }
