"""The report writer: the files stage 4 promises, from fixed evaluation and sweep results."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sweep_toy import LABELS, ToyRunner  # noqa: E402
from test_evaluate_backbones import DROP, stage_output  # noqa: E402

from monai_remedis.stages.evaluate import (  # noqa: E402
    ReportConfig,
    ReportWriter,
    RunStore,
    SequentialExecutor,
    SweepPlan,
    flat_metrics,
    summarise,
)
from monai_remedis.stages.evaluate.backbones import init_backbone_health  # noqa: E402
from monai_remedis.stages.evaluate.evaluator import Evaluator, ModelSpec  # noqa: E402


def _evaluations() -> dict:
    scorer = Evaluator(ModelSpec("bit_resnet18", 1, 2), transform=lambda d: d, n_boot=20)
    probs = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.1, 0.9], [0.45, 0.55], [0.7, 0.3]])
    items = [{"label": int(y), "patient_id": f"p{i // 2}"} for i, y in enumerate(LABELS)]
    return {"test (in-distribution)": scorer.scores(probs, LABELS, items)}


def test_writer_writes_every_artefact_and_prints_the_table(tmp_path: Path, capsys) -> None:
    plan = SweepPlan({"remedis": None, "baseline": None}, [0.1, 1.0], [0, 1])
    runs = SequentialExecutor().run(ToyRunner(RunStore(tmp_path / "sweep")), plan.jobs())
    sweep = summarise(runs, plan, [{"label": int(y)} for y in LABELS], "baseline", paired_n_boot=20)
    evaluations = _evaluations()
    config = ReportConfig(title="toy", class_names=["no", "yes"], n_boot=20)
    files = ReportWriter(tmp_path, config).write(
        evaluations, sweep, {"evaluations": evaluations, **sweep}, "fine-tuning", {"train": 10, "val": 4, "test": 6}
    )
    for name in ("metrics.json", "evaluations.csv", "per_class.csv", "sweep.csv", "sweep_summary.csv", "paired.csv"):
        assert (tmp_path / name).is_file(), name
    assert files["curve"] and Path(files["curve"]).stat().st_size > 5_000
    report = Path(files["report"]).read_text()
    assert "# toy" in report and "| 1 (yes) |" in report and "10 labelled" in report
    assert "toy (fine-tuning)" in capsys.readouterr().out
    with open(tmp_path / "evaluations.csv") as f:
        row = next(csv.DictReader(f))
    assert row["set"] == "test (in-distribution)" and float(row["auc_low"]) <= float(row["auc"])


def test_writer_without_a_sweep_writes_no_sweep_files(tmp_path: Path, capsys) -> None:
    evaluations = _evaluations()
    files = ReportWriter(tmp_path, ReportConfig(console=True)).write(evaluations, {}, {}, "fine-tuning", {})
    assert files["curve"] is None and not (tmp_path / "sweep.csv").exists()
    assert (tmp_path / "report.md").is_file() and capsys.readouterr().out == ""


def test_flat_metrics_keeps_scalars_and_the_interval() -> None:
    row = flat_metrics(_evaluations()["test (in-distribution)"])
    assert {"auc", "accuracy", "auc_low", "auc_high", "auc_ci_by_patient", "note"} <= set(row)
    assert row["auc_ci_by_patient"] is True and not any(isinstance(v, (list, dict)) for v in row.values())


def test_report_config_defaults_paired_bootstrap_to_n_boot() -> None:
    assert ReportConfig(n_boot=77).paired_n_boot == 77 and ReportConfig(n_boot=77, paired_n_boot=0).paired_n_boot == 0


def test_report_shows_each_init_backbone_and_the_ssl_warnings(tmp_path: Path, capsys) -> None:
    health = init_backbone_health({"remedis": stage_output(tmp_path / "ssl", ssl=True), "scratch": None})
    # an SSL run on unlabelled data: no probe, and no warning to show
    health["unlabelled"] = {"checkpoint": "u.pt", "stage": "ssl", "representation": None, "collapse_warning": None}
    recovered = "SSL collapse detected after epoch 3 in the backbone features: ...; recovered by epoch 9"
    health["dipped"] = {**health["unlabelled"], "collapse_recovered": recovered}  # a transient dip is no warning
    plan = SweepPlan({"remedis": None, "baseline": None}, [0.1, 1.0], [0, 1])
    runs = SequentialExecutor().run(ToyRunner(RunStore(tmp_path / "sweep")), plan.jobs())
    sweep = summarise(runs, plan, [{"label": int(y)} for y in LABELS], "baseline", paired_n_boot=20)
    config = ReportConfig(title="toy", n_boot=20, console=False)
    (tmp_path / "out").mkdir()
    files = ReportWriter(tmp_path / "out", config).write({}, sweep, {"backbones": health}, "fine-tuning", {}, health)
    report = Path(files["report"]).read_text()
    assert "## The inits' backbones before fine-tuning" in report
    assert f"| remedis | 0.7900 | 4.2 | -0.1900 (-0.2300 to -0.1500) | {DROP} |" in report
    assert "| scratch | not shown: random init |" in report
    assert "| unlabelled | n/a | n/a | n/a | none |" in report
    assert f"| dipped | n/a | n/a | n/a | none; transient, not counted: {recovered} |" in report
    findings = report[report.index("## Key findings") : report.index("## Data-efficiency sweep")]
    assert f"- **Warning** (remedis init): {DROP}." in findings and findings.count("**Warning**") == 1
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["backbones"]["remedis"]["stage"] == "ssl"
