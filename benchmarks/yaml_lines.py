"""Measure how much of the bundles' YAML is their own: non-blank lines per bundle, the shared layer, and lines
repeated verbatim in every bundle (issue 10).

    python benchmarks/yaml_lines.py [ROOT]     # ROOT: a checkout (default: this one)
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

BLOCK = 3  # a "block": this many consecutive non-blank lines of one file
CORE = ("common", "pretrain", "ssl", "finetune", "evaluate", "pipeline")


def lines(path: Path) -> list[str]:
    return [line.rstrip() for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def main(root: Path) -> None:
    bundles = sorted(p.parent.parent for p in (root / "bundles").glob("*/configs/common.yaml"))
    per_bundle: dict[str, list[str]] = {}
    blocks: dict[str, set[tuple[str, ...]]] = {}
    for bundle in bundles:
        files = [bundle / "configs" / f"{name}.yaml" for name in CORE] + [bundle / "configs" / "logging.conf"]
        per_bundle[bundle.name] = [line for f in files for line in lines(f)]
        blocks[bundle.name] = {
            tuple(ls[i : i + BLOCK]) for f in files if (ls := lines(f)) for i in range(len(ls) - BLOCK + 1)
        }
    shared = [
        line
        for f in sorted((root / "monai_remedis" / "configs").glob("*"))
        if f.suffix in (".yaml", ".conf")
        for line in lines(f)
    ]
    total = sum(len(v) for v in per_bundle.values())
    sets = [set(v) for v in per_bundle.values()]
    in_all = set.intersection(*sets) if sets else set()
    counts = Counter(line for s in sets for line in s)
    repeated = sum(1 for v in per_bundle.values() for line in v if counts[line] > 1)
    for name, v in per_bundle.items():
        print(f"{name:12s} {len(v):5d} non-blank lines (core configs + logging.conf)")
    print(f"{'shared':12s} {len(shared):5d} non-blank lines (monai_remedis/configs)")
    print(f"total bundle lines {total}; in another bundle verbatim: {repeated} ({100 * repeated / max(total, 1):.0f}%)")
    common_blocks = set.intersection(*blocks.values()) if blocks else set()
    print(f"distinct lines present in all {len(per_bundle)} bundles: {len(in_all)}")
    print(
        f"blocks of {BLOCK} consecutive lines present verbatim in all {len(per_bundle)} bundles: {len(common_blocks)}"
    )
    if "-v" in sys.argv:
        for block in sorted(common_blocks):
            print("    " + " / ".join(block))


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "-v"]
    main(Path(args[0]) if args else Path(__file__).resolve().parents[1])
