"""CXR bundle: each of the four stages runs on its own through ``python -m monai.bundle run`` on real
PneumoniaMNIST, reading only the previous stage's checkpoint; the CLI shortcut runs the same files."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bundle_test_utils import assert_pipeline_artefacts, monai_bundle_args, run_python  # noqa: E402

from monai_remedis.cli import STAGES, bundle_config_files, bundle_dir  # noqa: E402


def test_each_stage_runs_through_monai_bundle_run(tmp_path: Path) -> None:
    for stage in STAGES:
        result = run_python(monai_bundle_args("cxr", tmp_path, stage=stage, min_steps=0))
        assert result.returncode == 0, f"stage {stage} failed:\n{result.stderr[-3000:]}"
    metrics = assert_pipeline_artefacts(tmp_path, "bit_resnet18", in_channels=1, num_classes=2)
    assert "simulated_acquisition_shift (zero-shot)" in metrics["evaluations"]
    report = (tmp_path / "evaluate" / "report.md").read_text()
    assert "simulated" in report and "Label-reduction factor" in report


def test_a_stage_without_its_input_checkpoint_fails_naming_the_file(tmp_path: Path) -> None:
    result = run_python(monai_bundle_args("cxr", tmp_path, stage="ssl"))
    assert result.returncode != 0
    assert str(tmp_path / "pretrain" / "backbone.pt") in result.stderr


def test_cli_shortcut_assembles_the_bundle_files() -> None:
    bundle = bundle_dir("cxr")
    files = [Path(f).name for f in bundle_config_files(bundle)]
    assert files == ["common.yaml", "pretrain.yaml", "ssl.yaml", "finetune.yaml", "evaluate.yaml", "pipeline.yaml"]
    assert [Path(f).name for f in bundle_config_files(bundle, "ssl")] == ["common.yaml", "ssl.yaml"]
    try:
        bundle_dir("xray")
    except FileNotFoundError as err:
        assert "cxr" in str(err)
    else:
        raise AssertionError("unknown bundle accepted")
