"""The evaluate stage's sweep with 1 worker (this process, every torch thread) against N spawned workers.

Times :meth:`~monai_remedis.stages.EvaluateStage.run_sweep` of a bundle's own evaluate config (its fine-tune
settings, real data) on the same jobs, rounds interleaved (1, N, 1, N, ...) in a fresh folder each time, so that a
drift of the machine's speed falls on both. It also reports how far the two settings' test AUCs are apart run by
run: the processes use different torch thread counts, so the results agree to float rounding, not bit for bit.

    python benchmarks/bench_sweep_workers.py --pretrain runs/cxr/pretrain/backbone.pt \\
        --ssl runs/cxr/ssl/backbone.pt --fractions 0.01 --seeds 0 1 --rounds 2

Writes ``benchmarks/results/sweep_workers.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from monai_remedis.configs import bundle_parser


def time_sweep(args: argparse.Namespace, workers: int, folder: Path) -> tuple[float, dict[str, float]]:
    """Seconds of one sweep with ``workers`` processes, and each run's test AUC by ``init/fraction/seed``."""
    shutil.rmtree(folder, ignore_errors=True)
    parser = bundle_parser(
        args.bundle,
        "evaluate",
        output_dir=str(folder),
        pretrain_checkpoint=args.pretrain,
        ssl_checkpoint=args.ssl,
        sweep_fractions=args.fractions,
        sweep_seeds=args.seeds,
        sweep_workers=workers,
        log_every=0,
    )
    stage = parser.get_parsed_content("evaluate")
    start = time.perf_counter()
    result = stage.run_sweep()
    seconds = time.perf_counter() - start
    aucs = {f"{r['init']}/{r['fraction']}/{r['seed']}": float(r["auc"]) for r in result["records"]}
    return seconds, aucs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", default="cxr")
    parser.add_argument("--pretrain", required=True, help="stage-1 backbone.pt (the baseline init)")
    parser.add_argument("--ssl", required=True, help="SSL backbone.pt (the REMEDIS init)")
    parser.add_argument("--fractions", nargs="+", type=float, default=[0.01])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--workers", type=int, default=2, help="N, the spawned workers compared with 1")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/sweep_workers.json")
    args = parser.parse_args(argv)

    scratch = Path(tempfile.mkdtemp(prefix="sweep_workers_"))
    times: dict[int, list[float]] = {1: [], args.workers: []}
    aucs: dict[int, dict[str, float]] = {}
    loads = [os.getloadavg()[0]]
    for round_ in range(args.rounds):
        for workers in (1, args.workers):
            seconds, aucs[workers] = time_sweep(args, workers, scratch / f"w{workers}_r{round_}")
            times[workers].append(seconds)
            loads.append(os.getloadavg()[0])
            print(f"round {round_}: {workers} worker(s) {seconds:.1f} s", flush=True)
    shutil.rmtree(scratch, ignore_errors=True)

    ratios = [a / b for a, b in zip(times[1], times[args.workers], strict=True)]
    gaps = [abs(aucs[1][k] - aucs[args.workers][k]) for k in aucs[1]]
    record: dict[str, Any] = {
        "what": f"{args.bundle} evaluate-stage sweep, {len(aucs[1])} fine-tunes, 1 worker vs {args.workers}",
        "command": "python benchmarks/bench_sweep_workers.py " + " ".join(argv or sys.argv[1:]),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "seconds": {str(k): v for k, v in times.items()},
        "speedup_by_round": ratios,
        "speedup_median": statistics.median(ratios),
        "max_test_auc_gap": max(gaps),
        "test_auc": {str(k): v for k, v in aucs.items()},
        "load_average": loads,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=1) + "\n")
    print("\n| workers | sweep seconds per round | speed-up vs 1 |\n|---:|---|---:|")
    print(f"| 1 | {', '.join(f'{t:.0f}' for t in times[1])} | 1 |")
    print(
        f"| {args.workers} | {', '.join(f'{t:.0f}' for t in times[args.workers])} | "
        f"{statistics.median(ratios):.2f} (rounds: {', '.join(f'{r:.2f}' for r in ratios)}) |"
    )
    print(f"largest test-AUC gap between the settings, run by run: {max(gaps):.2e}; load {loads}")


if __name__ == "__main__":
    main()
