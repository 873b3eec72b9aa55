"""Throughput, measured: SSL and fine-tune images/s, the data loader alone, peak memory, peers and scaling.

Built on :mod:`bench_ssl` (isolated step timing, peak memory, the SimCLR peer comparison) and :mod:`bench_data`
(the bundles' real transforms, decoded once). Sections (``--sections``, all by default):

* ``grid``: backbone x input size x strategy. One SSL training step (both views forward, backward, LARS,
  ``after_step``: :func:`bench_ssl.measure_strategy`) and one fine-tune step (classifier forward, cross-entropy,
  backward, AdamW: :func:`measure_finetune`), each in a fresh spawned process on random ``(batch, 1, s, s)``
  images: images/s at the median step, the fastest and slowest repeat, and the peak memory of that process (CPU:
  ``ru_maxrss`` above the imports; CUDA: ``max_memory_allocated``). Strategies keep their paper defaults (Barlow
  Twins' 8192-wide expander dominates its step whatever the backbone).
* ``data``: the CXR bundle's ``ssl_transform`` (two views) and ``train_transform`` on real PneumoniaMNIST through
  the stages' own loader (:func:`~monai_remedis.engines.runtime.make_loader`, ``num_workers=0``), as the stages
  run them (deterministic head decoded once, :func:`~monai_remedis.evaluation.cache.decode_once`) and undecoded.
* ``peers``: the SimCLR step of our :class:`~monai_remedis.engines.ssl_trainer.SSLTrainer` against a hand-written
  PyTorch loop and against lightly's SimCLR (``lightly.loss.NTXentLoss`` + ``SimCLRProjectionHead``, the
  strategy's head weights copied in), same backbone, batch, views and SGD, rounds interleaved in one process
  (:func:`bench_ssl.measure_overhead`). Ratio = our step time / theirs (below 1: ours is faster).
* ``epochs``: one SSL epoch (SimCLR, real images, bundle augmentations, the stage's loader and trainer) against the
  dataset size (``--sizes``).
* ``ddp``: the same epoch under ``torch.distributed.run`` with 1 and 2 processes (gloo on CPU, NCCL on CUDA; the
  global batch stays fixed and is split over ranks, as the SSL stage does).

Every timing is the median over repeats with its min and max; ``os.getloadavg()`` is recorded before and after
each section, with the section's settings and time: the machine may be shared, and load inflates every number.
Sections not asked for are kept from an existing ``--out`` file, so a long run can be split::

    OMP_NUM_THREADS=1 flock /tmp/heavy.lock python benchmarks/bench_throughput.py --threads 1 --sections grid
    OMP_NUM_THREADS=1 flock /tmp/heavy.lock python benchmarks/bench_throughput.py --threads 1 --sections data peers
    OMP_NUM_THREADS=1 flock /tmp/heavy.lock python benchmarks/bench_throughput.py --threads 1 --sections epochs ddp

On 2 CPU cores shared with other jobs (load average 4-7) the grid took 3-4 minutes per backbone, data and peers
3.4, epochs 4 and ddp 1.7 (both ``--repeats 2``): about 17 minutes in all.

GPU path, written but NOT run (no GPU on the machine these numbers come from): ``--device cuda`` runs the grid, the
peers and the epochs on the GPU (peak memory from ``torch.cuda.max_memory_allocated``) and DDP over NCCL;
``--amp`` (bf16 autocast), ``--channels-last`` and ``--compile`` (``torch.compile``) apply to the fine-tune step.
Writes ``benchmarks/results/throughput.json`` and prints a table; ``benchmarks/README.md`` has the numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_ssl, bench_data: scripts beside this one

import bench_data  # noqa: E402
import bench_ssl  # noqa: E402

from monai_remedis.backbones import create_backbone  # noqa: E402
from monai_remedis.optim import build_optimizer  # noqa: E402

SECTIONS = ("grid", "data", "peers", "epochs", "ddp")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="benchmarks/results/throughput.json")
    p.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=SECTIONS)
    p.add_argument("--backbones", nargs="+", default=["bit_resnet18", "bit_resnet18_small"])
    p.add_argument("--image-sizes", nargs="+", type=int, default=[28, 64])
    p.add_argument("--strategies", nargs="+", default=["simclr", "byol", "barlow_twins"])
    p.add_argument("--batch-size", type=int, default=32, help="images per step in the grid and peers")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps before timing (grid, peers)")
    p.add_argument("--steps", type=int, default=1, help="timed steps per repeat (grid)")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats (grid, data, epochs, ddp)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds of the peer comparison")
    p.add_argument("--peer-steps", type=int, default=10, help="steps per side of each peer round")
    p.add_argument("--sizes", nargs="+", type=int, default=[256, 512, 1024], help="dataset sizes (epochs)")
    p.add_argument("--epoch-batch-size", type=int, default=128, help="global batch of the epochs and ddp sections")
    p.add_argument("--ddp-items", type=int, default=512, help="dataset size of the ddp section")
    p.add_argument("--nprocs", nargs="+", type=int, default=[1, 2], help="process counts of the ddp section")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads per process")
    p.add_argument("--device", default="cpu", help="cpu, or cuda (GPU path: written, not run here)")
    p.add_argument("--amp", action="store_true", help="CUDA: bf16 autocast in the fine-tune step")
    p.add_argument("--channels-last", action="store_true", help="CUDA: channels_last memory format")
    p.add_argument("--compile", action="store_true", help="CUDA: torch.compile the fine-tune model")
    p.add_argument("--markdown", action="store_true", help="print the tables of --out as Markdown and exit")
    p.add_argument("--epoch-worker", default=None, help=argparse.SUPPRESS)  # internal: one torchrun rank
    return p.parse_args(argv)


def _ssl_args(args: argparse.Namespace, backbone: str, image_size: int) -> argparse.Namespace:
    """The :mod:`bench_ssl` settings of one grid cell (or of the peer comparison)."""
    ssl_args = bench_ssl.parse_args([])
    for key in ("batch_size", "warmup", "steps", "repeats", "threads", "device"):
        setattr(ssl_args, key, getattr(args, key))
    ssl_args.backbone, ssl_args.image_size = backbone, image_size
    ssl_args.rounds, ssl_args.overhead_steps = args.rounds, args.peer_steps
    return ssl_args


def load_summary(before: Sequence[float], after: Sequence[float]) -> dict[str, list[float]]:
    """The 1/5/15-minute load averages before and after a section, rounded."""
    return {"before": [round(v, 2) for v in before], "after": [round(v, 2) for v in after]}


# ---- grid: fine-tune step (the SSL step is bench_ssl.measure_strategy) -----------------------------------------


def measure_finetune(args: argparse.Namespace, backbone_name: str, image_size: int) -> dict[str, Any]:
    """Fine-tune step time, throughput and peak memory; meant to run in a fresh process (``run_isolated``)."""
    from monai_remedis.models.classifier import Classifier

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    imports_peak_mb = bench_ssl._maxrss_mb()
    base_bytes = 0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base_bytes = torch.cuda.memory_allocated(device)
    torch.manual_seed(0)
    model = Classifier(create_backbone(backbone_name, in_channels=1), num_classes=2).to(device).train()
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    step_model = torch.compile(model) if args.compile else model
    optimizer = build_optimizer(model, "adamw", 3e-4, 0.05)
    gen = torch.Generator().manual_seed(0)
    images = torch.rand((args.batch_size, 1, image_size, image_size), generator=gen)
    images = images.to(device, memory_format=memory_format)
    labels = torch.randint(0, 2, (args.batch_size,), generator=gen).to(device)
    criterion = nn.CrossEntropyLoss()
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if args.amp else contextlib.nullcontext()

    def steps(n: int) -> None:
        for _ in range(n):
            optimizer.zero_grad(set_to_none=True)
            with autocast:
                loss = criterion(step_model(images), labels)
            loss.backward()
            optimizer.step()

    steps(args.warmup)
    repeat_s = [bench_ssl._timed(lambda: steps(args.steps), device) / args.steps for _ in range(args.repeats)]
    return bench_ssl.step_result(repeat_s, args.batch_size, model, device, imports_peak_mb, base_bytes)


def grid_key(row: dict[str, Any]) -> tuple[str, int, str]:
    return row["backbone"], row["image_size"], row["kind"]


def merge_rows(earlier: Sequence[dict[str, Any]], new: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Grid rows of an earlier run with the new ones replacing those of the same (backbone, size, step)."""
    replaced = {grid_key(r) for r in new}
    return [r for r in earlier if grid_key(r) not in replaced] + list(new)


def measure_grid(args: argparse.Namespace, save: Callable[[list[dict[str, Any]]], None]) -> list[dict[str, Any]]:
    """Every grid cell in its own process; ``save`` is called after each, so an interrupted run keeps its rows."""
    rows: list[dict[str, Any]] = []

    def add(row: dict[str, Any]) -> None:
        rows.append(row | {"load_1m": round(os.getloadavg()[0], 2)})
        print(f"  {_grid_row(rows[-1])}", flush=True)
        save(rows)

    for backbone in args.backbones:
        for size in args.image_sizes:
            cell = {"backbone": backbone, "image_size": size}
            add(cell | {"kind": "finetune"} | bench_ssl.run_isolated(measure_finetune, args, backbone, size))
            ssl_args = _ssl_args(args, backbone, size)
            for name in args.strategies:
                add(cell | {"kind": name} | bench_ssl.run_isolated(bench_ssl.measure_strategy, name, ssl_args))
    return rows


# ---- data: the loader alone ------------------------------------------------------------------------------------


def measure_data(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Images/s of the CXR bundle's transforms through the stages' loader (decoded once, and not)."""
    from monai.data import Dataset

    from monai_remedis.engines.runtime import make_loader
    from monai_remedis.evaluation.cache import decode_once

    rows = []
    for size in args.image_sizes:
        parser = bench_data._bundle("cxr", size)
        items = parser.get_parsed_content("checked_datalist")["train"][: args.epoch_batch_size * 2]
        for key in ("ssl_transform", "train_transform"):
            transform = parser.get_parsed_content(key)
            variants = {"undecoded": (list(items), transform), "decoded": decode_once(items, transform)}
            times: dict[str, list[float]] = {mode: [] for mode in variants}
            for _ in range(args.repeats):  # interleaved modes
                for mode, (data, t) in variants.items():
                    loader = make_loader(Dataset(data, t), args.epoch_batch_size, shuffle=True)
                    start = time.perf_counter()
                    for _batch in loader:
                        pass
                    times[mode].append(time.perf_counter() - start)
            for mode, seconds in times.items():
                per_pass = bench_ssl.timing_summary(seconds, scale=1.0)
                rows.append(
                    {
                        "transform": key,
                        "image_size": size,
                        "mode": mode,
                        "items": len(items),
                        "images_per_s": len(items) / per_pass["median"],
                        "images_per_s_min": len(items) / per_pass["max"],
                        "images_per_s_max": len(items) / per_pass["min"],
                        "repeats": per_pass["n"],
                    }
                )
                print(f"  {key} {size}px {mode}: {rows[-1]['images_per_s']:.0f} images/s", flush=True)
    return rows


# ---- peers: lightly's SimCLR -----------------------------------------------------------------------------------


def lightly_peer(strategy: nn.Module) -> tuple[nn.Module, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]:
    """lightly's SimCLR on a copy of our backbone: ``SimCLRProjectionHead`` (our head's weights copied in; its
    last BatchNorm has an affine part, initialised to the identity) and ``NTXentLoss`` at our temperature."""
    import copy

    from lightly.loss import NTXentLoss
    from lightly.models.modules import SimCLRProjectionHead

    ours = strategy.projector
    head = SimCLRProjectionHead(ours[0].in_features, ours[0].out_features, ours[3].out_features, num_layers=2)
    for index in (0, 1, 3, 4):  # Linear, BatchNorm, (ReLU), Linear, BatchNorm
        head.layers[index].load_state_dict(ours[index].state_dict(), strict=False)
    criterion = NTXentLoss(temperature=strategy.criterion.temperature)
    return nn.Sequential(copy.deepcopy(strategy.backbone), head), criterion


def measure_peers(args: argparse.Namespace) -> dict[str, Any]:
    """:func:`bench_ssl.measure_overhead` with the hand-written loop and lightly as peers (one process)."""
    ssl_args = _ssl_args(args, args.backbones[0], args.image_sizes[0])
    peers: dict[str, bench_ssl.PeerFactory] = {"bare": bench_ssl.bare_peer}
    try:
        import lightly

        peers["lightly"] = lightly_peer
        version = lightly.__version__
    except ImportError:
        version = None
        print("  lightly is not installed (pip install -e .[bench]): comparing with the hand-written loop only")
    result = bench_ssl.run_isolated(bench_ssl.measure_overhead, ssl_args, peers)
    return result | {"backbone": ssl_args.backbone, "image_size": ssl_args.image_size, "lightly_version": version}


# ---- epochs: against dataset size and process count ------------------------------------------------------------


def epoch_worker(spec: dict[str, Any]) -> None:
    """One rank of an SSL epoch benchmark (run under ``torch.distributed.run``); rank 0 writes ``spec["out"]``."""
    import ignite.distributed as idist
    from ignite.engine import Events
    from monai.data import Dataset

    from monai_remedis.configs import bundle_parser
    from monai_remedis.engines.runtime import make_loader, resolve_device
    from monai_remedis.engines.ssl_trainer import SSLTrainer
    from monai_remedis.evaluation.cache import decode_once
    from monai_remedis.ssl import create_strategy

    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    device = resolve_device("auto" if spec["device"] == "cuda" else "cpu")
    if spec["device"] == "cpu":
        from monai_remedis.engines.runtime import ensure_distributed

        ensure_distributed()  # gloo when WORLD_SIZE > 1
    parser = bundle_parser("cxr", limit=spec["items"])
    items = parser.get_parsed_content("checked_datalist")["train"][: spec["items"]]
    data, transform = decode_once(items, parser.get_parsed_content("ssl_transform"))
    loader = make_loader(Dataset(data, transform), spec["batch_size"], shuffle=True, drop_last=True)
    torch.manual_seed(0)
    strategy = create_strategy("simclr", backbone=create_backbone(spec["backbone"], in_channels=1)).to(device)
    network = idist.auto_model(strategy)
    optimizer = build_optimizer(strategy, "adamw", 1e-3, 1e-6)
    trainer = SSLTrainer(device, spec["epochs"] + 1, loader, network, optimizer)
    trainer.logger.setLevel("WARNING")
    marks: list[float] = []
    trainer.add_event_handler(Events.EPOCH_STARTED, lambda _: marks.append(time.perf_counter()))
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda _: marks.append(time.perf_counter()))
    trainer.run()
    if idist.get_rank() == 0:
        epoch_s = [marks[i + 1] - marks[i] for i in range(2, len(marks), 2)]  # epoch 1 (warm-up) left out
        out = {"epoch_s": epoch_s, "steps_per_epoch": len(loader), "world_size": idist.get_world_size()}
        Path(spec["out"]).write_text(json.dumps(out))
    if idist.get_world_size() > 1:
        idist.barrier()
        torch.distributed.destroy_process_group()


def run_epochs(args: argparse.Namespace, items: int, nproc: int) -> dict[str, Any]:
    """Time ``args.repeats`` SSL epochs (after one warm-up epoch) of ``items`` images with ``nproc`` processes."""
    with tempfile.TemporaryDirectory() as tmp:
        spec = {
            "items": items,
            "batch_size": args.epoch_batch_size,
            "backbone": args.backbones[0],
            "epochs": args.repeats,
            "threads": args.threads,
            "device": args.device,
            "out": str(Path(tmp) / "epochs.json"),
        }
        command = [
            sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
            __file__, "--epoch-worker", json.dumps(spec),
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            return {"items": items, "nproc": nproc, "error": done.stderr[-2000:]}
        measured = json.loads(Path(spec["out"]).read_text())
    epoch = bench_ssl.timing_summary(measured["epoch_s"], scale=1.0)
    return {
        "items": items,
        "nproc": nproc,
        "steps_per_epoch": measured["steps_per_epoch"],
        "epoch_s": epoch["median"],
        "epoch_s_min": epoch["min"],
        "epoch_s_max": epoch["max"],
        "repeats": epoch["n"],
        "images_per_s": items / epoch["median"],
    }


def scaling(rows: Sequence[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Each row's epoch time relative to the first row's, against the ratio of ``key`` (size or processes)."""
    first = rows[0]
    return [
        {key: r[key], "time_ratio": r["epoch_s"] / first["epoch_s"], f"{key}_ratio": r[key] / first[key]}
        for r in rows
        if "epoch_s" in r
    ]


# ---- report ----------------------------------------------------------------------------------------------------


def _grid_row(r: dict[str, Any]) -> str:
    head = f"{r['backbone']:<20}{r['image_size']:>5}  {r['kind']:<14}"
    if "error" in r:
        return head + f"error: {r['error']}"
    spread = f"{r['step_ms_min']:.0f}-{r['step_ms_max']:.0f}"
    return head + f"{r['images_per_s']:>10.1f}{r['step_ms']:>10.0f}{spread:>14}{r['peak_mem_mb']:>10.0f}"


def print_report(result: dict[str, Any]) -> None:
    if "grid" in result:
        print(f"\n{'backbone':<20}{'px':>5}  {'step':<14}{'images/s':>10}{'step ms':>10}{'min-max ms':>14}{'+MB':>10}")
        for r in result["grid"]["rows"]:
            print(_grid_row(r))
    if "peers" in result:
        p = result["peers"]
        print(f"\nSimCLR step, {p['backbone']} {p['image_size']} px: ours {p['ssl_trainer_step_ms']:.1f} ms")
        for name, peer in p.get("peers", {}).items():
            print(
                f"  vs {name:<8} {peer['step_ms']:.1f} ms -> ratio {peer['ratio']:.3f} "
                f"(rounds {peer['round_ratio_min']:.3f}-{peer['round_ratio_max']:.3f}); first-step loss "
                f"{p['first_step_loss'][name]:.6f} vs ours {p['first_step_loss']['ssl_trainer']:.6f}"
            )
    for section, key in (("epochs", "items"), ("ddp", "nproc")):
        for r in result.get(section, {}).get("rows", []):
            if "error" in r:
                print(f"{section} {key}={r[key]}: error {r['error'][-300:]}")
            else:
                print(
                    f"{section}: {key}={r[key]}: {r['epoch_s']:.2f} s/epoch ({r['epoch_s_min']:.2f}-"
                    f"{r['epoch_s_max']:.2f}), {r['images_per_s']:.0f} images/s"
                )


def _load(section: dict[str, Any]) -> str:
    before, after = section["load_average"]["before"][0], section["load_average"]["after"][0]
    return f"load average {before:.1f} -> {after:.1f}"


def markdown(result: dict[str, Any]) -> str:
    """The measured sections of a result as Markdown tables (what ``benchmarks/README.md`` shows)."""
    lines: list[str] = []
    if "grid" in result:
        lines += [
            f"Training step, batch {result['grid']['config']['batch_size']}, random images (load: the 1-minute load "
            "average when the row was measured):",
            "",
            "| backbone | px | step | images/s | step ms (min-max) | peak MB above imports | load |",
            "|---|---:|---|---:|---:|---:|---:|",
        ]
        for r in result["grid"]["rows"]:
            if "error" not in r:
                lines.append(
                    f"| {r['backbone']} | {r['image_size']} | {r['kind']} | {r['images_per_s']:.1f} | "
                    f"{r['step_ms']:.0f} ({r['step_ms_min']:.0f}-{r['step_ms_max']:.0f}) | {r['peak_mem_mb']:.0f} | "
                    f"{r.get('load_1m', float('nan')):.1f} |"
                )
        lines.append("")
    if "data" in result:
        lines += [
            f"Data loader alone, CXR bundle transforms on real images ({_load(result['data'])}):",
            "",
            "| transform | px | mode | images/s (min-max) |",
            "|---|---:|---|---:|",
        ]
        for r in result["data"]["rows"]:
            lines.append(
                f"| {r['transform']} | {r['image_size']} | {r['mode']} | {r['images_per_s']:.0f} "
                f"({r['images_per_s_min']:.0f}-{r['images_per_s_max']:.0f}) |"
            )
        lines.append("")
    if "peers" in result and "peers" in result["peers"]:
        p = result["peers"]
        lines += [
            f"SimCLR step against peers, {p['backbone']} at {p['image_size']} px, batch "
            f"{p['config']['batch_size']}, {p['config']['rounds']} interleaved rounds x {p['config']['peer_steps']} "
            f"steps ({_load(p)}); ours (SSLTrainer): {p['ssl_trainer_step_ms']:.0f} ms/step:",
            "",
            "| peer | peer ms/step (min-max) | ratio ours/peer (per-round min-max) | first-step loss peer / ours |",
            "|---|---:|---:|---:|",
        ]
        for name, peer in p["peers"].items():
            lines.append(
                f"| {name} | {peer['step_ms']:.0f} ({peer['step_ms_min']:.0f}-{peer['step_ms_max']:.0f}) | "
                f"{peer['ratio']:.3f} ({peer['round_ratio_min']:.3f}-{peer['round_ratio_max']:.3f}) | "
                f"{p['first_step_loss'][name]:.6f} / {p['first_step_loss']['ssl_trainer']:.6f} |"
            )
        lines.append("")
    for section, key, label in (("epochs", "items", "images"), ("ddp", "nproc", "processes")):
        if section not in result:
            continue
        block = result[section]
        lines += [
            f"SSL epoch (SimCLR, {block['config']['backbones'][0]}, global batch "
            f"{block['config']['epoch_batch_size']}) against {label} ({_load(block)}):",
            "",
            f"| {label} | s/epoch (min-max) | images/s | time ratio | {label} ratio |",
            "|---:|---:|---:|---:|---:|",
        ]
        ratios = {r[key]: r for r in block["scaling"]}
        for r in block["rows"]:
            if "error" in r:
                lines.append(f"| {r[key]} | error | | | |")
                continue
            s = ratios[r[key]]
            lines.append(
                f"| {r[key]} | {r['epoch_s']:.2f} ({r['epoch_s_min']:.2f}-{r['epoch_s_max']:.2f}) | "
                f"{r['images_per_s']:.0f} | {s['time_ratio']:.2f} | {s[f'{key}_ratio']:.2f} |"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.epoch_worker:
        epoch_worker(json.loads(args.epoch_worker))
        return {}
    if args.markdown:
        print(markdown(json.loads(Path(args.out).read_text())))
        return {}
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    out = Path(args.out)
    earlier = json.loads(out.read_text()) if out.is_file() else {}
    config = {k: v for k, v in vars(args).items() if k not in ("out", "epoch_worker", "markdown")}
    result: dict[str, Any] = {
        **{section: earlier[section] for section in SECTIONS if section in earlier},  # kept unless re-measured
        "config": config,
        "environment": {
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cpu": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "cuda": torch.cuda.get_device_name() if args.device == "cuda" else None,
        },
        "memory_method": bench_ssl.MEMORY_METHOD[torch.device(args.device).type],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    earlier_rows = earlier.get("grid", {}).get("rows", [])

    def save_grid(rows: list[dict[str, Any]]) -> None:
        result["grid"] = {"rows": merge_rows(earlier_rows, rows), "partial": True, "config": config}
        out.write_text(json.dumps(result, indent=2))

    runners: dict[str, Callable[[], Any]] = {
        "grid": lambda: {"rows": merge_rows(earlier_rows, measure_grid(args, save_grid)), "partial": False},
        "data": lambda: {"rows": measure_data(args)},
        "peers": lambda: measure_peers(args),
        "epochs": lambda: _with_scaling([run_epochs(args, n, 1) for n in args.sizes], "items"),
        "ddp": lambda: _with_scaling([run_epochs(args, args.ddp_items, k) for k in args.nprocs], "nproc"),
    }
    for section in args.sections:
        print(f"[{section}] load average {os.getloadavg()[0]:.2f}", flush=True)
        before, t0 = os.getloadavg(), time.perf_counter()
        result[section] = runners[section]()
        result[section] |= {
            "load_average": load_summary(before, os.getloadavg()),
            "wall_s": time.perf_counter() - t0,
            "measured_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "config": config,
        }
        out.write_text(json.dumps(result, indent=2))  # after each section: a timeout keeps what was measured
    result["wall_s"] = time.perf_counter() - started
    print_report(result)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out} ({result['wall_s']:.0f} s this run; sections not asked for are kept from the earlier file)")
    return result


def _with_scaling(rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    return {"rows": rows, "scaling": scaling(rows, key)}


if __name__ == "__main__":
    main()
