"""CXR bundle: each of the four stages runs on its own through ``python -m monai.bundle run`` on real
PneumoniaMNIST, reading only the previous stage's checkpoint; the CLI shortcut runs the same files."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bundle_test_utils import assert_pipeline_artefacts, monai_bundle_args, run_python  # noqa: E402

from monai_remedis.cli import STAGES, bundle_config_files, bundle_dir, main  # noqa: E402
from monai_remedis.configs import bundle_parser  # noqa: E402


def test_each_stage_runs_through_monai_bundle_run(tmp_path: Path) -> None:
    for stage in STAGES:
        result = run_python(monai_bundle_args("cxr", tmp_path, stage=stage, min_steps=0))
        assert result.returncode == 0, f"stage {stage} failed:\n{result.stderr[-3000:]}"
    metrics = assert_pipeline_artefacts(tmp_path, bundle_parser("cxr")["backbone"], in_channels=1, num_classes=2)
    assert "simulated_acquisition_shift (zero-shot)" in metrics["evaluations"]
    report = (tmp_path / "evaluate" / "report.md").read_text()
    assert "simulated" in report and "Label-reduction factor" in report


def test_a_stage_without_its_input_checkpoint_fails_naming_the_file(tmp_path: Path) -> None:
    result = run_python(monai_bundle_args("cxr", tmp_path, stage="ssl"))
    assert result.returncode != 0
    assert str(tmp_path / "pretrain" / "backbone.pt") in result.stderr


def test_cli_shortcut_assembles_the_bundle_files() -> None:
    bundle = bundle_dir("cxr")
    shared = [f"configs/{n}.yaml" for n in ("pretrain", "ssl", "finetune", "evaluate", "pipeline")]
    files = ["/".join(Path(f).parts[-2:]) for f in bundle_config_files(bundle)]
    assert files == ["configs/base.yaml", "configs/common.yaml", *shared]
    assert Path(bundle_config_files(bundle)[1]).parent == bundle / "configs"  # the bundle's own settings, second
    assert [Path(f).name for f in bundle_config_files(bundle, "ssl")] == ["base.yaml", "common.yaml", "ssl.yaml"]
    ct3d = [Path(f) for f in bundle_config_files(bundle_dir("ct3d"), "pretrain")]
    assert [f.name for f in ct3d] == ["base.yaml", "common.yaml", "pretrain.yaml", "pretrain.yaml"]
    assert ct3d[-1].parent == bundle_dir("ct3d") / "configs"  # a bundle's own stage file comes after the shared one
    try:
        bundle_dir("xray")
    except FileNotFoundError as err:
        assert "cxr" in str(err)
    else:
        raise AssertionError("unknown bundle accepted")


def test_configs_command_answers_without_importing_monai_or_torch() -> None:
    """README passes ``$(python -m monai_remedis configs cxr ssl)`` to ``monai.bundle run``: the list is printed
    without loading MONAI and torch (seconds per call), including by the ``embed``/``predict`` sub-parsers."""
    code = (
        "import sys\n"
        "from monai_remedis.cli import main\n"
        "assert main(['configs', 'cxr', 'ssl']) == 0\n"
        "print(sorted(m for m in ('monai', 'torch') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    printed, loaded = result.stdout.strip().splitlines()
    assert ast.literal_eval(printed) == bundle_config_files(bundle_dir("cxr"), "ssl")
    assert loaded == "[]"


def test_configs_command_prints_the_list_monai_bundle_run_takes(capsys) -> None:
    assert main(["configs", "cxr", "ssl", "--overlay", "micle.yaml"]) == 0
    files = ast.literal_eval(capsys.readouterr().out.strip())
    assert files == bundle_config_files(bundle_dir("cxr"), "ssl", ["micle.yaml"]) and files[-1].endswith("micle.yaml")
