"""SSL throughput and peak memory per strategy, and the framework's overhead over a hand-written PyTorch loop.

Part 1, per registered strategy (paper-default hyperparameters unless ``--strategy-kwargs`` says otherwise), each in
a fresh spawned process: one training step is the forward of both views, backward, a LARS step (the SSL stage's
default optimiser) and ``after_step``, on random ``(batch, 1, 28, 28)`` views around one backbone
(``bit_resnet18``). After ``--warmup`` untimed steps, ``--repeats`` repeats of ``--steps`` steps are timed. The step
time reported is the median over repeats, with the fastest and slowest repeat beside it so that noise stays
visible. Throughput is counted in source images per second (each image gives two views). Peak memory: on CPU,
``resource.getrusage(RUSAGE_SELF).ru_maxrss`` of that fresh process (the resident-set high-water mark, which sees
torch's allocations; ``tracemalloc`` does not), as the total and as the rise above the high-water mark after the
imports; on CUDA, ``torch.cuda.max_memory_allocated``. The data pipeline is not timed.

Part 2, in one process, on one batch and on identical initial weights: SimCLR steps run by :class:`SSLTrainer` (the
engine the SSL stage uses, with its per-step collapse logging, finiteness check and scalar read-back) against a
hand-written loop. That loop has its own ``Linear-BN-ReLU-Linear-BN`` head, with the strategy's head weights copied
in, its own NT-Xent, a copy of the backbone and its own SGD. It reads the loss back every step too. Before timing,
both compute the first loss on the same batch to show they do the same maths. Framework and bare rounds alternate
(A B A B ...) after a warm-up of each. The overhead is the ratio of the median step times.

    python benchmarks/bench_ssl.py --out benchmarks/results/ssl.json

Prints a table and writes JSON. The default run takes 3-4 minutes on 2 quiet CPU cores (Barlow Twins and VICReg,
with their 8192-wide expanders, take most of it). On a shared machine, check ``uptime`` first: other processes
inflate every number, and the min-max spread shows how much.
"""

from __future__ import annotations

import argparse
import copy
import json
import multiprocessing as mp
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from monai_remedis.backbones import create_backbone
from monai_remedis.engines.ssl_trainer import SSLTrainer
from monai_remedis.optim import build_optimizer
from monai_remedis.ssl import create_strategy, list_strategies

MEMORY_METHOD = {
    "cpu": "resource.getrusage(RUSAGE_SELF).ru_maxrss of a fresh spawned process per strategy",
    "cuda": "torch.cuda.max_memory_allocated after reset_peak_memory_stats",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="benchmarks/results/ssl.json")
    p.add_argument("--backbone", default="bit_resnet18")
    p.add_argument("--image-size", type=int, default=28)
    p.add_argument("--batch-size", type=int, default=32, help="images per step (two views each)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (per strategy, and per side of part 2)")
    p.add_argument("--steps", type=int, default=5, help="timed steps per repeat of a strategy")
    p.add_argument("--repeats", type=int, default=5, help="timed repeats per strategy (median reported)")
    p.add_argument("--rounds", type=int, default=7, help="A/B rounds of the overhead comparison")
    p.add_argument("--overhead-steps", type=int, default=10, help="steps per side of each overhead round")
    p.add_argument("--strategies", nargs="+", default=None, help="default: every registered strategy")
    p.add_argument(
        "--strategy-kwargs", type=json.loads, default={}, help='JSON, e.g. \'{"byol": {"hidden_dim": 512}}\''
    )
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu or cuda")
    return p.parse_args(argv)


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _views(args: argparse.Namespace, device: torch.device, seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    shape = (args.batch_size, 1, args.image_size, args.image_size)
    return [torch.rand(shape, generator=gen).to(device) for _ in range(2)]


def _maxrss_mb() -> float:
    """This process's resident-set high-water mark in MiB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def _timed(fn: Callable[[], None], device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def timing_summary(seconds: Sequence[float], scale: float = 1000.0) -> dict[str, float]:
    """Median, fastest and slowest of repeated timings (in ms by default), and how many there were."""
    if not seconds:
        raise ValueError("timing_summary: no timings.")
    return {
        "median": scale * statistics.median(seconds),
        "min": scale * min(seconds),
        "max": scale * max(seconds),
        "n": len(seconds),
    }


def paired_ratio(ours: Sequence[float], peer: Sequence[float]) -> dict[str, float]:
    """Our time over the peer's, from interleaved rounds: the ratio of the medians and the per-round range.

    Round ``i`` of both ran back to back, so a round's ratio sees the same machine load; its min and max show how
    much load moved the ratio.
    """
    if len(ours) != len(peer) or not ours:
        raise ValueError(f"paired_ratio: need the same, non-zero number of rounds ({len(ours)} vs {len(peer)}).")
    per_round = [a / b for a, b in zip(ours, peer, strict=True)]
    return {
        "ratio": statistics.median(ours) / statistics.median(peer),
        "round_ratio_min": min(per_round),
        "round_ratio_max": max(per_round),
    }


def measure_strategy(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Step time, throughput and peak memory of strategy ``name``; meant to run in a fresh process."""
    if args.threads:
        torch.set_num_threads(args.threads)
    device = _device(args.device)
    imports_peak_mb = _maxrss_mb()
    base_bytes = 0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base_bytes = torch.cuda.memory_allocated(device)
    torch.manual_seed(0)
    backbone = create_backbone(args.backbone, in_channels=1)
    kwargs = args.strategy_kwargs.get(name, {})
    strategy = create_strategy(name, backbone=backbone, **kwargs).to(device).train()
    optimizer = build_optimizer(strategy, "lars", lr=0.3 * args.batch_size / 256, weight_decay=1e-6)
    views = _views(args, device)
    total = args.warmup + args.repeats * args.steps
    done = 0

    def steps(n: int) -> None:
        nonlocal done
        for _ in range(n):
            optimizer.zero_grad(set_to_none=True)
            loss = strategy(views)["loss"]
            loss.backward()
            optimizer.step()
            strategy.after_step(progress=done / total)
            done += 1

    steps(args.warmup)
    repeat_s = [_timed(lambda: steps(args.steps), device) / args.steps for _ in range(args.repeats)]
    return step_result(repeat_s, args.batch_size, strategy, device, imports_peak_mb, base_bytes) | {"kwargs": kwargs}


def step_result(
    repeat_s: Sequence[float],
    batch_size: int,
    model: nn.Module,
    device: torch.device,
    imports_peak_mb: float,
    base_bytes: int = 0,
) -> dict[str, Any]:
    """Throughput (images/s at the median step), step ms (median, min, max), parameters and peak memory."""
    step = timing_summary(repeat_s)
    result = {
        "images_per_s": 1000 * batch_size / step["median"],
        "step_ms": step["median"],
        "step_ms_min": step["min"],
        "step_ms_max": step["max"],
        "repeats": step["n"],
        "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
    }
    if device.type == "cuda":
        result["peak_mem_mb"] = (torch.cuda.max_memory_allocated(device) - base_bytes) / 2**20
    else:
        peak = _maxrss_mb()
        result |= {"peak_rss_mb": peak, "peak_mem_mb": peak - imports_peak_mb}
    return result


def _worker(fn: Callable[..., dict[str, Any]], fn_args: tuple, queue: mp.Queue) -> None:
    try:
        queue.put(fn(*fn_args))
    except Exception as exc:  # noqa: BLE001 - report and go on with the other measurements
        queue.put({"error": f"{type(exc).__name__}: {exc}"})


def run_isolated(fn: Callable[..., dict[str, Any]], *fn_args: Any) -> dict[str, Any]:
    """``fn(*fn_args)`` in a fresh spawned process (its own memory high-water mark); an exception comes back as
    ``{"error": ...}``. ``fn`` must be importable (a module-level function)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_worker, args=(fn, fn_args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def measure_strategies(args: argparse.Namespace, names: list[str]) -> dict[str, dict[str, Any]]:
    """Each strategy in its own spawned process, so that its memory high-water mark is its own."""
    results = {}
    for name in names:
        results[name] = run_isolated(measure_strategy, name, args)
        print(f"  {name}: {_row(name, results[name])}", flush=True)
    return results


def bare_nt_xent(z0: torch.Tensor, z1: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent written out: cosine similarities of the 2B embeddings, self-pairs masked, positive = other view."""
    z = F.normalize(torch.cat([z0, z1], dim=0), dim=1)
    logits = z @ z.T / temperature
    n = z0.shape[0]
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(logits, targets)


def bare_head(in_dim: int, hidden_dim: int, out_dim: int) -> nn.Sequential:
    """SimCLR v2's two-layer head written out: Linear-BN-ReLU-Linear-BN (last BN without affine)."""
    return nn.Sequential(
        nn.Linear(in_dim, hidden_dim, bias=False),
        nn.BatchNorm1d(hidden_dim),
        nn.ReLU(inplace=True),
        nn.Linear(hidden_dim, out_dim, bias=False),
        nn.BatchNorm1d(out_dim, affine=False),
    )


PeerFactory = Callable[[nn.Module], tuple[nn.Module, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]]
"""Builds a peer SimCLR from our strategy: ``(backbone + head with the strategy's weights, loss of (z0, z1))``."""


def bare_peer(strategy: nn.Module) -> tuple[nn.Module, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]:
    """The hand-written SimCLR: a copy of the backbone, :func:`bare_head` with the strategy's head weights,
    :func:`bare_nt_xent`."""
    first, last = strategy.projector[0], strategy.projector[-2]
    head = bare_head(first.in_features, first.out_features, last.out_features)
    head.load_state_dict(strategy.projector.state_dict())
    temperature = strategy.criterion.temperature
    return nn.Sequential(copy.deepcopy(strategy.backbone), head), lambda z0, z1: bare_nt_xent(z0, z1, temperature)


def measure_overhead(args: argparse.Namespace, peers: dict[str, PeerFactory] | None = None) -> dict[str, Any]:
    """Median step time of SSLTrainer (SimCLR) vs each peer loop (default: the hand-written one), interleaved
    A B C A B C ... in this process, on one batch and identical initial weights.

    Returns the comparison with the hand-written loop at the top level (``bare_step_ms``, ``ratio``, ...) and every
    peer under ``peers``: step ms (median, min, max), images/s, ``ratio`` = ours / peer with its per-round range.
    """
    peers = peers or {"bare": bare_peer}
    if args.threads:
        torch.set_num_threads(args.threads)
    device = _device(args.device)
    torch.manual_seed(0)
    strategy = create_strategy("simclr", backbone=create_backbone(args.backbone, in_channels=1)).to(device).train()
    built = {name: make(strategy) for name, make in peers.items()}
    views = _views(args, device)
    batch = {"view_0": views[0].cpu(), "view_1": views[1].cpu()}

    def peer_loss(name: str) -> torch.Tensor:
        model, criterion = built[name]
        x0, x1 = (batch[k].to(device) for k in ("view_0", "view_1"))
        z = model(torch.cat([x0, x1], dim=0))
        return criterion(z[: x0.shape[0]], z[x0.shape[0] :])

    for model, _ in built.values():
        model.to(device).train()
    first_loss = {"ssl_trainer": float(strategy(views)["loss"].detach())}
    first_loss |= {name: float(peer_loss(name).detach()) for name in built}
    peer_optimizers = {
        name: torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9) for name, (model, _) in built.items()
    }
    optimizer = torch.optim.SGD(strategy.parameters(), lr=0.01, momentum=0.9)

    def peer_steps(name: str, n: int) -> None:
        for _ in range(n):
            loss = peer_loss(name)
            peer_optimizers[name].zero_grad(set_to_none=True)
            loss.backward()
            peer_optimizers[name].step()
            float(loss.detach())  # the trainer reads the loss back every step too

    def trainer(n: int) -> SSLTrainer:  # built once per length; run() on a finished engine starts it again
        return SSLTrainer(device, max_epochs=1, train_data_loader=[batch] * n, network=strategy, optimizer=optimizer)

    trainer(args.warmup).run()
    for name in built:
        peer_steps(name, args.warmup)
    n = args.overhead_steps
    timed_trainer = trainer(n)
    framework: list[float] = []
    rounds: dict[str, list[float]] = {name: [] for name in built}
    for _ in range(args.rounds):
        framework.append(_timed(timed_trainer.run, device) / n)
        for name in built:
            rounds[name].append(_timed(lambda name=name: peer_steps(name, n), device) / n)
    framework_s = statistics.median(framework)
    result: dict[str, Any] = {
        "first_step_loss": first_loss,
        "ssl_trainer_step_ms": 1000 * framework_s,
        "ssl_trainer_rounds_ms": [1000 * t for t in framework],
        "ssl_trainer_images_per_s": args.batch_size / framework_s,
        "peers": {},
    }
    for name, times in rounds.items():
        step = timing_summary(times)
        result["peers"][name] = {
            "step_ms": step["median"],
            "step_ms_min": step["min"],
            "step_ms_max": step["max"],
            "rounds_ms": [1000 * t for t in times],
            "images_per_s": 1000 * args.batch_size / step["median"],
            **paired_ratio(framework, times),
        }
    if "bare" in rounds:  # the keys earlier results (benchmarks/results/ssl.json) use
        bare = result["peers"]["bare"]
        result |= {
            "bare_step_ms": bare["step_ms"],
            "ratio": bare["ratio"],
            "bare_rounds_ms": bare["rounds_ms"],
            "bare_images_per_s": bare["images_per_s"],
        }
    return result


def _row(name: str, r: dict[str, Any]) -> str:
    if "error" in r:
        return f"{name:<14}  error: {r['error']}"
    spread = f"{r['step_ms_min']:.0f}-{r['step_ms_max']:.0f}"
    return (
        f"{name:<14}{r['images_per_s']:>10.1f}{r['step_ms']:>10.1f}{spread:>14}"
        f"{r['peak_mem_mb']:>10.0f}{r.get('peak_rss_mb', float('nan')):>10.0f}{r['params_m']:>10.2f}"
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    names = args.strategies or list_strategies()
    device = _device(args.device)
    started = time.perf_counter()
    load_before = os.getloadavg()
    print(
        f"SSL benchmark: {args.backbone}, 1x{args.image_size}x{args.image_size}, batch {args.batch_size}, {device}, "
        f"load average {load_before[0]:.2f}"
    )
    strategies = measure_strategies(args, names)
    overhead = measure_overhead(args)
    result = {
        "config": {k: v for k, v in vars(args).items() if k != "out"} | {"device": str(device)},
        "environment": {
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cpu": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "cuda": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
        },
        "memory_method": MEMORY_METHOD[device.type],
        "strategies": strategies,
        "simclr_overhead": overhead,
        "wall_s": time.perf_counter() - started,
    }
    peak_label = "peak MB" if device.type == "cuda" else "+peak MB"
    print(
        f"\n{'strategy':<14}{'images/s':>10}{'step ms':>10}{'min-max ms':>14}{peak_label:>10}{'RSS MB':>10}"
        f"{'params M':>10}"
    )
    for name, r in strategies.items():
        print(_row(name, r))
    o = overhead
    print(
        f"\nSimCLR first-step loss: SSLTrainer {o['first_step_loss']['ssl_trainer']:.6f}, "
        f"hand-written {o['first_step_loss']['bare']:.6f}"
    )
    print(
        f"SimCLR step (median of {args.rounds} interleaved rounds x {args.overhead_steps} steps): SSLTrainer "
        f"{o['ssl_trainer_step_ms']:.1f} ms vs hand-written loop {o['bare_step_ms']:.1f} ms -> ratio {o['ratio']:.3f}"
        f"  (total {result['wall_s']:.0f} s)"
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
