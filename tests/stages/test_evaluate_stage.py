"""EvaluateStage on real BreastMNIST: artefacts, resume, the model-selection guard, and the bundle configs."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch
from monai.transforms import Compose, EnsureTyped, ScaleIntensityRanged

from monai_remedis.backbones import create_backbone
from monai_remedis.configs import bundle_parser
from monai_remedis.data import EnsureImaged, medmnist_datalist
from monai_remedis.evaluation.guard import SelectionLeakError
from monai_remedis.models import Classifier
from monai_remedis.stages import EvaluateStage, ModelSpec, OptimConfig, ReportConfig, RuntimeConfig, SweepConfig
from monai_remedis.stages.evaluate import SweepData

FRACTIONS = [0.1, 0.5, 1.0]
SEEDS = [0, 1]


def _transform(gamma: float | None = None) -> Compose:
    steps = [EnsureImaged(keys="image"), ScaleIntensityRanged("image", 0, 255, 0.0, 1.0, clip=True)]
    if gamma:
        steps.append(ScaleIntensityRanged("image", 0.0, 1.0, 0.2, 0.8))
    return Compose([*steps, EnsureTyped(keys="image", track_meta=False)])


@pytest.fixture(scope="module")
def breast(data_dir: Path) -> dict[str, list[dict]]:
    npz = data_dir / "medmnist_breast" / "breastmnist.npz"
    return {
        "train": medmnist_datalist(npz, "train", limit=60),
        "val": medmnist_datalist(npz, "val", limit=24),
        "test": medmnist_datalist(npz, "test", limit=40),
    }


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(3)
    backbone = create_backbone("bit_resnet18", in_channels=1)
    torch.save(backbone.state_dict(), root / "backbone.pt")
    torch.save(Classifier(backbone, 2).state_dict(), root / "classifier.pt")
    return {"backbone": root / "backbone.pt", "classifier": root / "classifier.pt"}


def _stage(out: Path, breast: dict, checkpoints: dict, **kwargs) -> EvaluateStage:
    """The stage on BreastMNIST: a linear-probe sweep of scratch vs baseline; ``kwargs`` replace the options below."""
    o = {
        "classifiers": {"ckpt": checkpoints["classifier"]},
        "ood_sets": {"dim": {"datalist": breast["test"], "transform": _transform(gamma=1.5), "note": "simulated"}},
        "mode": "linear_probe",
        "inits": {"scratch": None, "baseline": checkpoints["backbone"]},
        "train": breast["train"],
        "val": breast["val"],
        "test": None,
        "train_transform": None,
        "fractions": FRACTIONS,
        "seeds": SEEDS,
        "optim": OptimConfig(),
        "workers": 1,
        "keep_checkpoints": False,
        **kwargs,
    }
    return EvaluateStage(
        model=ModelSpec("bit_resnet18", in_channels=1, num_classes=2),
        output_dir=out,
        test_transform=_transform(),
        classifiers=o["classifiers"],
        test_datalist=breast["test"],
        ood_sets=o["ood_sets"],
        sweep=SweepConfig(
            inits=o["inits"],
            fractions=o["fractions"],
            seeds=o["seeds"],
            mode=o["mode"],
            optim=o["optim"],
            workers=o["workers"],
            keep_checkpoints=o["keep_checkpoints"],
            probe_l2_grid=(1e-2, 1.0),
        ),
        sweep_data=SweepData(o["train"], o["val"], o["test"], o["train_transform"]),
        report=ReportConfig(n_boot=50, class_names=["malignant", "normal/benign"]),
        runtime=RuntimeConfig(device="cpu"),
    )


@pytest.fixture(scope="module")
def probe_run(tmp_path_factory, breast, checkpoints) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("probe")
    return out, _stage(out, breast, checkpoints).run()


def test_probe_sweep_writes_metrics_curves_and_report(probe_run) -> None:
    out, result = probe_run
    for name in ("metrics.json", "evaluations.csv", "per_class.csv", "sweep.csv", "sweep_summary.csv", "paired.csv"):
        assert (out / name).is_file(), name
    assert (out / "data_efficiency.png").stat().st_size > 10_000
    records = result["records"]
    assert len(records) == 2 * len(FRACTIONS) * len(SEEDS)
    assert {r["num_labels"] for r in records if r["fraction"] == 1.0} == {60}
    with open(out / "sweep.csv") as f:
        rows = list(csv.DictReader(f))
    assert {"auc", "accuracy", "top2_accuracy", "macro_f1", "ece", "l2", "best_val_auc"} <= set(rows[0])
    paired = result["paired"]
    assert [(r["init"], r["fraction"]) for r in paired] == [("scratch", f) for f in FRACTIONS]
    assert all(r["low"] <= r["diff"] <= r["high"] and r["n_seeds"] == 2 for r in paired)
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["evaluations"]) == {"ckpt: test (in-distribution)", "ckpt: dim (zero-shot)"}
    assert metrics["label_reduction"]["baseline"]["reached"]


def test_report_has_findings_per_class_paired_and_reduction_tables(probe_run) -> None:
    out, _ = probe_run
    report = (out / "report.md").read_text()
    for section in (
        "## Key findings",
        "## Test and out-of-distribution metrics",
        "### Per-class metrics",
        "## Data-efficiency sweep",
        "## Paired comparison with the baseline",
        "## Label-reduction factor",
        "## Per-class metrics of the sweep at the largest label fraction",
        "## How to read this report",
    ):
        assert section in report, section
    assert "| 0 (malignant) |" in report and "ckpt: dim (zero-shot)" in report
    assert "![data-efficiency curve](data_efficiency.png)" in report


def test_resume_skips_finished_runs_and_redoes_only_missing_ones(probe_run, breast, checkpoints, monkeypatch) -> None:
    out, first = probe_run
    import monai_remedis.stages.evaluate.sweep as evaluate

    real = evaluate.train_linear_probe

    def refuse(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(evaluate, "train_linear_probe", refuse)
    sweep_only = {"classifiers": None, "ood_sets": None}
    again = _stage(out, breast, checkpoints, **sweep_only).run()
    assert [r["auc"] for r in again["records"]] == [r["auc"] for r in first["records"]]

    (out / "sweep" / "scratch" / "f0.5_s1" / "result.json").unlink()
    calls = []
    monkeypatch.setattr(evaluate, "train_linear_probe", lambda *a, **k: calls.append(1) or real(*a, **k))
    _stage(out, breast, checkpoints, **sweep_only).run()
    assert len(calls) == 1


def test_guard_refuses_validation_on_the_test_set(tmp_path: Path, breast, checkpoints) -> None:
    stage = _stage(tmp_path, breast, checkpoints, val=breast["test"][:10])
    with pytest.raises(SelectionLeakError, match="held-out set"):
        stage.run()
    assert not (tmp_path / "sweep").exists() and not (tmp_path / "features").exists()


def test_guard_refuses_validation_copied_into_an_ood_set(tmp_path: Path, breast, checkpoints) -> None:
    copy = [dict(item, id=f"site-b/{i}") for i, item in enumerate(breast["val"][5:8])]  # same pixels, new ids
    ood = {"site_b": {"datalist": copy, "note": "copy"}}
    with pytest.raises(SelectionLeakError, match=r"pixel content.*ood 'site_b'"):
        _stage(tmp_path, breast, checkpoints, ood_sets=ood).run()


def test_guard_refuses_items_tagged_as_test(tmp_path: Path, breast, checkpoints) -> None:
    val = [dict(item, split="test") for item in breast["val"]]
    with pytest.raises(SelectionLeakError, match="split='test'"):
        _stage(tmp_path, breast, checkpoints, val=val).run()


def test_unknown_sweep_mode_is_refused(tmp_path: Path, breast, checkpoints) -> None:
    with pytest.raises(ValueError, match="sweep mode must be one of"):
        _stage(tmp_path, breast, checkpoints, mode="knn")


def _one_finetune_run(breast: dict, checkpoints: dict) -> dict:
    """Stage options of a sweep with a single one-epoch full fine-tune (baseline, 100%, seed 0)."""
    return {
        "mode": "finetune",
        "inits": {"baseline": checkpoints["backbone"]},
        "train": breast["train"][:16],
        "val": breast["val"][:8],
        "test": breast["test"][:16],
        "train_transform": _transform(),
        "fractions": [1.0],
        "seeds": [0],
        "classifiers": None,
        "ood_sets": None,
        "optim": OptimConfig(max_epochs=1, batch_size=8),
    }


def test_finetune_sweep_saves_predictions_and_resumes(tmp_path: Path, breast, checkpoints, monkeypatch) -> None:
    kwargs = _one_finetune_run(breast, checkpoints)
    first = _stage(tmp_path, breast, checkpoints, **kwargs).run()
    run_dir = tmp_path / "sweep" / "baseline" / "f1_s0"
    assert (run_dir / "classifier.pt").is_file() and (run_dir / "predictions.npz").is_file()
    assert not (run_dir / "checkpoints").exists()  # a finished run's resume state is not kept (disk)
    import monai_remedis.stages.evaluate.sweep as evaluate

    monkeypatch.setattr(evaluate, "FinetuneStage", None)  # would fail if a finished run were trained again
    again = _stage(tmp_path, breast, checkpoints, **kwargs).run()
    assert again["records"] == first["records"]


@pytest.mark.slow
def test_finetune_runs_in_parallel_workers(tmp_path: Path, breast, checkpoints) -> None:
    stage = _stage(
        tmp_path,
        breast,
        checkpoints,
        mode="finetune",
        train_transform=_transform(),
        fractions=[0.5, 1.0],
        seeds=[0],
        classifiers=None,
        ood_sets=None,
        optim=OptimConfig(max_epochs=1, batch_size=32),
        workers=2,
    )
    result = stage.run()
    assert len(result["records"]) == 4
    assert len(list((tmp_path / "sweep").glob("*/*/result.json"))) == 4


def test_aptos_overlay_builds_a_guarded_cross_site_stage(data_dir: Path, tmp_path: Path) -> None:
    parser = bundle_parser("fundus", "evaluate", ["evaluate_aptos.yaml"], limit=10, output_dir=str(tmp_path))
    stage = parser.get_parsed_content("evaluate")
    assert isinstance(stage, EvaluateStage) and stage.sweep.mode == "finetune"
    assert stage.sweep.fractions == [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0] and stage.sweep.seeds == [0, 1, 2]
    assert set(stage.sweep.inits) == {"remedis", "baseline", "scratch"} and stage.sweep.inits["scratch"] is None
    assert {d["site"] for d in stage.sweep_data.train} == {"aravind"}
    assert {d["split"] for d in stage.sweep_data.val} == {"val"}
    assert stage.output_dir == tmp_path / "evaluate_aptos" and stage.report.class_names[0] == "no DR"
    assert {d["site"] for d in stage.test_datalist} == {"shanghai"}
    assert set(stage.ood_sets) == {"aptos_aravind", "simulated_camera_shift"}
    stage.check_selection_data()  # APTOS val is disjoint from every held-out set


def test_cxr_bundle_evaluate_config_still_builds(tmp_path: Path) -> None:
    parser = bundle_parser("cxr", "evaluate", limit=8, output_dir=str(tmp_path))
    stage = parser.get_parsed_content("evaluate")
    assert stage.sweep.mode == "finetune" and stage.sweep.linear_probe is False
    assert stage.report.n_boot == 500 and stage.sweep.optim.batch_size == 128  # cxr had lacked n_boot, sweep_batch_size
    assert {d["split"] for d in stage.test_datalist} == {"test"}
    stage.check_selection_data()


def test_copy_of_val_under_a_test_id_is_caught_even_when_the_ood_set_is_a_transformed_test_set(
    tmp_path: Path, breast, checkpoints
) -> None:
    val = list(breast["val"]) + [dict(breast["test"][3])]
    shutil.rmtree(tmp_path, ignore_errors=True)
    with pytest.raises(SelectionLeakError, match="shares its id"):
        _stage(tmp_path, breast, checkpoints, val=val).check_selection_data()


def test_finished_sweep_run_keeps_its_checkpoints_when_asked(tmp_path: Path, breast, checkpoints) -> None:
    options = _one_finetune_run(breast, checkpoints)
    _stage(tmp_path, breast, checkpoints, **options, keep_checkpoints=True).run()
    assert list((tmp_path / "sweep" / "baseline" / "f1_s0" / "checkpoints").glob("checkpoint_*.pt"))


def test_cxr_bundle_sweeps_several_ssl_strategies_and_scratch_by_linear_probe(tmp_path: Path, checkpoints) -> None:
    """The REMEDIS-per-strategy comparison a user sets up from the command line, on real chest X-rays."""
    # the backbone of the `checkpoints` fixture
    parser = bundle_parser("cxr", "evaluate", limit=48, output_dir=str(tmp_path), backbone="bit_resnet18")
    parser["sweep_mode"] = "linear_probe"
    parser["sweep_fractions"] = [0.5, 1.0]
    parser["sweep_seeds"] = [0, 1]
    backbone = str(checkpoints["backbone"])
    parser["sweep_inits"] = {
        "remedis_simclr": backbone,
        "remedis_byol": backbone,
        "baseline": backbone,
        "scratch": None,
    }
    stage = parser.get_parsed_content("evaluate")
    assert stage.sweep.mode == "linear_probe"
    sweep = stage.run_sweep()
    inits = {r["init"] for r in sweep["records"]}
    assert inits == {"remedis_simclr", "remedis_byol", "baseline", "scratch"}
    assert len(sweep["records"]) == 4 * 2 * 2
    assert {r["init"] for r in sweep["paired"]} == inits - {"baseline"}
    assert set(sweep["label_reduction"]) == inits
    # the same weights give the same features, so the same probe: the comparison is paired run by run
    by = {(r["init"], r["fraction"], r["seed"]): r["auc"] for r in sweep["records"]}
    assert all(by[("remedis_simclr", f, s)] == by[("baseline", f, s)] for f in (0.5, 1.0) for s in (0, 1))
