"""Write evaluation artefacts: metrics JSON/CSV, data-efficiency curve PNG and a markdown report."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monai_remedis.engines.runtime import atomic_write_json


def write_csv(rows: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """Write dict rows as CSV (columns: union of keys in first-seen order)."""
    path = Path(path)
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def plot_data_efficiency(
    summary: Sequence[Mapping[str, Any]], metric: str, path: str | Path, target: float | None = None, title: str = ""
) -> Path:
    """Plot metric vs label fraction per init (seed mean, min-max band) on a log x axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for init in sorted({row["init"] for row in summary}):
        rows = sorted((r for r in summary if r["init"] == init), key=lambda r: r["fraction"])
        x = np.array([r["fraction"] * 100 for r in rows])
        mean = np.array([r[f"{metric}_mean"] for r in rows])
        ax.plot(x, mean, marker="o", label=init)
        if f"{metric}_min" in rows[0]:
            ax.fill_between(x, [r[f"{metric}_min"] for r in rows], [r[f"{metric}_max"] for r in rows], alpha=0.2)
    if target is not None and np.isfinite(target):
        ax.axhline(target, color="grey", linestyle="--", linewidth=1, label="baseline @ 100%")
    ax.set_xscale("log")
    ax.set_xlabel("labelled training data used (%)")
    ax.set_ylabel(metric.upper())
    ax.set_title(title or f"Data efficiency ({metric})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def _fmt(value: Any, digits: int = 3) -> str:
    if isinstance(value, (float, np.floating)):
        return "n/a" if not np.isfinite(value) else f"{value:.{digits}f}"
    return str(value)


def _metrics_table(evaluations: Mapping[str, Mapping[str, Any]]) -> list[str]:
    lines = ["| set | n | AUC (95% CI) | accuracy | ECE | note |", "|---|---|---|---|---|---|"]
    for name, ev in evaluations.items():
        m = ev["metrics"]
        ci = ev.get("auc_ci", {})
        auc = f"{_fmt(m['auc'])} ({_fmt(ci.get('low'))}-{_fmt(ci.get('high'))})" if ci else _fmt(m["auc"])
        lines.append(
            f"| {name} | {m['n_samples']} | {auc} | {_fmt(m['accuracy'])} | {_fmt(m['ece'])} | {ev.get('note', '')} |"
        )
    return lines


def write_report(
    out_dir: str | Path,
    title: str,
    evaluations: Mapping[str, Mapping[str, Any]],
    summary: Sequence[Mapping[str, Any]] | None = None,
    reduction: Mapping[str, Any] | None = None,
    metric: str = "auc",
    curve: str | None = None,
    notes: Sequence[str] = (),
) -> Path:
    """Write ``report.md``: metrics per evaluation set, the sweep table and the label-reduction factors."""
    out_dir = Path(out_dir)
    lines = [f"# {title}", ""]
    if evaluations:
        lines += ["## Test and out-of-distribution metrics", "", *_metrics_table(evaluations), ""]
    if summary:
        lines += [
            "## Data-efficiency sweep",
            "",
            f"Seed mean (min-max) of {metric.upper()} on the target test set.",
            "",
            "| init | labels used | seeds | " + metric.upper() + " |",
            "|---|---|---|---|",
        ]
        for r in summary:
            lines.append(
                f"| {r['init']} | {100 * r['fraction']:.3g}% | {r['n_seeds']} | {_fmt(r[f'{metric}_mean'])} "
                f"({_fmt(r.get(f'{metric}_min'))}-{_fmt(r.get(f'{metric}_max'))}) |"
            )
        lines.append("")
    if curve:
        lines += [f"![data-efficiency curve]({Path(curve).name})", ""]
    if reduction:
        lines += [
            "## Label-reduction factor",
            "",
            "Smallest label fraction at which an init matches the baseline's 100%-label metric.",
            "",
            "| init | fraction reached | factor (95% CI) |",
            "|---|---|---|",
        ]
        for init, r in reduction.items():
            factor = r.get("factor")
            reached = r.get("reached", factor is not None and np.isfinite(factor))
            cell = (
                f"{_fmt(factor, 1)}x ({_fmt(r.get('low'), 1)}-{_fmt(r.get('high'), 1)})" if reached else "not reached"
            )
            lines.append(f"| {init} | {_fmt(r.get('fraction'))} | {cell} |")
        lines.append("")
    if notes:
        lines += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    path = out_dir / "report.md"
    path.write_text("\n".join(lines))
    return path


def write_metrics(out_dir: str | Path, payload: Mapping[str, Any]) -> Path:
    """Write ``metrics.json`` atomically."""
    return atomic_write_json(dict(payload), Path(out_dir) / "metrics.json")
