"""Sweep helpers and the paired seed bootstrap, on synthetic predictions; decode-once cache on the CXR transform."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from monai.data import get_track_meta
from monai.transforms import Randomizable

from monai_remedis.configs import bundle_parser
from monai_remedis.data import label_fraction, medmnist_datalist
from monai_remedis.evaluation.cache import UntrackedCompose, decode_once, split_deterministic
from monai_remedis.evaluation.report import format_console_table, write_report
from monai_remedis.evaluation.statistics import (
    auc_score,
    label_reduction_factor,
    paired_seed_bootstrap_difference,
)
from monai_remedis.evaluation.sweep import (
    factor_interval,
    headline_lines,
    metric_table,
    paired_comparisons,
    subset_indices,
    sweep_per_class,
)


def _probs(labels: np.ndarray, signal: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    p1 = 1 / (1 + np.exp(-(signal * (2 * labels - 1) + rng.normal(size=labels.size))))
    return np.stack([1 - p1, p1], axis=1)


LABELS = np.array([0, 1] * 100)


def test_subset_indices_are_the_label_fraction_subset() -> None:
    items = [{"label": i % 3, "id": f"x{i}"} for i in range(60)]
    idx = subset_indices(items, 0.2, seed=4)
    assert [items[i] for i in idx] == label_fraction(items, 0.2, seed=4)


def test_paired_seed_bootstrap_identical_models_and_clear_winner() -> None:
    a = [_probs(LABELS, 1.0, s) for s in range(3)]
    same = paired_seed_bootstrap_difference(a, a, LABELS, auc_score, n_boot=200)
    assert same["diff"] == 0 and same["low"] == 0 and same["high"] == 0 and same["p_value"] == 1.0
    strong = [_probs(LABELS, 3.0, s + 10) for s in range(3)]
    win = paired_seed_bootstrap_difference(strong, a, LABELS, auc_score, n_boot=200)
    assert win["low"] > 0 and win["wins"] == 3 and win["p_value"] < 0.05
    assert win["diff"] == pytest.approx(np.mean(win["seed_diffs"]))


def test_paired_seed_bootstrap_with_one_seed_has_the_plain_paired_point() -> None:
    a, b = _probs(LABELS, 1.5, 0), _probs(LABELS, 1.0, 1)
    one = paired_seed_bootstrap_difference([a], [b], LABELS, auc_score, n_boot=100)
    assert one["diff"] == pytest.approx(auc_score(a, LABELS) - auc_score(b, LABELS)) and one["n_seeds"] == 1


def test_paired_seed_bootstrap_rejects_unmatched_seeds() -> None:
    with pytest.raises(ValueError, match="same non-zero number of seeds"):
        paired_seed_bootstrap_difference([_probs(LABELS, 1, 0)], [], LABELS, auc_score)


def test_paired_comparisons_pair_common_seeds_only() -> None:
    probs = {("b", 0.1, 0): _probs(LABELS, 1, 0), ("b", 0.1, 1): _probs(LABELS, 1, 1)}
    probs.update({("r", 0.1, 1): _probs(LABELS, 2, 2), ("r", 1.0, 0): _probs(LABELS, 2, 3)})
    rows = paired_comparisons(probs, LABELS, "b", ["b", "r"], [0.1, 1.0], [0, 1], n_boot=50)
    assert len(rows) == 1 and rows[0]["seeds"] == [1] and rows[0]["init"] == "r" and rows[0]["fraction"] == 0.1


def test_per_class_summary_averages_seeds() -> None:
    probs = {("r", 1.0, s): _probs(LABELS, 2, s) for s in range(2)}
    rows = sweep_per_class(probs, LABELS, ["r"], 1.0)
    assert [r["class"] for r in rows] == [0, 1] and rows[0]["n_seeds"] == 2 and rows[0]["support"] == 100
    assert 0.5 < rows[1]["auc"] <= 1


def test_headline_and_console_table_say_reached_and_not_reached() -> None:
    records = [
        {"init": i, "fraction": f, "seed": s, "auc": auc}
        for i, aucs in {"baseline": (0.6, 0.7, 0.8), "remedis": (0.82, 0.85, 0.9), "scratch": (0.5, 0.55, 0.6)}.items()
        for f, auc in zip((0.1, 0.5, 1.0), aucs, strict=True)
        for s in (0, 1)
    ]
    table = metric_table(records, ["baseline", "remedis", "scratch"], [0.1, 0.5, 1.0], [0, 1])
    assert table["remedis"].shape == (3, 2)
    reduction = label_reduction_factor([0.1, 0.5, 1.0], table, "baseline", n_boot=50)
    lines = headline_lines({}, reduction, [], "baseline", num_train=100, mode="a linear probe")
    text = "\n".join(lines)
    assert "AUC 0.800" in text and "**remedis** matches it with 10% of the labels" in text
    assert "**scratch** does not reach it" in text
    summary = [{"init": r["init"], "fraction": r["fraction"], "n_seeds": 2, "auc_mean": r["auc"]} for r in records[::2]]
    console = format_console_table(summary, reduction)
    assert "label reduction remedis" in console and "not reached" in console


@pytest.mark.parametrize("n_seeds", [1, 3])
def test_a_paired_finding_from_one_seed_says_its_interval_ignores_run_to_run_spread(n_seeds: int) -> None:
    """README's quick look runs one seed: its "significantly better" covers test-image sampling only."""
    paired = [{"init": "remedis", "fraction": 0.01, "low": 0.002, "high": 0.013, "n_seeds": n_seeds}]
    (line,) = headline_lines({}, None, paired, "baseline")
    assert line.startswith("remedis vs baseline: significantly better (95% CI above 0) at 1 of 1 fractions (1%)")
    assert ("One seed per fraction" in line) == (n_seeds == 1), line


def test_a_factor_interval_that_includes_not_reached_says_so_in_every_output(tmp_path: Path) -> None:
    """Only one seed of remedis reaches the baseline's 100%-label AUC (at 10%): the lower bound is "not reached"
    (NaN in the statistics), and the console table, headline and report name it and its share, never "n/a"/"nan"."""
    fractions = [0.1, 0.5, 1.0]
    table = {
        "baseline": np.array([[0.6, 0.6], [0.7, 0.7], [0.8, 0.8]]),
        "remedis": np.array([[0.95, 0.7], [0.75, 0.75], [0.75, 0.75]]),
    }
    reduction = label_reduction_factor(fractions, table, "baseline", n_boot=200)
    remedis = reduction["remedis"]
    assert remedis["reached"] and remedis["low_not_reached"] and not remedis["high_not_reached"]
    share = f"{100 * (1 - remedis['boot_reach_rate']):.0f}% of seed resamples never reach the target"
    summary = [
        {"init": init, "fraction": f, "n_seeds": 2, "auc_mean": float(row.mean())}
        for init, rows in table.items()
        for f, row in zip(fractions, rows, strict=True)
    ]
    outputs = {
        "console": format_console_table(summary, reduction),
        "headline": "\n".join(headline_lines({}, reduction, [], "baseline", num_train=100)),
        "interval": factor_interval(remedis),
        "report.md": write_report(tmp_path, "t", {}, summary=summary, reduction=reduction)
        .read_text()
        .split("## Label-reduction factor")[1]
        .split("\n## ")[0],
    }
    for name, text in outputs.items():
        assert "'not reached'-10x" in text and share in text, (name, text)
        assert "n/a" not in text and "nan" not in text, (name, text)


def test_decode_once_matches_the_full_transform(data_dir: Path) -> None:
    parser = bundle_parser("cxr")
    transform = parser.get_parsed_content("train_transform")
    head, tail = split_deterministic(transform)
    assert [type(t).__name__ for t in head.transforms] == ["EnsureImaged", "ScaleIntensityRanged", "Resized"]
    assert type(tail.transforms[0]).__name__ == "RandFlipd"
    items = medmnist_datalist(data_dir / "medmnist_pneumonia" / "pneumoniamnist.npz", "val", limit=4)
    decoded, cached_tail = decode_once(items, transform)
    before = decoded[0]["image"].clone()
    random_steps = [t for t in tail.transforms if isinstance(t, Randomizable)]  # shared by both pipelines

    def reseed() -> None:
        for i, t in enumerate(random_steps):
            t.set_random_state(seed=100 + i)

    for item, dec in zip(items, decoded, strict=True):
        reseed()
        full = transform(dict(item))["image"]
        reseed()
        assert torch.allclose(full, cached_tail(dict(dec))["image"])
    assert torch.equal(decoded[0]["image"], before)  # the cached item is never modified
    assert decoded[0]["label"] == items[0]["label"] and decoded[0]["id"] == items[0]["id"]


def test_decoded_tail_runs_without_metadata_and_restores_tracking(data_dir: Path) -> None:
    """The training stages' cached tail yields plain tensors; MONAI's global tracking flag is restored after it."""
    parser = bundle_parser("cxr")
    items = medmnist_datalist(data_dir / "medmnist_pneumonia" / "pneumoniamnist.npz", "val", limit=2)
    decoded, tail = decode_once(items, parser.get_parsed_content("ssl_transform"))
    assert isinstance(tail, UntrackedCompose) and get_track_meta()
    views = tail(dict(decoded[0]))
    assert type(views["view_0"]) is torch.Tensor and get_track_meta()
    _, tracked = decode_once(items, parser.get_parsed_content("ssl_transform"), track_meta=True)
    assert not isinstance(tracked, UntrackedCompose)
    with pytest.raises(RuntimeError):
        UntrackedCompose([lambda d: (_ for _ in ()).throw(RuntimeError("boom"))])({})
    assert get_track_meta()  # restored after an error too
    again, same_tail = decode_once(decoded, tail)  # already decoded: nothing to do
    assert again[0]["image"] is decoded[0]["image"] and type(same_tail(again[0])["view_1"]) is torch.Tensor


def test_a_baseline_at_chance_gives_a_warning_not_a_label_reduction_claim() -> None:
    """The bundle once shipped a stage 1 that diverged: its baseline scored AUC 0.41 and REMEDIS '100x'."""
    aucs = {"baseline": (0.36, 0.37, 0.41), "remedis": (0.49, 0.49, 0.56)}
    table = {init: np.array([[a, a] for a in values]) for init, values in aucs.items()}
    reduction = label_reduction_factor([0.01, 0.1, 1.0], table, "baseline", n_boot=20)
    assert reduction["remedis"]["reached"]  # the arithmetic alone would claim a 100x reduction
    text = "\n".join(headline_lines({}, reduction, [], "baseline"))
    assert "**Warning**" in text and "did not learn" in text and "matches it" not in text
    summary = [{"init": i, "fraction": 1.0, "n_seeds": 2, "auc_mean": v[-1]} for i, v in aucs.items()]
    assert "WARNING" in format_console_table(summary, reduction)
