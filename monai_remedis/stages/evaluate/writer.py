"""Stage 4's artefacts: metrics JSON, CSVs, the data-efficiency curve, ``report.md`` and the console table."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from monai_remedis.evaluation.report import (
    format_console_table,
    per_class_rows,
    plot_data_efficiency,
    write_csv,
    write_metrics,
    write_report,
)
from monai_remedis.evaluation.sweep import headline_lines
from monai_remedis.stages.evaluate.figures import figures_markdown, write_embedding_map, write_prediction_figures


@dataclass
class ReportConfig:
    """What the report says and how its statistics are computed.

    Attributes:
        title: report title.
        notes: extra lines for the report.
        class_names: names of the classes (label order).
        n_boot: bootstrap resamples of the AUC confidence intervals.
        paired_n_boot: bootstrap replicates of the paired comparisons (None: ``n_boot``; 0 disables them).
        batch_size: inference batch size of the evaluations.
        console: print the final sweep table to stdout.
    """

    title: str = "monai-remedis evaluation"
    notes: Sequence[str] = field(default_factory=list)
    class_names: Sequence[str] | None = None
    n_boot: int = 500
    paired_n_boot: int | None = None
    batch_size: int = 256
    console: bool = True

    def __post_init__(self) -> None:
        self.notes = list(self.notes)
        self.class_names = list(self.class_names) if self.class_names else None
        if self.paired_n_boot is None:
            self.paired_n_boot = self.n_boot


def flat_metrics(evaluation: Mapping[str, Any]) -> dict[str, Any]:
    """Scalar metrics of one evaluation (and its AUC interval) for a CSV row."""
    m = evaluation["metrics"]
    row = {k: v for k, v in m.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    ci = evaluation.get("auc_ci")
    if ci:
        row.update(auc_low=ci["low"], auc_high=ci["high"], auc_ci_by_patient=ci["by_patient"])
    row["note"] = evaluation.get("note", "")
    return row


class ReportWriter:
    """Write everything a finished evaluation shows a user.

    Files (in ``out``): ``metrics.json``; ``evaluations.csv`` and ``per_class.csv`` (single models);
    ``sweep.csv``, ``sweep_summary.csv``, ``paired.csv``, ``sweep_per_class.csv`` and ``data_efficiency.png``
    (sweep); ``report.md``.

    Args:
        out: the stage's run directory.
        config: title, notes, class names, console output.
        baseline: the sweep's reference init.
    """

    def __init__(self, out: Path, config: ReportConfig, baseline: str = "baseline") -> None:
        self.out = Path(out)
        self.config = config
        self.baseline = baseline

    def write(
        self,
        evaluations: Mapping[str, Any],
        sweep: Mapping[str, Any],
        result: Mapping[str, Any],
        mode: str,
        sizes: Mapping[str, int],
        backbones: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> dict[str, str | None]:
        """Write the files; ``mode`` names how the sweep trained, ``sizes`` its train/val/test set sizes,
        ``backbones`` what the stages said of each init's backbone (a report section).

        Returns:
            ``{"report": path, "curve": path or None}``.
        """
        out, cfg = self.out, self.config
        if evaluations:
            write_csv([{"set": k, **flat_metrics(v)} for k, v in evaluations.items()], out / "evaluations.csv")
            write_csv(per_class_rows(evaluations), out / "per_class.csv")
        curve = self._write_sweep(sweep) if sweep else None
        write_metrics(out, result)
        headline = headline_lines(
            evaluations,
            sweep.get("label_reduction"),
            sweep.get("paired"),
            self.baseline,
            num_train=sizes.get("train") if sweep else None,
            mode=mode,
        )
        description = (
            f"Each run trains with {mode} on a stratified fraction of the {sizes.get('train', 0)} labelled "
            f"target-site training images (seed s draws the same subset for every init), selects on the "
            f"{sizes.get('val', 0)} validation images only, and is scored on the "
            f"{sizes.get('test', 0)} test images."
            if sweep
            else ""
        )
        report = write_report(
            out,
            cfg.title,
            evaluations,
            sweep.get("summary"),
            sweep.get("label_reduction"),
            curve=curve,
            notes=cfg.notes,
            paired=sweep.get("paired"),
            sweep_per_class=sweep.get("per_class"),
            headline=headline,
            class_names=cfg.class_names,
            sweep_description=description,
            baseline=self.baseline,
            backbones=backbones,
        )
        if sweep and cfg.console:
            print(self.console_table(sweep, mode), flush=True)
        return {"report": str(report), "curve": curve}

    def write_figures(
        self,
        predictions: Mapping[str, tuple[np.ndarray, np.ndarray]],
        backbone: torch.nn.Module | None = None,
        embedding_sets: Mapping[str, tuple[Sequence[Mapping[str, Any]], Callable]] | None = None,
        device: torch.device | str = "cpu",
    ) -> dict[str, Any]:
        """ROC and reliability diagrams per evaluated set and the embedding map, appended to ``report.md``
        (call after :meth:`write`).

        Returns:
            ``{"predictions": {set: {"roc": path, "reliability": path}}, "embedding_map": path or None}``.
        """
        names = self.config.class_names
        files = write_prediction_figures(self.out, predictions, names)
        embedding = None
        if backbone is not None and embedding_sets:
            embedding = write_embedding_map(self.out, backbone, embedding_sets, device, class_names=names)
        report = self.out / "report.md"
        if report.is_file() and (files or embedding):
            report.write_text(report.read_text() + figures_markdown(files, embedding, self.out))
        return {"predictions": files, "embedding_map": embedding}

    def console_table(self, sweep: Mapping[str, Any], mode: str) -> str:
        """The sweep summary as printed at the end of a run."""
        return format_console_table(
            sweep["summary"],
            sweep["label_reduction"],
            sweep["paired"],
            title=f"{self.config.title} ({mode})",
            baseline=self.baseline,
        )

    def _write_sweep(self, sweep: Mapping[str, Any]) -> str:
        out = self.out
        write_csv(sweep["records"], out / "sweep.csv")
        write_csv(sweep["summary"], out / "sweep_summary.csv")
        if sweep["paired"]:
            write_csv([{k: v for k, v in r.items() if k != "seeds"} for r in sweep["paired"]], out / "paired.csv")
        if sweep["per_class"]:
            write_csv(sweep["per_class"], out / "sweep_per_class.csv")
        target = sweep["label_reduction"][self.baseline]["target"]
        path = plot_data_efficiency(
            sweep["summary"], "auc", out / "data_efficiency.png", target=target, title=self.config.title
        )
        return str(path)
