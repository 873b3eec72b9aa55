"""Data-pipeline throughput: what decoding once and augmenting without MetaTensor tracking buys per bundle.

For each bundle (real images from ``$REMEDIS_DATA``), the bundle's own ``train_transform`` (fine-tuning) and
``ssl_transform`` (two SSL views) are timed per item in one process, three ways:

* ``full``: the transform as a plain ``monai.data.Dataset`` runs it every epoch (decode, normalise, resize, augment);
* ``decoded+tracked``: the deterministic head applied once (:func:`monai_remedis.evaluation.cache.decode_once`),
  the random tail per item with MONAI's ``MetaTensor`` metadata;
* ``decoded``: the same tail with metadata tracking off, what the training stages run (``cache_decoded``).

Rounds are interleaved (full, tracked, untracked, full, ...) and the median is reported with its ratio to ``full``.

    python benchmarks/bench_data.py --out benchmarks/results/data.json

Prints a table and writes JSON. About a minute on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from monai.bundle import ConfigParser

from monai_remedis.configs import bundle_parser
from monai_remedis.evaluation.cache import decode_once

MODES = ("full", "decoded+tracked", "decoded")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="benchmarks/results/data.json")
    p.add_argument("--bundles", nargs="+", default=["cxr", "fundus", "dermatology"])
    p.add_argument("--items", type=int, default=64, help="items timed per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--image-size", type=int, default=None, help="override every bundle's image_size (square)")
    return p.parse_args(argv)


def _bundle(name: str, image_size: int | None) -> ConfigParser:
    parser = bundle_parser(name)
    if image_size:
        parser["image_size"] = [image_size, image_size]
    return parser


def _per_item_ms(items: Sequence[dict[str, Any]], transform: Callable) -> float:
    start = time.perf_counter()
    for item in items:
        transform(dict(item))
    return (time.perf_counter() - start) / len(items) * 1e3


def bench_transform(items: list[dict[str, Any]], transform: Callable, rounds: int) -> dict[str, float]:
    """Median ms/item of each mode over interleaved rounds (decoding for the cached modes is not timed)."""
    variants = {
        "full": (items, transform),
        "decoded+tracked": decode_once(items, transform, track_meta=True),
        "decoded": decode_once(items, transform),
    }
    times: dict[str, list[float]] = {mode: [] for mode in MODES}
    _per_item_ms(items[:4], transform)  # warm-up: imports, first allocations
    for _ in range(rounds):
        for mode in MODES:
            times[mode].append(_per_item_ms(*variants[mode]))
    return {mode: statistics.median(values) for mode, values in times.items()}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(1)  # what a data-loader worker gets
    rows = []
    for name in args.bundles:
        parser = _bundle(name, args.image_size)
        items = parser.get_parsed_content("checked_datalist")["train"][: args.items]
        for key in ("train_transform", "ssl_transform"):
            ms = bench_transform(items, parser.get_parsed_content(key), args.rounds)
            rows.append({"bundle": name, "transform": key, "image_size": parser["image_size"], **ms})
    print(f"\n{'bundle':<13}{'transform':<17}{'size':>10}" + "".join(f"{m + ' ms':>20}" for m in MODES) + "  speed-up")
    for r in rows:
        size = "x".join(map(str, r["image_size"]))
        cells = "".join(f"{r[m]:>20.3f}" for m in MODES)
        print(f"{r['bundle']:<13}{r['transform']:<17}{size:>10}{cells}  {r['full'] / r['decoded']:.2f}x")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "rows": rows,
        "args": vars(args),
        "machine": {"cpu_count": os.cpu_count(), "loadavg": os.getloadavg(), "torch": torch.__version__},
        "python": platform.python_version(),
    }
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
