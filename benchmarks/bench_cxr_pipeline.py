"""End-to-end REMEDIS chain on real PneumoniaMNIST through the cxr bundle, on CPU in about 17 minutes (2 cores).

This is README command 1 (``python -m monai_remedis run cxr``) with its stages timed: the bundle's own configs,
datalists and transforms (``common.yaml`` + the four stage configs), parsed by MONAI's ``ConfigParser`` and run in
one process, stage by stage:

1. supervised pretraining of ``bit_resnet18`` on the CIFAR-10 subset;
2. SimCLR on the unlabelled PneumoniaMNIST training images, from the stage-1 backbone;
3. fine-tuning on 100% of the labels (the classifier evaluated in and out of distribution);
4. test metrics, zero-shot metrics on the bundle's simulated acquisition shift, and the data-efficiency sweep
   (1%, 10%, 100% labels x 3 seeds) for the REMEDIS init (stages 1+2) against the supervised baseline (stage 1).

    python benchmarks/bench_cxr_pipeline.py --out benchmarks/results/cxr_pipeline.json
    python benchmarks/bench_cxr_pipeline.py --override max_epochs=1 --override "sweep_seeds=[0]"   # a quick look

Prints stage-1 accuracy, the SSL loss per epoch and the sweep table; writes JSON; the full report (markdown + PNG
curve) is the bundle's ``<output_dir>/evaluate/report.md``. ``--override key=value`` sets any top-level bundle key
(values are Python literals), exactly as ``--key value`` does on the command line.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import time
from pathlib import Path
from typing import Any

import torch
from monai.bundle import ConfigParser

from monai_remedis.cli import bundle_config_files, bundle_dir

STAGES = ("pretrain", "ssl", "finetune", "evaluate")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="benchmarks/results/cxr_pipeline.json")
    p.add_argument("--output-dir", default="runs/bench_cxr", help="the bundle's output_dir")
    p.add_argument("--override", action="append", default=[], help="bundle key=value (repeatable)")
    return p.parse_args(argv)


def _overrides(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--override expects key=value, got '{pair}'.")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def load_bundle(output_dir: str, overrides: dict[str, Any]) -> ConfigParser:
    """The cxr bundle's whole-chain config, as ``python -m monai_remedis run cxr`` assembles it."""
    parser = ConfigParser()
    parser.read_config(bundle_config_files(bundle_dir("cxr"), "pipeline"))
    parser.update({"output_dir": output_dir, **overrides})
    return parser


def run_stages(parser: ConfigParser) -> tuple[dict[str, Any], dict[str, float]]:
    """Run the four stages in order; each reads the checkpoint the previous one wrote."""
    results, timings = {}, {}
    for stage in STAGES:
        start = time.perf_counter()
        results[stage] = parser.get_parsed_content(stage).run()
        timings[f"{stage}_s"] = time.perf_counter() - start
    return results, timings


def print_summary(parser: ConfigParser, results: dict[str, Any]) -> dict[str, Any]:
    """Print and return the numbers of the run: stage-1 accuracy, SSL loss curve, the sweep and its factors."""
    pre = results["pretrain"]
    ssl_history = json.loads(Path(results["ssl"]["history"]).read_text())
    ev = results["evaluate"]
    epochs = parser.get_parsed_content("pretrain_epochs")
    print(f"\nstage 1 (CIFAR-10 subset, {epochs} epochs): test accuracy {pre['val_accuracy']:.3f}")
    print("stage 2 SimCLR loss per epoch:", " ".join(f"{x:.3f}" for x in ssl_history["loss"]))
    print(f"stage 3 fine-tune (100% labels): best validation AUC {results['finetune']['best_val_auc']:.4f}")
    for name, evaluation in ev["evaluations"].items():
        ci = evaluation.get("auc_ci", {})
        print(
            f"stage 4 {name}: AUC {evaluation['metrics']['auc']:.4f} ({ci.get('low', 0):.4f}-{ci.get('high', 0):.4f})"
        )
    print(f"\n{'init':<10}{'labels':>8}{'AUC mean':>10}{'min':>8}{'max':>8}   (test AUC over seeds)")
    for row in ev["summary"]:
        print(
            f"{row['init']:<10}{100 * row['fraction']:>7.3g}%{row['auc_mean']:>10.4f}{row['auc_min']:>8.4f}"
            f"{row['auc_max']:>8.4f}"
        )
    for init, r in ev["label_reduction"].items():
        found = r["status"] != "not_reached"
        factor = f"{r['factor']:.3g}x [{r['low']:.3g}, {r['high']:.3g}]" if found else "not reached at any fraction"
        print(f"label-reduction factor {init}: {factor}")
    return {
        "stage1_test_accuracy": pre["val_accuracy"],
        "ssl_history": ssl_history,
        "finetune": results["finetune"],
        "evaluations": ev["evaluations"],
        "sweep_summary": ev["summary"],
        "label_reduction": ev["label_reduction"],
        "report": ev["report"],
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    overrides = _overrides(args.override)
    parser = load_bundle(args.output_dir, overrides)
    start_load = os.getloadavg()
    results, timings = run_stages(parser)
    summary = print_summary(parser, results)
    timings["total_s"] = sum(timings.values())
    print("timings (s):", {k: round(v) for k, v in timings.items()})
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "command": "python benchmarks/bench_cxr_pipeline.py " + " ".join(f"--override {o}" for o in args.override),
        "overrides": overrides,
        **summary,
        "timings_s": timings,
        "machine": {
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "loadavg_start": start_load,
            "loadavg_end": os.getloadavg(),
        },
    }
    out.write_text(json.dumps(record, indent=2, default=str))
    print(f"wrote {out} and {summary['report']}")


if __name__ == "__main__":
    main()
