"""Choose a fine-tuning setting on validation data only: best validation AUC of full fine-tunes per setting.

Each run is the bundle's own fine-tune stage (``python -m monai_remedis run <bundle> finetune``) with the sweep's
pairing (label subset and training seed = the job's seed), so a setting chosen here is the one the sweep then runs.
Only the training and validation splits are read: the test and OOD sets are left for the final report.
``--dataset aptos`` (fundus) fine-tunes and validates on APTOS 2019's own training and validation split, the one
``bench_results.py`` uses for the RetinaMNIST -> APTOS scenario (its test split is never read here).

    python benchmarks/select_finetune.py --bundle cxr \\
        --inits "remedis=runs/cxr/ssl/backbone.pt" "baseline=runs/cxr/pretrain/backbone.pt" \\
        --fractions 0.01 0.1 --seeds 0 1 2 --set finetune_backbone_lr_scale=1.0,0.1 \\
        --out benchmarks/results/select_finetune_cxr.json

Writes the JSON (every run's best validation AUC and step budget) and prints a markdown table of seed means.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from monai_remedis.engines.fingerprint import file_digest


def parse_pairs(items: list[str]) -> dict[str, str]:
    """``name=value`` strings to a dict."""
    pairs = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"expected name=value, got '{item}'")
        pairs[name] = value
    return pairs


def settings_grid(overrides: list[str]) -> list[dict[str, str]]:
    """``key=v1,v2`` overrides to every combination of their values (one empty setting when none are given)."""
    grid = {key: values.split(",") for key, values in parse_pairs(overrides).items()}
    return [dict(zip(grid, combo, strict=True)) for combo in itertools.product(*grid.values())] or [{}]


# Datalist overrides for ``--dataset``. The fundus overlay's APTOS split (``@aptos``) is the one
# benchmarks/bench_results.py uses (aptos_splits' defaults).
DATASET_OVERRIDES = {
    "bundle": [],
    "aptos": ["--overlay", "evaluate_aptos.yaml", "--datalist", "$@aptos"],
}


JOB_FILE = "select_job.json"  # beside a finished run: the command and the init's SHA-256 that made it


def check_reusable(run_root: Path, made_by: dict[str, Any]) -> None:
    """A finished run is reused only when the same command made it from the same init weights.

    Raises:
        SystemExit: naming the folder and what differs (another init file under the same name, another setting).
    """
    stored_path = run_root / JOB_FILE
    stored = json.loads(stored_path.read_text()) if stored_path.is_file() else None
    if stored == made_by:
        return
    what = "it has no record of what made it" if stored is None else "it was made by " + (
        "other init weights" if stored["weights_sha256"] != made_by["weights_sha256"] else "another command"
    )  # fmt: skip
    raise SystemExit(
        f"{run_root} holds a finished fine-tune, but {what}; give another --work-dir or remove the folder."
    )


def run_one(args: argparse.Namespace, job: dict[str, Any]) -> dict[str, Any]:
    """Fine-tune one job in a subprocess (one thread) and return its best validation AUC."""
    run_root = run_folder(args, job)
    metrics_path = run_root / "finetune" / "metrics.json"
    made_by = job_record(args, job)
    command = made_by["command"]
    if metrics_path.is_file():
        check_reusable(run_root, made_by)
    else:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        log = run_root.parent / f"{run_root.name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("w") as handle:
            code = subprocess.call([sys.executable, *command], stdout=handle, stderr=subprocess.STDOUT, env=env)
        if code != 0:
            raise SystemExit(f"fine-tune failed (exit {code}); see {log}")
        (run_root / JOB_FILE).write_text(json.dumps(made_by, indent=2))
    if not args.keep_checkpoints:  # resume checkpoints: about 256 MB per run
        shutil.rmtree(run_root / "finetune" / "checkpoints", ignore_errors=True)
    metrics = json.loads(metrics_path.read_text())
    history = json.loads((run_root / "finetune" / "history.json").read_text())
    return {**job, "best_val_auc": metrics["best_val_auc"], "best_epoch": metrics["best_epoch"],
            "epochs": len(history["epoch"]), "num_labels": metrics["num_labels"]}  # fmt: skip


def run_folder(args: argparse.Namespace, job: dict[str, Any]) -> Path:
    """``<work-dir>/<setting>/<init>/f<fraction>_s<seed>``."""
    tag = "_".join(f"{k}{v}" for k, v in job["setting"].items())
    return Path(args.work_dir) / tag / job["init"] / f"f{job['fraction']:g}_s{job['seed']}"


def job_record(args: argparse.Namespace, job: dict[str, Any]) -> dict[str, Any]:
    """What makes a job's run: the fine-tune command (after ``python``) and the init's SHA-256."""
    command = [
        "-m", "monai_remedis", "run", args.bundle, "finetune",
        "--output_dir", str(run_folder(args, job)), "--finetune_init", job["weights"],
        "--label_fraction", str(job["fraction"]), "--fraction_seed", str(job["seed"]), "--seed", str(job["seed"]),
        "--log_every", "0", "--finetune#export_model", "$None",
    ]  # fmt: skip
    command += DATASET_OVERRIDES[args.dataset]
    for key, value in job["setting"].items():
        command += [f"--{key}", value]
    return {"command": command, "weights_sha256": file_digest(job["weights"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", default="cxr")
    parser.add_argument(
        "--dataset", choices=sorted(DATASET_OVERRIDES), default="bundle",
        help="whose train/val split: the bundle's own, or APTOS 2019's (fundus bundle; the bench's split)",
    )  # fmt: skip
    parser.add_argument("--inits", nargs="+", required=True, help="name=backbone.pt")
    parser.add_argument("--fractions", nargs="+", type=float, default=[0.01, 0.1])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--set", nargs="+", default=[], help="key=v1,v2: config overrides to compare")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--work-dir", default="runs/select_finetune")
    parser.add_argument("--out", required=True)
    parser.add_argument("--keep-checkpoints", action="store_true", help="keep each run's resume checkpoints")
    args = parser.parse_args()

    inits = parse_pairs(args.inits)
    settings = settings_grid(args.set)
    jobs = [
        {"setting": setting, "init": init, "weights": weights, "fraction": fraction, "seed": seed}
        for setting in settings
        for fraction in args.fractions
        for seed in args.seeds
        for init, weights in inits.items()
    ]
    with ThreadPoolExecutor(args.workers) as pool:
        records = list(pool.map(lambda job: run_one(args, job), jobs))

    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    summary = {"bundle": args.bundle, "dataset": args.dataset, "inits": inits, "runs": records}
    Path(args.out).write_text(json.dumps(summary, indent=2))
    print("| setting | fraction | " + " | ".join(inits) + " | " + " - ".join(list(inits)[:2]) + " |")
    print("|---|---|" + "---|" * (len(inits) + 1))
    for setting, fraction in itertools.product(settings, args.fractions):
        rows = [r for r in records if r["setting"] == setting and r["fraction"] == fraction]
        by_init = {i: [r["best_val_auc"] for r in rows if r["init"] == i] for i in inits}
        means = [statistics.mean(v) for v in by_init.values()]
        label = ", ".join(f"{k}={v}" for k, v in setting.items()) or "default"
        cells = " | ".join(
            f"{m:.4f} ({', '.join(f'{x:.3f}' for x in v)})" for m, v in zip(means, by_init.values(), strict=True)
        )
        difference = f"{means[0] - means[1]:+.4f}" if len(means) > 1 else ""
        print(f"| {label} | {fraction:g} | {cells} | {difference} |")


if __name__ == "__main__":
    main()
