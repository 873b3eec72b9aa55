"""Write evaluation artefacts: metrics JSON/CSV, data-efficiency curve PNG and a markdown report."""

from __future__ import annotations

import csv
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monai_remedis.engines.runtime import atomic_write_json
from monai_remedis.evaluation.sweep import factor_interval, uninformative_target


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
    """Plot metric vs label fraction per init (seed mean; band: min-max over seeds) on a log x axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for init in sorted({row["init"] for row in summary}):
        rows = sorted((r for r in summary if r["init"] == init), key=lambda r: r["fraction"])
        x = np.array([r["fraction"] * 100 for r in rows])
        mean = np.array([r[f"{metric}_mean"] for r in rows])
        (line,) = ax.plot(x, mean, marker="o", label=init)
        if f"{metric}_min" in rows[0]:
            low, high = [r[f"{metric}_min"] for r in rows], [r[f"{metric}_max"] for r in rows]
            ax.fill_between(x, low, high, alpha=0.2, color=line.get_color())
    if target is not None and np.isfinite(target):
        ax.axhline(target, color="grey", linestyle="--", linewidth=1, label="baseline @ 100%")
    ax.set_xscale("log")
    ticks = sorted({100 * r["fraction"] for r in summary})
    ax.set_xticks(ticks, [f"{t:.3g}" for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("labelled training data used (%)")
    ax.set_ylabel(f"{metric.upper()} (band: min-max over seeds)")
    ax.set_title(textwrap.fill(title or f"Data efficiency ({metric})", 60), fontsize=9)
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


def _ci_cell(value: Any, ci: Mapping[str, Any] | None) -> str:
    if not ci:
        return _fmt(value)
    return f"{_fmt(value)} ({_fmt(ci.get('low'))}-{_fmt(ci.get('high'))})"


def _metrics_table(evaluations: Mapping[str, Mapping[str, Any]]) -> list[str]:
    lines = [
        "| set | n | AUC (95% CI) | accuracy | top-2 accuracy | macro F1 | ECE | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, ev in evaluations.items():
        m = ev["metrics"]
        lines.append(
            f"| {name} | {m['n_samples']} | {_ci_cell(m['auc'], ev.get('auc_ci'))} | {_fmt(m['accuracy'])} | "
            f"{_fmt(m.get('top2_accuracy', float('nan')))} | {_fmt(m.get('macro_f1', float('nan')))} | "
            f"{_fmt(m['ece'])} | {ev.get('note', '')} |"
        )
    return lines


def _class_name(c: int, class_names: Sequence[str] | None) -> str:
    return f"{c} ({class_names[c]})" if class_names and c < len(class_names) else str(c)


def _per_class_table(rows: Sequence[Mapping[str, Any]], class_names: Sequence[str] | None, lead: str = "") -> list[str]:
    head = f"| {lead} | class |" if lead else "| class |"
    sep = "|---|---|" if lead else "|---|"
    lines = [
        head + " support | precision | recall (sensitivity) | F1 | one-vs-rest AUC |",
        sep + "---|---|---|---|---|",
    ]
    for r in rows:
        first = f"| {r[lead]} " if lead else ""
        lines.append(
            f"{first}| {_class_name(int(r['class']), class_names)} | {_fmt(r['support'])} | {_fmt(r['precision'])} | "
            f"{_fmt(r['recall'])} | {_fmt(r['f1'])} | {_fmt(r['auc'])} |"
        )
    return lines


def per_class_rows(evaluations: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Flat per-class rows (``set``, ``class``, ``precision``, ...) of every evaluation, for CSV."""
    return [{"set": name, **row} for name, ev in evaluations.items() for row in ev["metrics"].get("per_class", [])]


def _paired_table(paired: Sequence[Mapping[str, Any]], metric: str) -> list[str]:
    lines = [
        f"| init | vs | labels used | seeds | {metric.upper()} init | {metric.upper()} vs | difference (95% CI) | "
        "p | seeds better |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in paired:
        lines.append(
            f"| {r['init']} | {r['baseline']} | {100 * r['fraction']:.3g}% | {r['n_seeds']} | {_fmt(r['metric_a'])} | "
            f"{_fmt(r['metric_b'])} | {_fmt(r['diff'], 3)} ({_fmt(r['low'], 3)} to {_fmt(r['high'], 3)}) | "
            f"{_fmt(r['p_value'], 3)} | {r['wins']}/{r['n_seeds']} |"
        )
    return lines


def _ssl_warnings(record: Mapping[str, Any]) -> list[str]:
    """The collapse monitor's and the probe check's warnings an init's SSL stage recorded."""
    return [record[key] for key in ("collapse_warning", "representation_warning") if record.get(key)]


def _backbone_warnings(backbones: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """A key-findings line per warning of an init's SSL stage (the section further down has the numbers)."""
    return [f"**Warning** ({init} init): {warning}." for init, r in backbones.items() for warning in _ssl_warnings(r)]


def _backbones_section(backbones: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The inits' frozen backbones as their stages scored them on validation data, and any SSL warning."""
    lines = [
        "## The inits' backbones before fine-tuning",
        "",
        "As the stage that made each backbone scored it on validation data (a linear probe on standardised frozen "
        "features; test data unused). For an SSL backbone, the change of that probe's AUC from its init on the same "
        "images, with a paired bootstrap 95% CI; SSL warns when the whole interval is below 0 or its collapse monitor "
        "saw the backbone collapse against step 0 and still collapsed at the end (a dip that later epochs undid is "
        "shown as transient).",
        "",
        "| init | probe validation AUC | standardised effective rank | SSL change in probe AUC (95% CI) "
        "| SSL warnings |",
        "|---|---|---|---|---|",
    ]
    nan = float("nan")  # a stage without labelled diagnostics recorded no representation
    for init, record in backbones.items():
        if "note" in record:
            lines.append(f"| {init} | not shown: {record['note']} | | | |")
            continue
        rep = record.get("representation") or {}
        change = record.get("representation_change")
        shift = f"{change['change']:+.4f} ({change['ci_low']:+.4f} to {change['ci_high']:+.4f})" if change else "n/a"
        warnings = _ssl_warnings(record)
        said = "; ".join(warnings) if warnings else ("none" if record.get("stage") == "ssl" else "n/a")
        if record.get("collapse_recovered"):
            said += f"; transient, not counted: {record['collapse_recovered']}"
        lines.append(
            f"| {init} | {_fmt(rep.get('probe_val_auc', nan), 4)} | {_fmt(rep.get('feature_erank', nan), 1)} | {shift} "
            f"| {said} |"
        )
    return [*lines, ""]


def _informative(reduction: Mapping[str, Any] | None) -> dict[str, Any]:
    """Label-reduction results, or nothing when the sweep had a single fraction (nothing to reduce)."""
    if not reduction or any(len(r.get("fractions", [0, 1])) < 2 for r in reduction.values()):
        return {}
    return dict(reduction)


def format_console_table(
    summary: Sequence[Mapping[str, Any]],
    reduction: Mapping[str, Any] | None = None,
    paired: Sequence[Mapping[str, Any]] | None = None,
    metric: str = "auc",
    title: str = "",
    baseline: str = "baseline",
) -> str:
    """Plain-text table of the sweep (seed mean, min-max), the paired differences and label-reduction factors."""
    pairs = {(r["init"], r["fraction"]): r for r in paired or []}
    head = f"{'init':<22}{'labels':>8}{'seeds':>6}{metric.upper() + ' mean':>10}{'min':>8}{'max':>8}"
    head += f"{'vs baseline (95% CI)':>28}"
    lines = [title, head, "-" * len(head)] if title else [head, "-" * len(head)]
    for r in summary:
        pair = pairs.get((r["init"], r["fraction"]))
        diff = f"{pair['diff']:+.3f} ({pair['low']:+.3f},{pair['high']:+.3f})" if pair else ""
        lines.append(
            f"{r['init']:<22}{100 * r['fraction']:>7.3g}%{r['n_seeds']:>6}{_fmt(r[f'{metric}_mean'], 4):>10}"
            f"{_fmt(r.get(f'{metric}_min'), 4):>8}{_fmt(r.get(f'{metric}_max'), 4):>8}{diff:>28}"
        )
    warning = uninformative_target(reduction, baseline)
    if warning:
        lines.append(f"WARNING: {warning}")
    for init, r in _informative(reduction).items():
        if r.get("reached"):
            cell = f"reached at {100 * r['fraction']:.3g}% -> {r['factor']:.3g}x (95% CI {factor_interval(r)})"
            cell += " (lower bound)" if r["status"] == "reached_at_smallest_fraction" else ""
        else:
            cell = "not reached at any fraction"
        lines.append(f"label reduction {init}: target {_fmt(r['target'], 4)}, {cell}")
    return "\n".join(lines)


def write_report(
    out_dir: str | Path,
    title: str,
    evaluations: Mapping[str, Mapping[str, Any]],
    summary: Sequence[Mapping[str, Any]] | None = None,
    reduction: Mapping[str, Any] | None = None,
    metric: str = "auc",
    curve: str | None = None,
    notes: Sequence[str] = (),
    paired: Sequence[Mapping[str, Any]] | None = None,
    sweep_per_class: Sequence[Mapping[str, Any]] | None = None,
    headline: Sequence[str] = (),
    class_names: Sequence[str] | None = None,
    sweep_description: str = "",
    baseline: str = "baseline",
    backbones: Mapping[str, Mapping[str, Any]] | None = None,
) -> Path:
    """Write ``report.md`` for a reader who decides, not one who trains: key findings first, then the tables.

    Sections: key findings (``headline``), test and OOD metrics (with 95% CIs), per-class metrics of every
    evaluation set, the data-efficiency sweep, the paired comparison of each init with the baseline, the
    label-reduction factors, per-class metrics of the full-label sweep models, the inits' backbones before
    fine-tuning (``backbones``: :func:`~monai_remedis.stages.evaluate.backbones.init_backbone_health`), how to read
    the numbers, notes.
    """
    out_dir = Path(out_dir)
    lines = [f"# {title}", ""]
    headline = [*headline, *_backbone_warnings(backbones or {})]
    if headline:
        lines += ["## Key findings", "", *[f"- {h}" for h in headline], ""]
    if evaluations:
        lines += ["## Test and out-of-distribution metrics", "", *_metrics_table(evaluations), ""]
        lines += ["### Per-class metrics", ""]
        for name, ev in evaluations.items():
            rows = ev["metrics"].get("per_class", [])
            if rows:
                lines += [f"**{name}**", "", *_per_class_table(rows, class_names), ""]
    if summary:
        lines += ["## Data-efficiency sweep", ""]
        if sweep_description:
            lines += [sweep_description, ""]
        lines += [
            f"Seed mean (min-max over seeds) of {metric.upper()} on the target test set.",
            "",
            "| init | labels used | seeds | " + metric.upper() + " | accuracy | ECE |",
            "|---|---|---|---|---|---|",
        ]
        for r in summary:
            lines.append(
                f"| {r['init']} | {100 * r['fraction']:.3g}% | {r['n_seeds']} | {_fmt(r[f'{metric}_mean'])} "
                f"({_fmt(r.get(f'{metric}_min'))}-{_fmt(r.get(f'{metric}_max'))}) | "
                f"{_fmt(r.get('accuracy_mean', float('nan')))} | {_fmt(r.get('ece_mean', float('nan')))} |"
            )
        lines.append("")
    if curve:
        lines += [f"![data-efficiency curve]({Path(curve).name})", ""]
    if paired:
        lines += [
            "## Paired comparison with the baseline",
            "",
            f"Difference in {metric.upper()} (init minus baseline) at each label fraction. Seeds are paired (the same "
            "seed draws the same labelled subset for every init) and the test images are shared: each bootstrap "
            "replicate resamples the test images (patients, when ids exist) and the seed pairs, and the difference "
            "of seed means is recorded. p: two-sided bootstrap p-value of no difference.",
            "",
            *_paired_table(paired, metric),
            "",
        ]
    reduction = _informative(reduction)
    if reduction:
        lines += [
            "## Label-reduction factor",
            "",
            "Smallest label fraction at which an init matches the baseline's 100%-label metric (seed means); "
            "interval: bootstrap over seeds.",
            "",
            *([f"**Warning**: {warning}", ""] if (warning := uninformative_target(reduction, baseline)) else []),
            "| init | target | fraction reached | factor (95% CI) |",
            "|---|---|---|---|",
        ]
        for init, r in reduction.items():
            factor = r.get("factor")
            reached = r.get("reached", factor is not None and np.isfinite(factor))
            cell = f"{_fmt(factor, 1)}x ({factor_interval(r)})" if reached else "not reached"
            if r.get("status") == "reached_at_smallest_fraction":
                cell += " (lower bound: reached at the smallest fraction tried)"
            lines.append(f"| {init} | {_fmt(r.get('target'))} | {_fmt(r.get('fraction'))} | {cell} |")
        lines.append("")
    if sweep_per_class:
        lines += [
            "## Per-class metrics of the sweep at the largest label fraction (seed mean)",
            "",
            *_per_class_table(sweep_per_class, class_names, lead="init"),
            "",
        ]
    if backbones:
        lines += _backbones_section(backbones)
    lines += [
        "## How to read this report",
        "",
        "- AUC: probability that the model ranks a random positive case above a random negative one (0.5 = chance, "
        "1 = perfect); for several classes, the mean of the one-vs-rest AUCs.",
        "- 95% CI: bootstrap interval over test images (over patients when the data carry patient ids); "
        "overlapping intervals of two *different* test sets say little, the paired comparison is the test to use.",
        "- ECE: expected calibration error, the average gap between the model's confidence and its accuracy.",
        "- Label-reduction factor: how many times fewer labelled images an init needs to reach the baseline trained on "
        "all labels. 'not reached' means it never matched that AUC at the fractions tried.",
        "- Zero-shot: the model is applied to the new site without any of its labels.",
        "",
    ]
    if notes:
        lines += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    path = out_dir / "report.md"
    path.write_text("\n".join(lines))
    return path


def write_metrics(out_dir: str | Path, payload: Mapping[str, Any]) -> Path:
    """Write ``metrics.json`` atomically."""
    return atomic_write_json(dict(payload), Path(out_dir) / "metrics.json")
