"""Command line: ``python -m monai_remedis {plugins,run,configs,datalist}``.

``run`` is a thin shortcut over ``python -m monai.bundle run`` that assembles a bundle's config list (the shared
``base.yaml``, the bundle's ``common.yaml``, the stage files) and its ``metadata.json``/``logging.conf``; the
bundles and the shared layer ship inside the package. ``configs`` prints that list for ``monai.bundle run``::

    python -m monai_remedis run cxr                    # the whole chain (pipeline)
    python -m monai_remedis run cxr ssl --max_epochs 5 # one stage, with overrides
    python -m monai.bundle run --config_file "$(python -m monai_remedis configs cxr ssl)"   # the same files

``datalist`` builds a decathlon-style JSON (training/validation/test) from a folder, CSV, DICOM folder or ``.npz``,
splitting by patient when patient ids exist and refusing images that land in two splits::

    python -m monai_remedis datalist folder ../shared/data/mini_mias_abnormal/images_512 -o mias.json \
        --patient-from mini-mias --val 0.2 --test 0.2
"""

from __future__ import annotations

import argparse
import ast
import os
import sys
from pathlib import Path
from typing import Any

from monai_remedis.configs import (
    INFERENCE,
    STAGES,
    bundle_config_files,
    bundle_dir,
    bundle_logging_file,
    bundles_root,
    known_bundles,
    shared_configs,
)
from monai_remedis.inference import cli as inference_cli

__all__ = [
    "STAGES",
    "bundle_config_files",
    "bundle_dir",
    "bundle_logging_file",
    "bundles_root",
    "known_bundles",
    "main",
    "shared_configs",
]

PLURALS = {"backbone": "backbones", "strategy": "strategies"}


YAML_BOOLEANS = {"true": True, "false": False}
"""Lower-case booleans as the bundles' YAML writes them; as strings they would both read as true."""


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
            overrides[key] = YAML_BOOLEANS.get(value, value)  # --amp false: YAML's spelling of False
        if overrides[key] is None or value == "null":  # monai.bundle drops None (and keeps 'null' a string)
            overrides[key] = "$None"  # an expression sets None
        i += 1
    return overrides


def cmd_run(args: argparse.Namespace, rest: list[str]) -> int:
    """Run a bundle stage; a failure ends with its cause (full traceback in a log file, or with ``--debug``)."""
    from monai_remedis.errors import report_error

    try:
        return _run(args, rest)
    except Exception as exc:  # noqa: BLE001 - reported with its cause as the last line
        if args.debug:
            raise
        return report_error(exc)


def _run(args: argparse.Namespace, rest: list[str]) -> int:
    from monai.bundle import run

    from monai_remedis.config_check import check_override_keys, check_override_values, merged_config, sibling_keys
    from monai_remedis.engines.fingerprint import ON_STALE_ENV

    bundle = bundle_dir(args.bundle)
    files = bundle_config_files(bundle, args.stage, args.overlay)
    overrides = _parse_overrides(rest)
    names = [Path(f).name for f in files]
    config = merged_config(files)
    check_override_keys(overrides, config, names, sibling_keys(files))  # --max_epoch: did you mean
    check_override_values(overrides, config, names)  # --max_epochs three, --amp false
    if args.fresh:
        os.environ[ON_STALE_ENV] = "fresh"
    run(
        config_file=files,
        meta_file=str(bundle / "configs" / "metadata.json"),
        logging_file=str(bundle_logging_file(bundle)),
        **overrides,
    )
    return 0


def cmd_configs(args: argparse.Namespace, rest: list[str]) -> int:
    """Print a bundle stage's config list (what ``run`` passes), for
    ``python -m monai.bundle run --config_file "$(monai-remedis configs cxr ssl)"``."""
    print(bundle_config_files(bundle_dir(args.bundle), args.stage, args.overlay))
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


def _datalist_parser(sub: Any) -> None:
    p = sub.add_parser(
        "datalist",
        help="build a decathlon-style JSON datalist (training/validation/test) with patient-level splits and a "
        "cross-split duplicate check",
    )
    p.add_argument("kind", choices=("folder", "csv", "dicom", "npz"), help="source type")
    p.add_argument("source", help="class-folder root, CSV file, DICOM folder or .npz file")
    p.add_argument("-o", "--output", required=True, help="JSON file to write")
    p.add_argument("--val", type=float, default=None, help="validation fraction (default 0.1; not for npz)")
    p.add_argument("--test", type=float, default=None, help="test fraction (default 0.1; not for npz)")
    p.add_argument("--seed", type=int, default=0, help="split seed")
    p.add_argument("--drop-duplicates", action="store_true", help="drop cross-split copies instead of refusing")
    p.add_argument("--no-duplicate-check", action="store_true", help="skip the pixel-hash check (not advised)")
    p.add_argument("--no-patient-split", action="store_true", help="split by item even where patient ids exist")
    p.add_argument("--classes", nargs="+", help="class names in label order (default: sorted names)")
    p.add_argument("--patient-from", help="folder: 'mini-mias' or a regex giving the patient id from the path")
    p.add_argument("--image-column", help="csv: image path column (default: 'image', else 'path')")
    p.add_argument("--label-column", default="label", help="csv/dicom: label column ('' for unlabelled csv)")
    p.add_argument("--base-dir", help="csv: folder the image paths are relative to (default: the CSV's folder)")
    p.add_argument("--suffix", default="", help="csv: appended to each image value (e.g. .jpg)")
    p.add_argument("--patient-column", default="patient_id", help="csv: patient id column (e.g. lesion_id)")
    p.add_argument("--site-column", default="site", help="csv: acquisition site column")
    p.add_argument("--labels-csv", help="dicom: CSV with labels")
    p.add_argument("--key-column", default="image", help="dicom: CSV column matched against --match-on")
    p.add_argument("--match-on", default="path", help="dicom: path|name|stem or a DICOM keyword (SOPInstanceUID)")
    p.add_argument("--modality", action="append", help="dicom: keep this Modality (repeatable)")
    p.add_argument("--grayscale-only", action="store_true", help="dicom: keep MONOCHROME1/2 images only")
    p.add_argument("--single-frame", action="store_true", help="dicom: keep single-frame images only")
    p.add_argument("--missing-label", default="error", choices=("error", "drop", "keep"), help="dicom: unlabelled")
    p.add_argument("--export-dir", help="npz: folder the images are written to (PNG 2D, NIfTI 3D)")
    p.add_argument("--spatial-dims", type=int, choices=(2, 3), help="npz: 2 or 3 (default: from the array shape)")


def _build_items(args: argparse.Namespace) -> tuple[list[dict[str, Any]], list[str] | None]:
    from monai_remedis.data import builders

    if args.kind == "folder":
        return builders.folder_datalist(args.source, args.classes, args.patient_from)
    if args.kind == "csv":
        return builders.table_datalist(
            args.source,
            args.image_column,
            args.label_column or None,
            base_dir=args.base_dir,
            suffix=args.suffix,
            patient_column=args.patient_column or None,
            site_column=args.site_column or None,
            class_names=args.classes,
        )
    return builders.dicom_folder_datalist(
        args.source,
        args.labels_csv,
        key_column=args.key_column,
        label_column=args.label_column,
        match_on=args.match_on,
        class_names=args.classes,
        modalities=args.modality,
        grayscale_only=args.grayscale_only,
        single_frame_only=args.single_frame,
        missing_label=args.missing_label,
    )


def cmd_datalist(args: argparse.Namespace, rest: list[str]) -> int:
    """Build, split, check and write a datalist; errors are reported on stderr with exit status 1."""
    try:
        return _datalist(args)
    except (FileNotFoundError, KeyError, ValueError, TypeError) as exc:
        print(f"datalist: {exc}", file=sys.stderr)
        return 1


def _datalist(args: argparse.Namespace) -> int:
    from monai_remedis.data import builders

    class_names = None
    if args.kind == "npz":
        if args.val is not None or args.test is not None:
            raise SystemExit("npz sources keep their own train/val/test splits: drop --val/--test.")
        if not args.export_dir:
            raise SystemExit(
                "npz images live in memory and cannot be referenced from JSON: pass --export-dir to write them as "
                "image files (bundles read .npz files directly with medmnist_datalist)."
            )
        splits = builders.npz_splits(args.source, args.spatial_dims)
    else:
        items, class_names = _build_items(args)
        val, test = 0.1 if args.val is None else args.val, 0.1 if args.test is None else args.test
        key = "_no_patient_split" if args.no_patient_split else "patient_id"
        splits = builders.split_datalist(items, val, test, seed=args.seed, patient_key=key)
    policy = "ignore" if args.no_duplicate_check else "drop" if args.drop_duplicates else "error"
    splits, removed = builders.resolve_duplicates(splits, policy)
    if args.kind == "npz":
        splits = builders.export_npz_splits(splits, args.export_dir)
    path = builders.write_datalist(splits, args.output, class_names, removed, source=str(Path(args.source).resolve()))
    counts = ", ".join(f"{name} {len(items)}" for name, items in splits.items())
    print(f"wrote {path}: {counts}" + (f"; dropped {len(removed)} duplicate(s)" if removed else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m monai_remedis`` and the ``monai-remedis`` script."""
    parser = argparse.ArgumentParser(prog="monai-remedis", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("plugins", help="list registered backbones and SSL strategies and where they come from")
    run_p = sub.add_parser("run", help="run a bundle stage (or the whole pipeline); extra --key value pairs override")
    cfg_p = sub.add_parser(
        "configs", help="print the config list of a bundle stage (for python -m monai.bundle run --config_file)"
    )
    for p in (run_p, cfg_p):
        p.add_argument("bundle", help="bundle name (cxr, ...; see the package's bundles) or path")
        p.add_argument("stage", nargs="?", default="pipeline", choices=("pipeline", *STAGES, INFERENCE))
        p.add_argument("--overlay", action="append", help="extra config file (e.g. multi_gpu.yaml)")
    run_p.add_argument("--debug", action="store_true", help="print the full traceback of a failure")
    run_p.add_argument(
        "--fresh", action="store_true", help="start over where outputs come from a different run (else refused)"
    )
    _datalist_parser(sub)
    inference_cli.add_parsers(sub)
    args, rest = parser.parse_known_args(argv)
    if args.command in ("plugins", "datalist", "configs", "embed", "predict") and rest:
        parser.error(f"unexpected arguments: {' '.join(rest)}")
    commands = {"plugins": cmd_plugins, "run": cmd_run, "configs": cmd_configs, "datalist": cmd_datalist}
    commands.update(embed=inference_cli.cmd_embed, predict=inference_cli.cmd_predict)
    return commands[args.command](args, rest)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
