"""Command line: ``python -m monai_remedis {plugins,run,stages}``.

``run`` is a thin shortcut over ``python -m monai.bundle run`` that assembles a bundle's config files
(``common.yaml`` + the stage configs) and its ``metadata.json``/``logging.conf``::

    python -m monai_remedis run cxr                    # the whole chain (pipeline)
    python -m monai_remedis run cxr ssl --max_epochs 5 # one stage, with overrides
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path
from typing import Any

from monai_remedis.data.paths import PROJECT_ROOT

STAGES = ("pretrain", "ssl", "finetune", "evaluate")
PLURALS = {"backbone": "backbones", "strategy": "strategies"}


def bundle_dir(name_or_path: str) -> Path:
    """Resolve a bundle given by name (``cxr`` -> ``<project>/bundles/cxr``) or by path.

    Raises:
        FileNotFoundError: listing the bundles shipped with the project.
    """
    candidate = Path(name_or_path)
    for path in (candidate, PROJECT_ROOT / "bundles" / name_or_path):
        if (path / "configs" / "common.yaml").is_file():
            return path
    known = sorted(p.name for p in (PROJECT_ROOT / "bundles").glob("*") if (p / "configs" / "common.yaml").is_file())
    raise FileNotFoundError(
        f"no bundle '{name_or_path}' (a folder with configs/common.yaml). Known: {', '.join(known)}."
    )


def bundle_config_files(bundle: Path, stage: str = "pipeline", extra: list[str] | None = None) -> list[str]:
    """Config files of ``stage`` (``pipeline`` = every stage, then ``pipeline.yaml``), plus overlay files."""
    configs = bundle / "configs"
    if stage == "pipeline":
        names = ["common.yaml", *(f"{s}.yaml" for s in STAGES), "pipeline.yaml"]
    elif stage in STAGES:
        names = ["common.yaml", f"{stage}.yaml"]
    else:
        raise ValueError(f"unknown stage '{stage}'; choose from pipeline, {', '.join(STAGES)}.")
    files = [configs / n for n in names] + [Path(e) if Path(e).is_file() else configs / e for e in extra or []]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"bundle {bundle} lacks config files: {', '.join(missing)}.")
    return [str(f) for f in files]


def _parse_overrides(tokens: list[str]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if not token.startswith("--"):
            raise SystemExit(f"expected --key value, got '{token}'.")
        key, _, value = token[2:].partition("=")
        if not _:
            if i + 1 >= len(tokens):
                raise SystemExit(f"override --{key} has no value.")
            value, i = tokens[i + 1], i + 1
        try:
            overrides[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            overrides[key] = value
        i += 1
    return overrides


def cmd_run(args: argparse.Namespace, rest: list[str]) -> int:
    from monai.bundle import run

    bundle = bundle_dir(args.bundle)
    files = bundle_config_files(bundle, args.stage, args.overlay)
    logging_file = bundle / "configs" / "logging.conf"
    run(
        config_file=files,
        meta_file=str(bundle / "configs" / "metadata.json"),
        logging_file=str(logging_file) if logging_file.is_file() else None,
        **_parse_overrides(rest),
    )
    return 0


def cmd_plugins(args: argparse.Namespace, rest: list[str]) -> int:
    from monai_remedis.plugins.manager import get_registries, plugin_failures

    for kind, registry in get_registries().items():
        print(f"{PLURALS.get(kind, kind + 's')} ({len(registry)}):")
        width = max((len(e.name) for e in registry), default=0)
        for entry in registry:
            print(f"  {entry.name:<{width}}  [{entry.source}]  {entry.description}")
    failures = plugin_failures()
    if failures:
        print("skipped plugins:")
        for f in failures:
            print(f"  {f.name} ({f.distribution}): {f.error}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m monai_remedis`` and the ``monai-remedis`` script."""
    parser = argparse.ArgumentParser(prog="monai-remedis", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("plugins", help="list registered backbones and SSL strategies and where they come from")
    run_p = sub.add_parser("run", help="run a bundle stage (or the whole pipeline); extra --key value pairs override")
    run_p.add_argument("bundle", help="bundle name under bundles/ (cxr, ...) or path")
    run_p.add_argument("stage", nargs="?", default="pipeline", choices=("pipeline", *STAGES))
    run_p.add_argument("--overlay", action="append", help="extra config file (e.g. multi_gpu.yaml)")
    args, rest = parser.parse_known_args(argv)
    if args.command == "plugins" and rest:
        parser.error(f"unexpected arguments: {' '.join(rest)}")
    return {"plugins": cmd_plugins, "run": cmd_run}[args.command](args, rest)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
