"""The benchmarks' summaries: median with min and max, paired peer ratios, scaling rows, the lightly peer
computing the same SimCLR loss as ours (no timing is asserted), and the results benchmark's stage reuse."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest
import torch
from monai.bundle import ConfigParser

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_results  # noqa: E402
import bench_ssl  # noqa: E402
import bench_throughput  # noqa: E402
import select_finetune  # noqa: E402

from monai_remedis.backbones import create_backbone  # noqa: E402
from monai_remedis.ssl import create_strategy  # noqa: E402


def test_timing_summary_is_the_median_with_the_fastest_and_slowest() -> None:
    assert bench_ssl.timing_summary([0.3, 0.1, 0.2, 0.9]) == pytest.approx(
        {"median": 250.0, "min": 100.0, "max": 900.0, "n": 4}
    )
    assert bench_ssl.timing_summary([2.0], scale=1.0)["median"] == 2.0
    with pytest.raises(ValueError, match="no timings"):
        bench_ssl.timing_summary([])


def test_paired_ratio_is_ours_over_the_peer_with_the_per_round_range() -> None:
    ratio = bench_ssl.paired_ratio([1.0, 2.0, 3.0], [2.0, 2.0, 2.0])
    assert ratio == pytest.approx({"ratio": 1.0, "round_ratio_min": 0.5, "round_ratio_max": 1.5})
    with pytest.raises(ValueError, match="same, non-zero number of rounds"):
        bench_ssl.paired_ratio([1.0], [1.0, 2.0])


def test_scaling_is_relative_to_the_first_row_and_skips_failed_rows() -> None:
    rows = [{"items": 256, "epoch_s": 2.0}, {"items": 512, "epoch_s": 3.0}, {"items": 1024, "error": "killed"}]
    assert bench_throughput.scaling(rows, "items") == [
        {"items": 256, "time_ratio": 1.0, "items_ratio": 1.0},
        {"items": 512, "time_ratio": 1.5, "items_ratio": 2.0},
    ]


def test_peers_start_from_our_weights_and_compute_our_loss() -> None:
    pytest.importorskip("lightly")
    torch.manual_seed(0)
    strategy = create_strategy("simclr", backbone=create_backbone("bit_resnet18_small", in_channels=1)).train()
    views = [torch.rand(8, 1, 28, 28), torch.rand(8, 1, 28, 28)]
    ours = float(strategy(views)["loss"].detach())
    for make in (bench_ssl.bare_peer, bench_throughput.lightly_peer):
        torch.manual_seed(0)
        strategy = create_strategy("simclr", backbone=create_backbone("bit_resnet18_small", in_channels=1)).train()
        model, criterion = make(strategy)
        z = model(torch.cat(views))
        assert float(criterion(z[:8], z[8:]).detach()) == pytest.approx(ours, rel=1e-5), make.__name__


def test_markdown_tables_show_every_measured_row_with_its_spread_and_load() -> None:
    load = {"before": [3.0, 2.0, 1.0], "after": [4.0, 2.0, 1.0]}
    config = {"backbones": ["bit_resnet18"], "epoch_batch_size": 128}
    rows = [
        {"items": 256, "epoch_s": 2.0, "epoch_s_min": 1.9, "epoch_s_max": 2.5, "images_per_s": 128.0},
        {"items": 512, "epoch_s": 3.0, "epoch_s_min": 2.9, "epoch_s_max": 3.1, "images_per_s": 170.7},
    ]
    result = {"epochs": {"rows": rows, "scaling": bench_throughput.scaling(rows, "items"), "load_average": load}}
    result["epochs"]["config"] = config
    table = bench_throughput.markdown(result)
    assert "load average 3.0 -> 4.0" in table
    assert "| 512 | 3.00 (2.90-3.10) | 171 | 1.50 | 2.00 |" in table


def test_grid_rows_of_a_later_run_replace_the_same_cells_and_keep_the_others() -> None:
    earlier = [
        {"backbone": "a", "image_size": 28, "kind": "simclr", "step_ms": 1.0},
        {"backbone": "a", "image_size": 28, "kind": "byol", "step_ms": 2.0},
    ]
    new = [{"backbone": "a", "image_size": 28, "kind": "byol", "step_ms": 3.0}]
    merged = bench_throughput.merge_rows(earlier, new)
    assert [(r["kind"], r["step_ms"]) for r in merged] == [("simclr", 1.0), ("byol", 3.0)]


def test_fine_tune_settings_are_every_combination_of_the_compared_values() -> None:
    grid = select_finetune.settings_grid(["finetune_backbone_lr_scale=1.0,0.1", "backbone=bit_resnet18"])
    assert grid == [
        {"finetune_backbone_lr_scale": "1.0", "backbone": "bit_resnet18"},
        {"finetune_backbone_lr_scale": "0.1", "backbone": "bit_resnet18"},
    ]
    assert select_finetune.settings_grid([]) == [{}]
    with pytest.raises(SystemExit, match="expected name=value, got 'seed'"):
        select_finetune.settings_grid(["seed"])


def test_fine_tune_selection_reuses_a_finished_run_only_from_the_same_command_and_weights(tmp_path: Path) -> None:
    """A finished run is never reused for another init file saved under the same name (a retrained backbone)."""
    weights = tmp_path / "backbone.pt"
    weights.write_bytes(b"first backbone")
    args = argparse.Namespace(work_dir=str(tmp_path / "work"), bundle="cxr", dataset="bundle", keep_checkpoints=False)
    job = {"setting": {}, "init": "remedis", "weights": str(weights), "fraction": 0.01, "seed": 0}
    run = tmp_path / "work" / "remedis" / "f0.01_s0" / "finetune"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps({"best_val_auc": 0.9, "best_epoch": 3, "num_labels": 48}))
    (run / "history.json").write_text(json.dumps({"epoch": [1, 2, 3]}))
    with pytest.raises(SystemExit, match="no record of what made it"):
        select_finetune.run_one(args, job)
    made_by = select_finetune.job_record(args, job)
    (run.parent / select_finetune.JOB_FILE).write_text(json.dumps({**made_by, "command": ["--other", "setting"]}))
    with pytest.raises(SystemExit, match="another command"):
        select_finetune.run_one(args, job)
    (run.parent / select_finetune.JOB_FILE).write_text(json.dumps(made_by))
    assert select_finetune.run_one(args, job)["best_val_auc"] == 0.9  # same command and weights: reused
    weights.write_bytes(b"retrained backbone")
    with pytest.raises(SystemExit, match="other init weights"):
        select_finetune.run_one(args, job)


def test_results_benchmark_reuses_a_finished_stage_only_with_the_bundle_settings_that_made_it(tmp_path: Path) -> None:
    raw = {"ssl": {"views": "@views", "lr": 0.001}, "views": ["$@colour * 2"], "colour": 0.1, "finetune_lr": 0.01}
    settings = bench_results.stage_settings(ConfigParser(raw), ["ssl"], ssl_epochs=35)
    assert settings == {"bundle.colour": 0.1, "bundle.ssl": raw["ssl"], "bundle.views": raw["views"], "ssl_epochs": 35}
    assert not bench_results.reusable(tmp_path, settings, fresh=False)  # nothing finished yet
    (tmp_path / "backbone.pt").touch()
    with pytest.raises(SystemExit, match="no bench_settings.json"):  # made elsewhere: provenance unknown
        bench_results.reusable(tmp_path, settings, fresh=False)
    bench_results.record_settings(tmp_path, settings)
    assert bench_results.reusable(tmp_path, settings, fresh=False)
    assert bench_results.reusable(tmp_path, {**settings}, fresh=False)
    changed = bench_results.stage_settings(ConfigParser({**raw, "colour": 0.2}), ["ssl"], ssl_epochs=35)
    with pytest.raises(SystemExit, match=r"other settings \(bundle.colour\): pass --fresh"):
        bench_results.reusable(tmp_path, changed, fresh=False)
    assert not bench_results.reusable(tmp_path, changed, fresh=True)
    unrelated = bench_results.stage_settings(ConfigParser({**raw, "finetune_lr": 0.1}), ["ssl"], ssl_epochs=35)
    assert bench_results.reusable(tmp_path, unrelated, fresh=False)
