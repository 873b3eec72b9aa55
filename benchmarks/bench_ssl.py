"""SSL throughput and peak memory per strategy, and the framework's overhead over a bare PyTorch loop.

Part 1, per registered strategy (paper-default hyperparameters unless ``--strategy-kwargs`` says otherwise): one
training step = forward of both views, backward, LARS step (the SSL stage's default optimiser) and
``after_step``, on random ``(batch, 1, 28, 28)`` views around one backbone (``bit_resnet18``). Reported: source
images per second (each image is two views) and the peak memory the step adds (CPU: the process's resident-set
high-water mark above its size before the model was built, each strategy in a fresh forked process; CUDA:
``torch.cuda.max_memory_allocated``). The data pipeline is not timed.

Part 2, in one process on one model and batch: SimCLR steps run by :class:`SSLTrainer` (the engine the SSL stage
uses, including its per-step collapse logging) against a bare loop doing the same math by hand (backbone,
projection head, NT-Xent, SGD), interleaved over several rounds; the ratio of median step times is the
framework's overhead.

    python benchmarks/bench_ssl.py --out benchmarks/results/ssl.json

Prints a table and writes JSON. The default run takes about 2 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from monai_remedis.backbones import create_backbone
from monai_remedis.engines.ssl_trainer import SSLTrainer
from monai_remedis.optim import build_optimizer
from monai_remedis.ssl import create_strategy, list_strategies


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="benchmarks/results/ssl.json")
    p.add_argument("--backbone", default="bit_resnet18")
    p.add_argument("--image-size", type=int, default=28)
    p.add_argument("--batch-size", type=int, default=32, help="images per step (two views each)")
    p.add_argument("--steps", type=int, default=3, help="timed steps per strategy / per overhead round")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the overhead comparison")
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


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


def measure_strategy(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Images/s and peak memory of ``steps`` training steps of strategy ``name`` (run in a fresh process)."""
    if args.threads:
        torch.set_num_threads(args.threads)
    device = _device(args.device)
    cpu_peak = device.type == "cpu" and _reset_peak_rss()
    base_kib = _rss_kib("VmRSS") if cpu_peak else 0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base_bytes = torch.cuda.memory_allocated(device)
    torch.manual_seed(0)
    backbone = create_backbone(args.backbone, in_channels=1)
    strategy = create_strategy(name, backbone=backbone, **args.strategy_kwargs.get(name, {})).to(device).train()
    optimizer = build_optimizer(strategy, "lars", lr=0.3 * args.batch_size / 256, weight_decay=1e-6)
    views = _views(args, device)
    total = args.warmup + args.steps
    times = []
    for step in range(total):
        _sync(device)
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = strategy(views)["loss"]
        loss.backward()
        optimizer.step()
        strategy.after_step(progress=step / total)
        _sync(device)
        if step >= args.warmup:
            times.append(time.perf_counter() - start)
    step_s = statistics.median(times)
    if device.type == "cuda":
        peak_mb = (torch.cuda.max_memory_allocated(device) - base_bytes) / 2**20
    else:
        peak_mb = (_rss_kib("VmHWM") - base_kib) / 1024 if cpu_peak else float("nan")
    params = sum(p.numel() for p in strategy.parameters())
    return {
        "images_per_s": args.batch_size / step_s,
        "step_ms": 1000 * step_s,
        "peak_mem_mb": peak_mb,
        "params_m": params / 1e6,
        "kwargs": args.strategy_kwargs.get(name, {}),
    }


def _worker(name: str, args: argparse.Namespace, queue: mp.Queue) -> None:
    try:
        queue.put((name, measure_strategy(name, args)))
    except Exception as exc:  # noqa: BLE001 - report and go on with the other strategies
        queue.put((name, {"error": f"{type(exc).__name__}: {exc}"}))


def measure_strategies(args: argparse.Namespace, names: list[str]) -> dict[str, dict[str, Any]]:
    """Each strategy in its own process (forked on CPU so imports are shared; spawned for CUDA)."""
    ctx = mp.get_context("fork" if _device(args.device).type == "cpu" else "spawn")
    results = {}
    for name in names:
        queue = ctx.Queue()
        proc = ctx.Process(target=_worker, args=(name, args, queue))
        proc.start()
        got_name, result = queue.get()
        proc.join()
        results[got_name] = result
        print(f"  {name}: {result}", flush=True)
    return results


def measure_overhead(args: argparse.Namespace) -> dict[str, float]:
    """Median step time of SSLTrainer (SimCLR) vs a bare loop with the same model, batch and math."""
    if args.threads:
        torch.set_num_threads(args.threads)
    device = _device(args.device)
    torch.manual_seed(0)
    strategy = create_strategy("simclr", backbone=create_backbone(args.backbone, in_channels=1)).to(device).train()
    optimizer = torch.optim.SGD(strategy.parameters(), lr=0.01, momentum=0.9)
    views = _views(args, device)
    batch = {"view_0": views[0].cpu(), "view_1": views[1].cpu()}
    trainer = SSLTrainer(
        device, max_epochs=1, train_data_loader=[batch] * args.steps, network=strategy, optimizer=optimizer
    )

    def bare_steps(n: int) -> None:
        for _ in range(n):
            x0, x1 = (batch[k].to(device) for k in ("view_0", "view_1"))
            z = strategy.projector(strategy.backbone(torch.cat([x0, x1], dim=0)))
            loss = strategy.criterion(z[: x0.shape[0]], z[x0.shape[0] :])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            float(loss.detach())  # the trainer also reads the loss back every step

    def timed(fn: Any) -> float:
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        return (time.perf_counter() - start) / args.steps

    bare_steps(args.warmup)
    trainer.run()
    bare, framework = [], []
    for _ in range(args.rounds):
        bare.append(timed(lambda: bare_steps(args.steps)))
        framework.append(timed(trainer.run))
    bare_s, framework_s = statistics.median(bare), statistics.median(framework)
    return {
        "bare_step_ms": 1000 * bare_s,
        "ssl_trainer_step_ms": 1000 * framework_s,
        "ratio": framework_s / bare_s,
        "bare_images_per_s": args.batch_size / bare_s,
        "ssl_trainer_images_per_s": args.batch_size / framework_s,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    names = args.strategies or list_strategies()
    device = _device(args.device)
    started = time.perf_counter()
    print(f"SSL benchmark: {args.backbone}, 1x{args.image_size}x{args.image_size}, batch {args.batch_size}, {device}")
    strategies = measure_strategies(args, names)
    overhead = measure_overhead(args)
    result = {
        "config": {k: v for k, v in vars(args).items() if k != "out"} | {"device": str(device)},
        "environment": {
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cpu": platform.processor() or platform.machine(),
            "cuda": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        },
        "strategies": strategies,
        "simclr_overhead": overhead,
        "wall_s": time.perf_counter() - started,
    }
    print(f"\n{'strategy':<14}{'images/s':>10}{'step ms':>10}{'peak MB':>10}{'params M':>10}")
    for name, r in strategies.items():
        if "error" in r:
            print(f"{name:<14}  error: {r['error']}")
        else:
            print(
                f"{name:<14}{r['images_per_s']:>10.1f}{r['step_ms']:>10.1f}{r['peak_mem_mb']:>10.0f}{r['params_m']:>10.2f}"
            )
    o = overhead
    print(
        f"\nSimCLR step: SSLTrainer {o['ssl_trainer_step_ms']:.1f} ms vs bare loop {o['bare_step_ms']:.1f} ms "
        f"-> ratio {o['ratio']:.3f}  (total {result['wall_s']:.0f} s)"
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
