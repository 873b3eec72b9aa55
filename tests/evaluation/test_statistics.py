"""Unit tests of monai_remedis.evaluation.statistics on small synthetic arrays."""

from __future__ import annotations

import csv
import io
import itertools
import math

import numpy as np
import pytest
import torch
from monai.metrics import compute_roc_auc

from monai_remedis.evaluation.statistics import (
    BootstrapCI,
    _Resampler,
    accuracy_score,
    auc_score,
    binary_auc,
    bootstrap_ci,
    classification_metrics,
    expected_calibration_error,
    label_reduction_factor,
    paired_seed_bootstrap_difference,
    summarise_sweep,
)


def _pairwise_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """AUC by counting concordant (1) and tied (1/2) positive/negative pairs one by one."""
    pos, neg = scores[positive], scores[~positive]
    total = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return total / (len(pos) * len(neg))


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _informative_binary(n: int, rng: np.random.Generator, signal: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.integers(0, 2, size=n)
    p1 = 1.0 / (1.0 + np.exp(-(signal * (2 * labels - 1) + rng.normal(size=n))))
    return np.stack([1 - p1, p1], axis=1), labels


# ---------------------------------------------------------------------------------------------------------------- AUC


def test_binary_auc_hand_counted() -> None:
    # positives {0.35, 0.8} vs negatives {0.1, 0.4}: 0.35>0.1, 0.35<0.4, 0.8>0.1, 0.8>0.4 -> 3/4
    scores = np.array([0.1, 0.4, 0.35, 0.8])
    labels = np.array([0, 0, 1, 1])
    assert binary_auc(scores, labels == 1) == pytest.approx(0.75)
    assert auc_score(np.stack([1 - scores, scores], axis=1), labels) == pytest.approx(0.75)
    assert auc_score(scores, labels) == pytest.approx(0.75)  # 1-D = P(class 1)
    # with a tie: positives {0.5, 0.9} vs negatives {0.5, 0.2, 0.7}: 0.5 + 1 + 0 + 3 = 4.5 of 6 pairs
    scores = np.array([0.5, 0.9, 0.5, 0.2, 0.7])
    labels = np.array([1, 1, 0, 0, 0])
    assert binary_auc(scores, labels == 1) == pytest.approx(4.5 / 6)


def test_binary_auc_matches_pair_count_and_monai_with_ties() -> None:
    rng = np.random.default_rng(1)
    scores = np.round(rng.random(300), 1)  # many ties
    labels = (rng.random(300) < 0.3 + 0.4 * scores).astype(int)
    expected = _pairwise_auc(scores, labels == 1)
    assert binary_auc(scores, labels) == pytest.approx(expected, abs=1e-12)
    monai_auc = float(compute_roc_auc(torch.tensor(scores), torch.tensor(labels)))
    assert binary_auc(scores, labels) == pytest.approx(monai_auc)


def test_binary_auc_undefined_for_single_class() -> None:
    assert math.isnan(binary_auc(np.array([0.2, 0.7]), np.array([1, 1])))
    assert math.isnan(auc_score(np.array([[0.8, 0.2], [0.3, 0.7]]), np.array([0, 0])))


def test_multiclass_ovr_auc_matches_pair_count_and_monai() -> None:
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 3, size=120)
    probs = _softmax(rng.normal(size=(120, 3)) + 1.2 * np.eye(3)[labels])
    out = classification_metrics(probs, labels)
    expected = [_pairwise_auc(probs[:, k], labels == k) for k in range(3)]
    np.testing.assert_allclose(out["auc_per_class"], expected, atol=1e-12)
    assert out["auc"] == pytest.approx(np.mean(expected))
    assert auc_score(probs, labels) == pytest.approx(np.mean(expected))
    onehot = torch.nn.functional.one_hot(torch.tensor(labels), 3)
    assert out["auc"] == pytest.approx(float(compute_roc_auc(torch.tensor(probs), onehot, average="macro")))
    assert [c["auc"] for c in out["per_class"]] == out["auc_per_class"]


def test_absent_class_auc_nan_and_excluded_from_macro() -> None:
    rng = np.random.default_rng(3)
    labels = rng.choice([0, 2], size=60)
    probs = _softmax(rng.normal(size=(60, 3)) + np.eye(3)[labels])
    out = classification_metrics(probs, labels)
    assert math.isnan(out["auc_per_class"][1])
    assert out["auc"] == pytest.approx((out["auc_per_class"][0] + out["auc_per_class"][2]) / 2)
    assert auc_score(probs, labels) == pytest.approx(out["auc"])
    assert out["per_class"][1]["support"] == 0 and math.isnan(out["per_class"][1]["recall"])
    assert any("[1] absent" in note for note in out["notes"])


# ---------------------------------------------------------------------------------------- accuracy / confusion / P-R-F


def test_confusion_precision_recall_topk_by_hand() -> None:
    probs = np.array(
        [
            [0.7, 0.2, 0.1],  # true 0, pred 0
            [0.5, 0.4, 0.1],  # true 1, pred 0, 2nd choice 1
            [0.1, 0.8, 0.1],  # true 1, pred 1
            [0.2, 0.3, 0.5],  # true 2, pred 2
            [0.6, 0.1, 0.3],  # true 2, pred 0, 2nd choice 2
            [0.3, 0.6, 0.1],  # true 0, pred 1, 2nd choice 0
        ]
    )
    labels = np.array([0, 1, 1, 2, 2, 0])
    out = classification_metrics(probs, labels, top_k=(1, 2, 5))
    assert out["confusion_matrix"] == [[1, 1, 0], [1, 1, 0], [1, 0, 1]]
    assert out["accuracy"] == pytest.approx(3 / 6) == out["top1_accuracy"]
    assert out["top2_accuracy"] == pytest.approx(1.0)
    assert "top5_accuracy" not in out and any("top5" in n for n in out["notes"])
    assert accuracy_score(probs, labels) == pytest.approx(0.5)
    c0, c1, c2 = out["per_class"]
    assert (c0["precision"], c0["recall"], c0["support"]) == (pytest.approx(1 / 3), pytest.approx(1 / 2), 2)
    assert c0["f1"] == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))
    assert (c1["precision"], c1["recall"]) == (pytest.approx(1 / 2), pytest.approx(1 / 2))
    assert (c2["precision"], c2["recall"], c2["f1"]) == (pytest.approx(1.0), pytest.approx(1 / 2), pytest.approx(2 / 3))
    assert out["macro_f1"] == pytest.approx(np.mean([c0["f1"], c1["f1"], c2["f1"]]))


def test_never_predicted_class_precision_nan() -> None:
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4]])
    out = classification_metrics(probs, np.array([0, 1, 1]))
    assert math.isnan(out["per_class"][1]["precision"]) and out["per_class"][1]["f1"] == 0.0
    assert out["auc"] == pytest.approx(1.0)  # class-1 scores 0.2, 0.4 both above 0.1


# ---------------------------------------------------------------------------------------------------------------- ECE


def test_ece_perfectly_calibrated_is_near_zero() -> None:
    rng = np.random.default_rng(4)
    n = 200_000
    confidence = rng.uniform(0.5, 1.0, size=n)
    correct = rng.random(n) < confidence
    labels = rng.integers(0, 2, size=n)
    predicted = np.where(correct, labels, 1 - labels)
    probs = np.where(predicted[:, None] == np.arange(2), confidence[:, None], 1 - confidence[:, None])
    assert expected_calibration_error(probs, labels) < 0.01


def test_ece_hand_value() -> None:
    # 10 samples at confidence 0.9 with 7 correct (gap 0.2) + 10 at 0.6 with 6 correct (gap 0): ECE = 0.1
    probs = np.array([[0.9, 0.05, 0.05]] * 10 + [[0.2, 0.6, 0.2]] * 10)
    labels = np.array([0] * 7 + [1] * 3 + [1] * 6 + [2] * 4)
    assert expected_calibration_error(probs, labels) == pytest.approx(0.1, abs=1e-6)
    assert classification_metrics(probs, labels)["ece"] == pytest.approx(0.1, abs=1e-6)
    # both confidences in the bin (0.6, 0.667]: accuracy (5 + 7) / 20 = 0.6 vs mean confidence 0.63 -> 0.03
    probs = np.array([[0.61, 0.39]] * 10 + [[0.35, 0.65]] * 10)
    labels = np.array([0] * 5 + [1] * 5 + [1] * 7 + [0] * 3)
    assert expected_calibration_error(probs, labels) == pytest.approx(0.03, abs=1e-6)
    # 50 bins separate them: 0.5 * |0.61 - 0.5| + 0.5 * |0.65 - 0.7| = 0.08
    assert expected_calibration_error(probs, labels, n_bins=50) == pytest.approx(0.08, abs=1e-6)
    # bins are (lo, hi]: a confidence of exactly 0.6 = 9/15 sits in (0.533, 0.6], not with 0.61
    probs = np.array([[0.6, 0.4]] * 10 + [[0.39, 0.61]] * 10)
    labels = np.array([0] * 10 + [0] * 10)  # 0.6 all right (gap 0.4), 0.61 all wrong (gap 0.61)
    assert expected_calibration_error(probs, labels) == pytest.approx(0.5 * 0.4 + 0.5 * 0.61, abs=1e-6)


# ---------------------------------------------------------------------------------------------------------- bootstrap


def test_bootstrap_ci_contains_point_and_narrows_with_n() -> None:
    rng = np.random.default_rng(5)
    widths = []
    for n in (100, 2000):
        probs, labels = _informative_binary(n, rng, signal=0.5)
        ci = bootstrap_ci(probs, labels, auc_score, n_boot=300, seed=0)
        point, low, high = ci
        assert isinstance(ci, BootstrapCI) and ci.n_skipped == 0 and not ci.cluster
        assert low < point < high
        assert point == pytest.approx(auc_score(probs, labels))
        widths.append(high - low)
    assert widths[1] < widths[0] / 2  # ~ 1/sqrt(20) expected


def test_bootstrap_is_reproducible_by_seed() -> None:
    probs, labels = _informative_binary(200, np.random.default_rng(6))
    a = bootstrap_ci(probs, labels, accuracy_score, n_boot=100, seed=3)
    b = bootstrap_ci(probs, labels, accuracy_score, n_boot=100, seed=3)
    c = bootstrap_ci(probs, labels, accuracy_score, n_boot=100, seed=4)
    assert tuple(a) == tuple(b) and tuple(a) != tuple(c)


def test_cluster_bootstrap_wider_with_duplicated_patients() -> None:
    probs, labels = _informative_binary(80, np.random.default_rng(7))
    copies = 10
    probs_dup, labels_dup = np.repeat(probs, copies, axis=0), np.repeat(labels, copies)
    patients = np.repeat(np.arange(80), copies)
    naive = bootstrap_ci(probs_dup, labels_dup, auc_score, n_boot=300)
    cluster = bootstrap_ci(probs_dup, labels_dup, auc_score, n_boot=300, groups=patients)
    assert cluster.cluster and cluster.point == naive.point
    assert (cluster.high - cluster.low) > 2 * (naive.high - naive.low)  # ~ sqrt(10) expected


def test_cluster_resampler_keeps_whole_patients() -> None:
    groups = np.array([5, 5, 5, 9, 2, 2, 7, 7, 7, 7])  # unsorted ids, unequal sizes
    sampler = _Resampler(groups.size, groups, seed=0)
    size_of = {g: int(np.sum(groups == g)) for g in np.unique(groups)}
    for _ in range(50):
        idx = sampler.draw()
        drawn, counts = np.unique(groups[idx], return_counts=True)
        for g, c in zip(drawn, counts, strict=True):
            assert c % size_of[g] == 0
        taken = np.unique(idx)
        assert set(taken) == set(np.flatnonzero(np.isin(groups, drawn)))


def test_bootstrap_skips_undefined_resamples() -> None:
    probs = np.stack([np.linspace(0.9, 0.1, 12), np.linspace(0.1, 0.9, 12)], axis=1)
    labels = np.array([0] * 11 + [1])  # a single positive: ~1/e of resamples have none
    ci = bootstrap_ci(probs, labels, auc_score, n_boot=200)
    assert 30 < ci.n_skipped < 120
    assert ci.point == 1.0 and ci.high == 1.0
    all_undefined = bootstrap_ci(probs, np.zeros(12, dtype=int), auc_score, n_boot=20)
    assert all_undefined.n_skipped == 20 and math.isnan(all_undefined.low) and math.isnan(all_undefined.high)


def test_paired_difference_p_values() -> None:
    rng = np.random.default_rng(8)
    good, labels = _informative_binary(400, rng, signal=2.0)
    noise = rng.random(400)
    weak = np.stack([1 - noise, noise], axis=1)
    better = paired_seed_bootstrap_difference([good], [weak], labels, auc_score, n_boot=500)
    assert better["diff"] > 0.3 and better["low"] > 0
    assert better["p_value"] <= 2 / 501 + 1e-12
    same = paired_seed_bootstrap_difference([good], [good.copy()], labels, auc_score, n_boot=500)
    assert same["diff"] == 0.0 and same["low"] == same["high"] == 0.0 and same["p_value"] == 1.0


def test_paired_difference_similar_models_not_significant() -> None:
    rng = np.random.default_rng(9)
    probs, labels = _informative_binary(300, rng)
    jitter = np.clip(probs[:, 1] + rng.normal(scale=0.01, size=300), 0, 1)
    other = np.stack([1 - jitter, jitter], axis=1)
    res = paired_seed_bootstrap_difference([probs], [other], labels, auc_score, n_boot=300, groups=np.arange(300) // 3)
    assert res["low"] < 0 < res["high"] and res["p_value"] > 0.05 and res["cluster"]


# ------------------------------------------------------------------------------------------------- label reduction


FRACTIONS = [0.01, 0.05, 0.1, 0.5, 1.0]
SEED_OFFSETS = np.array([-0.001, 0.0, 0.001])  # seed spread too small to move any crossing


def _table(means: list[float]) -> np.ndarray:
    return np.asarray(means)[:, None] + SEED_OFFSETS[None, :]


def _sweep() -> dict[str, np.ndarray]:
    return {
        "supervised": _table([0.60, 0.70, 0.75, 0.80, 0.85]),
        "remedis": _table([0.70, 0.80, 0.86, 0.88, 0.90]),
        "never": _table([0.50, 0.60, 0.70, 0.75, 0.80]),
        "early": _table([0.90, 0.91, 0.92, 0.93, 0.94]),
    }


def test_label_reduction_factor_step() -> None:
    res = label_reduction_factor(FRACTIONS, _sweep(), baseline_init="supervised", n_boot=200)
    assert res["remedis"]["target"] == pytest.approx(0.85)
    assert res["remedis"]["method"] == "step" and res["remedis"]["status"] == "reached"
    assert res["remedis"]["fraction"] == 0.1 and res["remedis"]["factor"] == pytest.approx(10.0)
    assert res["remedis"]["low"] == pytest.approx(10.0) and res["remedis"]["high"] == pytest.approx(10.0)
    assert res["supervised"]["factor"] == pytest.approx(1.0)
    never = res["never"]
    assert not never["reached"] and never["status"] == "not_reached"
    assert math.isnan(never["fraction"]) and math.isnan(never["factor"])
    assert never["low_not_reached"] and never["high_not_reached"] and never["boot_reach_rate"] == 0.0
    assert res["early"]["status"] == "reached_at_smallest_fraction" and res["early"]["factor"] == pytest.approx(100)


def test_label_reduction_factor_log_linear_interpolation() -> None:
    res = label_reduction_factor(FRACTIONS, _sweep(), baseline_init="supervised", interpolate=True, n_boot=0)
    # 0.85 lies 5/6 of the way from 0.80 (@5%) to 0.86 (@10%) -> log f = log .05 + 5/6 (log .1 - log .05)
    expected = 0.05 * 2 ** (5 / 6)
    assert res["remedis"]["method"] == "log_linear"
    assert res["remedis"]["fraction"] == pytest.approx(expected)
    assert res["remedis"]["factor"] == pytest.approx(1 / expected)
    assert res["early"]["fraction"] == 0.01  # nothing to interpolate below the smallest fraction
    assert math.isnan(res["never"]["factor"]) and math.isnan(res["remedis"]["low"])


def test_label_reduction_factor_order_target_and_direction() -> None:
    order = [4, 2, 0, 3, 1]
    shuffled = {k: v[order] for k, v in _sweep().items()}
    res = label_reduction_factor([FRACTIONS[i] for i in order], shuffled, baseline_init="supervised", n_boot=0)
    assert res["remedis"]["factor"] == pytest.approx(10.0)
    fixed = label_reduction_factor(FRACTIONS, {"remedis": _sweep()["remedis"]}, "absent", target=0.79, n_boot=0)
    assert fixed["remedis"]["fraction"] == 0.05
    lower_better = {k: 1 - v for k, v in _sweep().items()}
    res = label_reduction_factor(FRACTIONS, lower_better, "supervised", higher_is_better=False, n_boot=0)
    assert res["remedis"]["factor"] == pytest.approx(10.0) and res["remedis"]["target"] == pytest.approx(0.15)
    with pytest.raises(ValueError):
        label_reduction_factor(FRACTIONS, {"remedis": _sweep()["remedis"]}, "supervised")


def test_label_reduction_factor_interval_reflects_seed_noise() -> None:
    rng = np.random.default_rng(10)
    noisy = {k: v + rng.normal(scale=0.03, size=v.shape) for k, v in _sweep().items()}
    res = label_reduction_factor(FRACTIONS, noisy, "supervised", interpolate=True, n_boot=300)["remedis"]
    assert res["low"] < res["high"] and res["low"] <= res["factor"] <= res["high"]


# ------------------------------------------------------------------------------------------------------------ sweep


def test_summarise_sweep() -> None:
    records = [
        {"init": init, "fraction": frac, "seed": seed, "auc": auc, "ece": 0.1 * seed, "tag": "x", "ok": True}
        for init, frac, base in [("supervised", 1.0, 0.8), ("remedis", 0.1, 0.85), ("remedis", 0.01, 0.7)]
        for seed, auc in enumerate([base - 0.01, base, base + 0.01])
    ]
    rows = summarise_sweep(records)
    assert [(r["init"], r["fraction"]) for r in rows] == [("remedis", 0.01), ("remedis", 0.1), ("supervised", 1.0)]
    r = rows[1]
    assert r["n_seeds"] == 3 and r["auc_mean"] == pytest.approx(0.85) and r["auc_std"] == pytest.approx(0.01)
    assert (r["auc_min"], r["auc_max"]) == (pytest.approx(0.84), pytest.approx(0.86))
    assert r["ece_mean"] == pytest.approx(0.1) and r["auc_n"] == 3
    assert not any(k.startswith(("tag", "ok", "seed")) for k in r)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)  # every row has the same keys
    with pytest.raises(ValueError, match="duplicate"):
        summarise_sweep(records + [records[0]])
