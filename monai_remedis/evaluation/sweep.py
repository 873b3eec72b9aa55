"""Pure helpers of the data-efficiency sweep: label subsets, paired comparisons, per-class summaries, headlines.

The stage (:class:`monai_remedis.stages.EvaluateStage`) trains and predicts; these functions only turn per-run
predictions and records into statistics and sentences, so they are tested on synthetic numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from monai_remedis.data.fractions import label_fraction
from monai_remedis.evaluation.statistics import (
    auc_score,
    classification_metrics,
    paired_seed_bootstrap_difference,
)

__all__ = [
    "CHANCE_AUC_MARGIN",
    "RunKey",
    "headline_lines",
    "metric_table",
    "paired_comparisons",
    "subset_indices",
    "sweep_per_class",
    "uninformative_target",
]

RunKey = tuple[str, float, int]
"""``(init, fraction, seed)`` of one sweep run."""


def subset_indices(datalist: Sequence[Mapping[str, Any]], fraction: float, seed: int) -> np.ndarray:
    """Indices of the stratified label subset :func:`~monai_remedis.data.fractions.label_fraction` keeps.

    The same ``(fraction, seed)`` gives the same images in the fine-tune and the linear-probe paths, and for
    every init: runs with the same seed are paired.
    """
    keyed = [{"label": item.get("label"), "id": item.get("id", i), "_index": i} for i, item in enumerate(datalist)]
    return np.array([item["_index"] for item in label_fraction(keyed, fraction, seed)], dtype=np.int64)


def metric_table(
    records: Sequence[Mapping[str, Any]],
    inits: Sequence[str],
    fractions: Sequence[float],
    seeds: Sequence[int],
    metric: str = "auc",
) -> dict[str, np.ndarray]:
    """init -> ``(F, S)`` array of ``metric`` (NaN for a missing run), the input of the label-reduction factor."""
    by_key = {(r["init"], float(r["fraction"]), int(r["seed"])): r.get(metric) for r in records}

    def value(key: tuple[str, float, int]) -> float:
        v = by_key.get(key)
        return math.nan if v is None else float(v)

    return {
        init: np.array([[value((init, float(f), int(s))) for s in seeds] for f in fractions], dtype=float)
        for init in inits
    }


def paired_comparisons(
    probs: Mapping[RunKey, np.ndarray],
    labels: np.ndarray,
    baseline: str,
    inits: Sequence[str],
    fractions: Sequence[float],
    seeds: Sequence[int],
    n_boot: int = 500,
    groups: np.ndarray | None = None,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Each init against ``baseline`` at every fraction, by :func:`paired_seed_bootstrap_difference` on AUC.

    Only seeds for which both runs have predictions are paired; a fraction without any common seed is skipped.

    Args:
        probs: ``(init, fraction, seed)`` -> test-set probabilities ``(N, K)``.
        labels: ``(N,)`` test labels.
        baseline: the reference init.
        inits: inits to compare (the baseline itself is skipped).
        fractions: label fractions.
        seeds: seeds.
        n_boot: bootstrap replicates.
        groups: ``(N,)`` patient ids for a cluster bootstrap, or None.
        seed: seed of the bootstrap generator.

    Returns:
        rows with ``init``, ``baseline``, ``fraction``, ``seeds`` and the fields of
        :func:`paired_seed_bootstrap_difference`.
    """
    rows = []
    for init in inits:
        if init == baseline:
            continue
        for f in fractions:
            common = [s for s in seeds if (init, f, s) in probs and (baseline, f, s) in probs]
            if not common:
                continue
            result = paired_seed_bootstrap_difference(
                [probs[(init, f, s)] for s in common],
                [probs[(baseline, f, s)] for s in common],
                labels,
                auc_score,
                n_boot=n_boot,
                groups=groups,
                seed=seed,
            )
            rows.append({"init": init, "baseline": baseline, "fraction": f, "seeds": common, **result})
    return rows


def sweep_per_class(
    probs: Mapping[RunKey, np.ndarray], labels: np.ndarray, inits: Sequence[str], fraction: float
) -> list[dict[str, Any]]:
    """Per-class precision/recall/F1/AUC of each init at ``fraction``, averaged over its seeds (NaN-aware).

    Returns:
        rows ``{"init", "class", "support", "precision", "recall", "f1", "auc", "n_seeds"}``.
    """
    rows = []
    for init in inits:
        runs = [p for (i, f, _), p in sorted(probs.items(), key=lambda kv: kv[0][2]) if i == init and f == fraction]
        if not runs:
            continue
        per_seed = [classification_metrics(p, labels)["per_class"] for p in runs]
        for c, first in enumerate(per_seed[0]):
            row: dict[str, Any] = {"init": init, "class": c, "support": first["support"], "n_seeds": len(runs)}
            for key in ("precision", "recall", "f1", "auc"):
                values = np.array([seed_rows[c][key] for seed_rows in per_seed], dtype=float)
                row[key] = float(np.mean(values[np.isfinite(values)])) if np.isfinite(values).any() else math.nan
            rows.append(row)
    return rows


def _pct(fraction: float) -> str:
    return f"{100 * fraction:.3g}%"


def factor_interval(reduction: Mapping[str, Any]) -> str:
    """The seed-bootstrap 95% interval of one init's label-reduction factor, in words a reader can act on.

    A bound that falls on replicates that never reach the target is "not reached" (the statistics give NaN there),
    and the share of such replicates is named, so the interval never reads as a number that was not measured.
    Callers put "95% CI" (over seeds) in front.

    Example:
        >>> factor_interval({"low": 3.0, "high": 10.0, "low_not_reached": False, "high_not_reached": False})
        '3-10x'
        >>> factor_interval({"low": float("nan"), "high": 10.0, "low_not_reached": True, "boot_reach_rate": 0.7})
        "'not reached'-10x; 30% of seed resamples never reach the target"
    """
    never = f"{100 * (1 - reduction.get('boot_reach_rate', math.nan)):.0f}% of seed resamples never reach the target"
    if reduction.get("high_not_reached"):
        return f"'not reached'; {never}"
    if reduction.get("low_not_reached"):
        return f"'not reached'-{reduction.get('high', math.nan):.3g}x; {never}"
    return f"{reduction.get('low', math.nan):.3g}-{reduction.get('high', math.nan):.3g}x"


CHANCE_AUC_MARGIN = 0.55
"""A baseline whose 100%-label AUC is below this did not learn: label-reduction factors against it mean nothing."""


def uninformative_target(reduction: Mapping[str, Mapping[str, Any]] | None, baseline: str) -> str | None:
    """A warning when the label-reduction target (the baseline's 100%-label AUC) is at chance, else None.

    Matching a baseline that learnt nothing is no evidence for an init; reports and the console say so instead of
    quoting factors.

    Example:
        >>> uninformative_target({"baseline": {"target": 0.41}}, "baseline").startswith("The baseline init")
        True
        >>> uninformative_target({"baseline": {"target": 0.9}}, "baseline") is None
        True
    """
    if not reduction:
        return None
    target = next(iter(reduction.values())).get("target")
    if target is None or not np.isfinite(target) or target >= CHANCE_AUC_MARGIN:
        return None
    return (
        f"The {baseline} init reaches only AUC {target:.3f} with 100% of the labels, at chance level (0.5): it did "
        "not learn, so label-reduction factors against it mean nothing. Check that stage's logs (learning rate, "
        "labels, a diverged pretraining)."
    )


SINGLE_SEED_CAVEAT = (
    " One seed per fraction: these intervals cover the test images only, not the spread between training runs, so"
    " they are not evidence that one init is better; run 3 or more `sweep_seeds` for that."
)
"""Appended to a paired finding made from a single seed (e.g. README's quick look, ``--sweep_seeds "[0]"``)."""


def headline_lines(
    evaluations: Mapping[str, Mapping[str, Any]],
    reduction: Mapping[str, Mapping[str, Any]] | None,
    paired: Sequence[Mapping[str, Any]] | None,
    baseline: str,
    num_train: int | None = None,
    mode: str = "",
) -> list[str]:
    """Plain-language key findings for the report: zero-shot results, label reduction, paired wins.

    Args:
        evaluations: set name -> ``{"metrics", "auc_ci"?}``.
        reduction: output of :func:`~monai_remedis.evaluation.statistics.label_reduction_factor`.
        paired: output of :func:`paired_comparisons`.
        baseline: the baseline init's name.
        num_train: labelled training images at the target site (100%).
        mode: how the sweep trained (``fine-tuning``/``linear probe``).

    Returns:
        sentences (markdown).
    """
    lines = []
    for name, ev in evaluations.items():
        ci = ev.get("auc_ci")
        interval = f" (95% CI {ci['low']:.3f}-{ci['high']:.3f})" if ci and np.isfinite(ci.get("low", math.nan)) else ""
        lines.append(f"{name}: AUC {ev['metrics']['auc']:.3f}{interval} on {ev['metrics']['n_samples']} images.")
    warning = uninformative_target(reduction, baseline)
    if warning:
        lines.append(f"**Warning**: {warning}")
    elif reduction and all(len(r.get("fractions", [0, 1])) > 1 for r in reduction.values()):
        target = next(iter(reduction.values()))["target"]
        labels = f" ({num_train} labelled images)" if num_train else ""
        via = f" with {mode}" if mode else ""
        lines.append(
            f"Target: the {baseline} init{via} on 100% of the target-site labels{labels} reaches AUC {target:.3f}."
        )
        for init, r in reduction.items():
            if init == baseline:
                continue
            if r["reached"] and r["fraction"] >= r["reference_fraction"]:
                lines.append(f"**{init}** reaches it only with {_pct(r['fraction'])} of the labels (no reduction).")
            elif r["reached"]:
                bound = " or fewer (reached at the smallest fraction tried)" if r["status"] != "reached" else ""
                lines.append(
                    f"**{init}** matches it with {_pct(r['fraction'])} of the labels{bound}: "
                    f"{r['factor']:.3g}x fewer labels (95% CI over seeds {factor_interval(r)})."
                )
            else:
                best = max(r["mean_by_fraction"]) if r["mean_by_fraction"] else math.nan
                lines.append(f"**{init}** does not reach it at any fraction tried (best seed-mean AUC {best:.3f}).")
    for init in sorted({r["init"] for r in paired or []}):
        rows = [r for r in paired or [] if r["init"] == init]
        better = [r for r in rows if r["low"] > 0]
        worse = [r for r in rows if r["high"] < 0]
        lines.append(
            f"{init} vs {baseline}: significantly better (95% CI above 0) at {len(better)} of {len(rows)} fractions"
            + (f" ({', '.join(_pct(r['fraction']) for r in better)})" if better else "")
            + f", significantly worse at {len(worse)}"
            + (f" ({', '.join(_pct(r['fraction']) for r in worse)})" if worse else "")
            + "."
            + (SINGLE_SEED_CAVEAT if min(r["n_seeds"] for r in rows) < 2 else "")
        )
    return lines
