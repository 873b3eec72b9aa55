"""The numbers of docs/results.md: REMEDIS vs supervised baseline vs scratch on real MedMNIST data and a real
second site, on CPU (several hours on 2 idle cores; ``--datasets`` runs a subset, and a rerun resumes).

Every setting comes from the bundles (``cxr`` for PneumoniaMNIST and BreastMNIST, ``fundus`` for RetinaMNIST and
APTOS): backbone, stage-1 recipe, SSL strategy, optimiser and temperature, fine-tuning optimiser, feature
standardiser, head init, minimum steps and early-stopping patience. The script only sets each dataset's epoch
budgets (SSL epochs and the fine-tunes' epoch cap at 100%: small datasets need more epochs for the same steps).

For each of PneumoniaMNIST, BreastMNIST and RetinaMNIST (28 px, official splits; cross-split pixel duplicates are
dropped from train/val, test sets stay official):

1. stage 1, once for all datasets: the bundles' backbone trained supervised on the CIFAR-10 subset by the bundles'
   ``pretrain`` stage (the grayscale datasets get its RGB stem summed to one channel);
2. stage 2, per dataset: SimCLR on the dataset's unlabelled training images, from the stage-1 backbone (about
   250-300 optimiser steps per dataset);
3. the data-efficiency sweep by **full fine-tuning** (the paper's protocol): label fractions 1%, 10%, 33% and 100% x
   3 seeds x 3 inits (``scratch``, ``baseline`` = stage 1 only, ``remedis`` = stages 1+2), every run's checkpoint and
   stopping step chosen on the validation split only; the 100% runs give the "full-label AUC" next to the MedMNIST
   v2 ResNet-18 (28) table;
4. the same sweep with the linear-probe fast path (frozen features, logistic head selected on validation AUC) at
   8 label fractions (1, 2, 5, 10, 20, 33, 50, 100%), which measures the representations alone.

Cross-site: the 100%-label RetinaMNIST classifiers are scored zero-shot on APTOS 2019 (Aravind, India; 592 images
after removing SOURCE.md's duplicates), then both sweeps run on APTOS's own 50/15/35 split with the RetinaMNIST SSL
backbone (no APTOS images in SSL) and, in the probe sweep, the RetinaMNIST-fine-tuned backbones as extra inits.

    python benchmarks/bench_results.py --out benchmarks/results/results.json

Prints tables, writes JSON, and one full report per dataset and sweep (markdown + PNG) under ``--run-dir``.
Finished stages and sweep runs are reused (``--fresh`` retrains), so an interrupted run resumes where it stopped:
a sweep run while its fingerprint matches, a stage while the bundle settings it depends on and its budget match
those recorded beside it (``bench_settings.json``); otherwise the script stops, naming what changed. Outputs sit
under ``<run-dir>/<backbone>`` so runs of different backbones never mix. ``--pretrain-checkpoint`` reuses a
stage 1 trained by the same recipe, e.g. ``runs/cxr/pretrain/backbone.pt`` of README command 1.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from monai.bundle import ConfigParser
from monai.bundle.reference_resolver import ReferenceResolver
from monai.bundle.utils import ID_SEP_KEY

from monai_remedis.apps.aptos import aptos_datalist, aptos_splits
from monai_remedis.backbones import create_backbone
from monai_remedis.backbones.weights import load_backbone_weights
from monai_remedis.configs import bundle_parser
from monai_remedis.data.builders import checked_splits, npz_splits
from monai_remedis.data.paths import PROJECT_ROOT, data_path
from monai_remedis.engines.runtime import atomic_write_json
from monai_remedis.evaluation.sweep import factor_interval
from monai_remedis.stages import (
    EvaluateStage,
    ModelSpec,
    OptimConfig,
    ReportConfig,
    RuntimeConfig,
    SSLStage,
    SweepConfig,
    SweepData,
)

BUNDLES = PROJECT_ROOT / "bundles"
SETTINGS_FILE = "bench_settings.json"  # beside a finished stage: the bundle settings and budget that made it
SSL_ROOTS = ("ssl_transform", "load_transform", "ssl_view_transform", "eval_transform", "strategy_kwargs",
             "ssl_optim", "backbone", "batch_size", "ssl_knn_images")  # fmt: skip
FRACTIONS = (0.01, 0.02, 0.05, 0.1, 0.2, 1 / 3, 0.5, 1.0)
FINETUNE_FRACTIONS = (0.01, 0.1, 1 / 3, 1.0)
APTOS_FINETUNE_EPOCHS = 40
DATASETS: dict[str, dict[str, Any]] = {
    "pneumonia": {
        "bundle": "cxr",
        "file": ("medmnist_pneumonia", "pneumoniamnist.npz"),
        "site": "guangzhou",
        "in_channels": 1,
        "class_names": ["normal", "pneumonia"],
        "medmnist_resnet18_28_auc": 0.944,
        "ssl_epochs": 8,  # 36 steps/epoch
        "finetune_epochs": 6,
    },
    "breast": {
        "bundle": "cxr",  # grayscale radiology policy; BreastMNIST is ultrasound, no ultrasound bundle yet
        "file": ("medmnist_breast", "breastmnist.npz"),
        "site": "cairo",
        "in_channels": 1,
        "class_names": ["malignant", "normal/benign"],
        "medmnist_resnet18_28_auc": 0.901,
        "ssl_epochs": 60,  # 4 steps/epoch
        "finetune_epochs": 40,
    },
    "retina": {
        "bundle": "fundus",
        "file": ("medmnist_retina", "retinamnist.npz"),
        "site": "shanghai",
        "in_channels": 3,
        "class_names": ["no DR", "mild", "moderate", "severe", "proliferative"],
        "medmnist_resnet18_28_auc": 0.717,
        "ssl_epochs": 35,  # 8 steps/epoch
        "finetune_epochs": 25,
    },
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run-dir", default="runs/bench_results")
    p.add_argument("--out", default="benchmarks/results/results.json")
    p.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    p.add_argument("--no-aptos", action="store_true", help="skip the RetinaMNIST -> APTOS cross-site scenario")
    p.add_argument("--backbone", default=None, help="default: the bundles' backbone (they must agree)")
    p.add_argument("--pretrain-epochs", type=int, default=None, help="default: the bundle's pretrain_epochs")
    p.add_argument("--pretrain-checkpoint", default=None, help="reuse this stage-1 backbone (same recipe)")
    p.add_argument("--ssl-epochs", type=int, default=None, help="override the per-dataset SSL epochs")
    p.add_argument("--finetune-epochs", type=int, default=None, help="override the per-dataset 100%%-label epochs")
    p.add_argument("--fractions", type=float, nargs="+", default=list(FRACTIONS), help="linear-probe sweep")
    p.add_argument("--finetune-fractions", type=float, nargs="+", default=list(FINETUNE_FRACTIONS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--n-boot", type=int, default=500)
    p.add_argument("--workers", type=int, default=2, help="parallel processes for the fine-tunes")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: 1 on a busy machine)")
    p.add_argument("--limit", type=int, default=None, help="items per split (smoke runs)")
    p.add_argument("--fresh", action="store_true", help="retrain stages whose outputs exist")
    return p.parse_args(argv)


def _threads(requested: int | None) -> int:
    """Torch threads: on a machine busier than its cores, one thread per process is faster (less hand-off)."""
    if requested:
        return requested
    cores = os.cpu_count() or 1
    return 1 if os.getloadavg()[0] >= cores else cores


def _bundle(name: str, backbone: str | None = None) -> ConfigParser:
    """The bundle's settings, with the benchmark's one backbone when given."""
    return bundle_parser(name, **({"backbone": backbone} if backbone else {}))


def recipe_backbone(args: argparse.Namespace) -> str:
    """``--backbone``, else the one backbone the bundles of ``--datasets`` name (stage 1 is shared)."""
    if args.backbone:
        return args.backbone
    names = {DATASETS[d]["bundle"]: _bundle(DATASETS[d]["bundle"])["backbone"] for d in args.datasets}
    if len(set(names.values())) != 1:
        raise SystemExit(f"the bundles name different backbones {names}: pass --backbone (stage 1 is shared)")
    return next(iter(names.values()))


def _splits(spec: dict[str, Any], limit: int | None) -> dict[str, list[dict[str, Any]]]:
    raw = npz_splits(data_path(*spec["file"]), 2, site=spec["site"])
    splits = checked_splits(
        raw, limit=limit, on_duplicate="drop", on_label_conflict="ignore"
    )  # test kept, copies leave train/val
    names = {"training": "train", "validation": "val", "test": "test"}
    return {names[k]: [dict(item, split=names[k]) for item in v] for k, v in splits.items()}


def stage1(args: argparse.Namespace, run_dir: Path, backbone: str) -> dict[str, Any]:
    """The cxr bundle's stage 1 (CIFAR-10 subset), shared by every dataset; adds its CIFAR test accuracy."""
    if args.pretrain_checkpoint:
        path = Path(args.pretrain_checkpoint)
        metrics = path.parent / "metrics.json"
        result: dict[str, Any] = json.loads(metrics.read_text()) if metrics.is_file() else {}
        result["backbone"] = str(path)
        result["reused_from"] = str(path)
        load_backbone_weights(create_backbone(backbone, in_channels=3), path)  # the wrong architecture fails here
    else:
        parser = bundle_parser("cxr", "pretrain", output_dir=str(run_dir), backbone=backbone, limit=args.limit)
        if args.pretrain_epochs:
            parser["pretrain_epochs"] = args.pretrain_epochs
        parser["log_every"] = 0
        settings = stage_settings(parser, ["pretrain"], limit=args.limit)
        if reusable(run_dir / "pretrain", settings, args.fresh):
            result = json.loads((run_dir / "pretrain" / "metrics.json").read_text())
        else:
            result = parser.get_parsed_content("pretrain").run()
            record_settings(run_dir / "pretrain", settings)
    # selected on that test set (an optimistic estimate); absent when a reused checkpoint has no metrics
    result["cifar_test_accuracy"] = result.get("val_accuracy")
    return result


def stage2(
    args: argparse.Namespace, cfg: ConfigParser, spec: dict[str, Any], splits: dict, out: Path, init: str
) -> str:
    """The bundle's SimCLR stage on the unlabelled training images (labels are read only by its diagnostics)."""
    train = splits["train"]
    epochs = args.ssl_epochs or spec["ssl_epochs"]
    settings = stage_settings(cfg, SSL_ROOTS, ssl_epochs=epochs, init=init, train_items=len(train))
    if reusable(out, settings, args.fresh):
        return str(out / "backbone.pt")
    eval_transform = cfg.get_parsed_content("eval_transform")
    result = SSLStage(
        train,
        cfg.get_parsed_content("ssl_transform"),
        create_backbone(cfg["backbone"], in_channels=spec["in_channels"]),
        out,
        strategy="simclr",
        strategy_kwargs=cfg.get_parsed_content("strategy_kwargs"),
        init_weights=init,
        load_transform=cfg.get_parsed_content("load_transform"),
        view_transform=cfg.get_parsed_content("ssl_view_transform"),
        optim=cfg.get_parsed_content("ssl_optim").replace(
            max_epochs=epochs, batch_size=min(cfg["batch_size"], len(train))
        ),
        diagnostics={"train": train, "val": splits["val"], "transform": eval_transform},
        knn_max_items=cfg["ssl_knn_images"],
        runtime=RuntimeConfig(log_every=0),
    ).run()
    record_settings(out, settings)
    return result["backbone"]


def stage_settings(cfg: ConfigParser, roots: Sequence[str], **budget: Any) -> dict[str, Any]:
    """The raw bundle keys that ``roots`` reference, transitively (MONAI's ``@`` references), plus ``budget``."""
    keys, todo = set(), list(roots)
    while todo:
        key = todo.pop()
        if key in keys or key not in cfg.config:
            continue
        keys.add(key)
        todo += [ref.split(ID_SEP_KEY)[0] for ref in ReferenceResolver.find_refs_in_config(cfg.config[key], key)]
    settings = {f"bundle.{k}": cfg.config[k] for k in sorted(keys)}
    return json.loads(json.dumps({**settings, **budget}, default=str))


def reusable(out: Path, settings: dict[str, Any], fresh: bool) -> bool:
    """Whether ``out`` holds a finished stage made with ``settings``; one made otherwise (or without a record of
    its settings) stops the benchmark naming what changed, so a bundle edit never reuses an outdated stage."""
    if fresh or not (out / "backbone.pt").is_file():
        return False
    path = out / SETTINGS_FILE
    stored = json.loads(path.read_text()) if path.is_file() else None
    if stored == settings:
        return True
    changed = sorted(k for k in settings.keys() | stored.keys() if stored.get(k) != settings.get(k)) if stored else []
    raise SystemExit(
        f"{out} holds a finished stage made with other settings ({', '.join(changed) or 'no ' + SETTINGS_FILE}): "
        "pass --fresh to retrain it, or give another --run-dir."
    )


def record_settings(out: Path, settings: dict[str, Any]) -> None:
    """Write ``settings`` beside a finished stage (read back by :func:`reusable`)."""
    atomic_write_json(settings, out / SETTINGS_FILE)


def _common(args: argparse.Namespace, cfg: ConfigParser, spec: dict[str, Any], num_classes: int) -> dict[str, Any]:
    return {
        "backbone": cfg["backbone"],
        "in_channels": spec["in_channels"],
        "num_classes": num_classes,
        "test_transform": cfg.get_parsed_content("eval_transform"),
        "sweep_train_transform": cfg.get_parsed_content("train_transform"),
        "finetune_optim": cfg.get_parsed_content("finetune_optim"),
        "sweep_batch_size": cfg["sweep_batch_size"],
        "n_boot": args.n_boot,
        "class_names": spec["class_names"],
        "device": "cpu",
    }


def finetune_options(args: argparse.Namespace, common: dict[str, Any], epochs: int) -> OptimConfig:
    """The bundle's fine-tune recipe (optimiser, minimum steps, patience, head) at this dataset's epoch cap."""
    return common["finetune_optim"].replace(
        max_epochs=args.finetune_epochs or epochs, batch_size=common["sweep_batch_size"]
    )


def _evaluate_stage(common: dict[str, Any], out: Path, sweep: dict[str, Any], **kwargs: Any) -> EvaluateStage:
    """The stage from this script's flat options (``common``: model, transforms, report; ``kwargs``: the data)."""
    options = {**common, **kwargs}
    return EvaluateStage(
        model=ModelSpec(options["backbone"], options["in_channels"], options["num_classes"]),
        output_dir=out,
        test_transform=options["test_transform"],
        classifiers=options.get("classifiers"),
        test_datalist=options.get("test_datalist"),
        ood_sets=options.get("ood_sets"),
        sweep=SweepConfig(inits=options["sweep_inits"], baseline_init="baseline", **sweep),
        sweep_data=SweepData(
            options["sweep_train_datalist"],
            options["sweep_val_datalist"],
            options.get("sweep_test_datalist"),
            options["sweep_train_transform"],
        ),
        report=ReportConfig(n_boot=options["n_boot"], class_names=options["class_names"]),
        runtime=RuntimeConfig(device=options["device"]),
    )


def finetune_sweep(args: argparse.Namespace, common: dict[str, Any], out: Path, epochs: int, **kwargs: Any) -> dict:
    """The data-efficiency sweep by full fine-tuning; ``classifiers`` (if given) are scored on test and OOD sets."""
    sweep = {
        "mode": "finetune",
        "fractions": args.finetune_fractions,
        "seeds": args.seeds,
        "optim": finetune_options(args, common, epochs),
        "workers": args.workers,
    }
    return _evaluate_stage(common, out, sweep, **kwargs).run()


def probe_sweep(args: argparse.Namespace, common: dict[str, Any], out: Path, **kwargs: Any) -> dict:
    """The data-efficiency sweep with the linear-probe fast path."""
    sweep = {"mode": "linear_probe", "fractions": args.fractions, "seeds": args.seeds}
    return _evaluate_stage(common, out, sweep, **kwargs).run()


def _sweep_block(ev: dict[str, Any]) -> dict[str, Any]:
    keys = ("records", "summary", "label_reduction", "paired", "report")
    return {k: ev[k] for k in keys if k in ev}


def _classifiers(sweep_dir: Path, inits: dict[str, Any]) -> dict[str, str]:
    """The seed-0 100%-label classifiers of a fine-tuning sweep, one per init."""
    return {i: str(sweep_dir / "sweep" / i / "f1_s0" / "classifier.pt") for i in inits}


def run_dataset(args: argparse.Namespace, name: str, run_dir: Path, pretrain: str, timings: dict) -> dict[str, Any]:
    spec = DATASETS[name]
    cfg = _bundle(spec["bundle"], args.backbone)
    splits = _splits(spec, args.limit)
    num_classes = len(spec["class_names"])
    t0 = time.perf_counter()
    ssl = stage2(args, cfg, spec, splits, run_dir / name / "ssl", pretrain)
    timings[f"{name}_ssl_s"] = time.perf_counter() - t0
    inits = {"scratch": None, "baseline": pretrain, "remedis": ssl}
    common = _common(args, cfg, spec, num_classes)
    sweep_data = {
        "sweep_inits": inits,
        "sweep_train_datalist": splits["train"],
        "sweep_val_datalist": splits["val"],
        "sweep_test_datalist": splits["test"],
    }
    t0 = time.perf_counter()
    ft = finetune_sweep(
        args,
        common,
        run_dir / name / "finetune",
        spec["finetune_epochs"],
        title=f"{name.capitalize()}MNIST: full fine-tuning, REMEDIS vs supervised baseline vs scratch",
        notes=_notes(name, spec, "finetune"),
        **sweep_data,
    )
    timings[f"{name}_finetune_sweep_s"] = time.perf_counter() - t0
    classifiers = _classifiers(run_dir / name / "finetune", inits)
    ood = {}
    if name == "retina" and not args.no_aptos:
        ood["aptos_all_592"] = {
            "datalist": aptos_datalist(split="ood")[: args.limit],
            "note": "real second site: APTOS 2019 (Aravind, India), all 592 de-duplicated images",
        }
    t0 = time.perf_counter()
    ev = probe_sweep(
        args,
        common,
        run_dir / name / "evaluate",
        classifiers=classifiers,
        test_datalist=splits["test"],
        ood_sets=ood,
        title=f"{name.capitalize()}MNIST: linear probe, REMEDIS vs supervised baseline vs scratch",
        notes=_notes(name, spec, "linear_probe"),
        **sweep_data,
    )
    timings[f"{name}_probe_sweep_s"] = time.perf_counter() - t0
    history = Path(ssl).parent / "history.json"
    return {
        "sizes": {k: len(v) for k, v in splits.items()},
        "checkpoints": {**inits, "classifiers": classifiers},
        "finetune": _sweep_block(ft),
        "probe": _sweep_block(ev),
        "evaluations": ev["evaluations"],
        "medmnist_resnet18_28_auc": spec["medmnist_resnet18_28_auc"],
        "ssl_history": json.loads(history.read_text()) if history.is_file() else None,
    }


def run_aptos(args: argparse.Namespace, run_dir: Path, pretrain: str, retina: dict[str, Any]) -> dict[str, Any]:
    """RetinaMNIST -> APTOS: zero-shot, then both sweeps on APTOS's own split."""
    spec = DATASETS["retina"]
    cfg = _bundle("fundus", args.backbone)
    aptos = aptos_splits(aptos_datalist(), val=0.15, test=0.35, seed=0, limit=args.limit)
    classifiers = retina["checkpoints"]["classifiers"]
    inits = {"scratch": None, "baseline": pretrain, "remedis": retina["checkpoints"]["remedis"]}
    common = _common(args, cfg, spec, 5)
    sweep_data = {
        "sweep_train_datalist": aptos["train"],
        "sweep_val_datalist": aptos["val"],
        "sweep_test_datalist": aptos["test"],
    }
    notes = [
        "APTOS: 600 images minus SOURCE.md's duplicates (both of each conflicting-grade pair, one of each "
        "same-grade pair) = 592, split 50/15/35 by image (no patient ids): images of one patient may sit in "
        "two splits.",
        "The APTOS subset is not at natural prevalence (0:150, 1:120, 2:150, 3:90, 4:90 before cleaning).",
        "remedis = stage 1 + SimCLR on RetinaMNIST (no APTOS image in SSL); '+retina_ft' inits start from the "
        "backbone of the RetinaMNIST 100%-label fine-tune.",
        "28 px images: absolute AUCs are far below full-resolution DR graders.",
    ]
    ft = finetune_sweep(
        args,
        common,
        run_dir / "aptos" / "finetune",
        APTOS_FINETUNE_EPOCHS,
        sweep_inits=inits,
        title="Cross-site DR grading, full fine-tuning: RetinaMNIST (Shanghai) -> APTOS 2019 (Aravind, India)",
        notes=notes,
        **sweep_data,
    )
    ev = probe_sweep(
        args,
        common,
        run_dir / "aptos" / "evaluate",
        classifiers=classifiers,
        test_datalist=_splits(spec, args.limit)["test"],
        ood_sets={"aptos_test": {"datalist": aptos["test"], "note": "real second site, APTOS test split"}},
        sweep_inits={
            **inits,
            "baseline+retina_ft": classifiers["baseline"],
            "remedis+retina_ft": classifiers["remedis"],
        },
        title="Cross-site DR grading, linear probe: RetinaMNIST (Shanghai) -> APTOS 2019 (Aravind, India)",
        notes=notes,
        **sweep_data,
    )
    return {
        "sizes": {k: len(v) for k, v in aptos.items()},
        "evaluations": ev["evaluations"],
        "finetune": _sweep_block(ft),
        "probe": _sweep_block(ev),
    }


def _notes(name: str, spec: dict[str, Any], mode: str) -> list[str]:
    notes = [
        "CPU-budget training: stage 1 on 5,000 CIFAR-10 images, 240-290 SimCLR steps, the bundle's recipe at 28 px. "
        "MedMNIST v2's ResNet-18 (28) trained 100 epochs.",
        "Cross-split pixel duplicates were dropped from train/validation (test sets are the official ones).",
    ]
    if mode == "linear_probe":
        notes.append(
            "Linear-probe sweep: at 100% every seed uses the same images and the fit is deterministic, so the seeds "
            "agree there."
        )
    if spec["bundle"] == "cxr" and name == "breast":
        notes.append("BreastMNIST (ultrasound) uses the grayscale radiology view policy of the cxr bundle.")
    return notes


def _cell(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None or value != value else f"{value:.{digits}f}"


def _print_sweep(blocks: dict[str, Any], mode: str, title: str) -> None:
    rows = {name: b[mode] for name, b in blocks.items() if b.get(mode)}
    fractions = sorted({row["fraction"] for r in rows.values() for row in r["summary"]})
    print(f"\n== {title}: test AUC, seed mean ==")
    print(f"{'dataset':<11}{'init':<20}" + "".join(f"{100 * f:>7.3g}%" for f in fractions) + "   label reduction")
    for name, r in rows.items():
        for init in dict.fromkeys(row["init"] for row in r["summary"]):
            by_fraction = {row["fraction"]: row for row in r["summary"] if row["init"] == init}
            red = r["label_reduction"][init]
            factor = f"{red['factor']:.3g}x (95% CI {factor_interval(red)})" if red["reached"] else "-"
            aucs = "".join(
                f"{_cell(by_fraction[f]['auc_mean']):>8}" if f in by_fraction else f"{'':>8}" for f in fractions
            )
            print(f"{name:<11}{init:<20}{aucs}   {factor}")


def print_table(results: dict[str, Any]) -> None:
    """The final console tables: full-label AUC vs MedMNIST, both sweeps, zero-shot on APTOS."""
    print("\n== full fine-tuning, 100% labels, seed 0 (test AUC, 95% CI) vs MedMNIST v2 ResNet-18 (28) ==")
    print(f"{'dataset':<11}{'MedMNIST':>9}  {'scratch':>22}{'baseline':>22}{'remedis':>22}")
    for name, r in results["datasets"].items():
        cells = []
        for init in ("scratch", "baseline", "remedis"):
            ev = r["evaluations"].get(f"{init}: test (in-distribution)")
            ci = ev.get("auc_ci", {}) if ev else {}
            cells.append(
                f"{_cell(ev['metrics']['auc'])} ({_cell(ci.get('low'))}-{_cell(ci.get('high'))})" if ev else "n/a"
            )
        print(f"{name:<11}{r['medmnist_resnet18_28_auc']:>9.3f}  " + "".join(f"{c:>22}" for c in cells))
    blocks = {**results["datasets"], **({"aptos": results["aptos"]} if results.get("aptos") else {})}
    _print_sweep(blocks, "finetune", "full fine-tuning sweep")
    _print_sweep(blocks, "probe", "linear-probe sweep")
    if results.get("aptos"):
        print("\n== zero-shot on APTOS (RetinaMNIST classifiers, no APTOS labels) ==")
        for key, ev in {
            **results["datasets"].get("retina", {}).get("evaluations", {}),
            **results["aptos"]["evaluations"],
        }.items():
            if "zero-shot" in key:
                ci = ev.get("auc_ci", {})
                print(f"{key:<45} AUC {_cell(ev['metrics']['auc'])} ({_cell(ci.get('low'))}-{_cell(ci.get('high'))})")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    threads = _threads(args.threads)
    torch.set_num_threads(threads)
    args.backbone = recipe_backbone(args)
    run_dir = Path(args.run_dir) / args.backbone
    start = time.perf_counter()
    load_start = os.getloadavg()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    pre = stage1(args, run_dir, args.backbone)
    timings["pretrain_s"] = time.perf_counter() - t0
    results: dict[str, Any] = {"datasets": {}}
    for name in args.datasets:
        results["datasets"][name] = run_dataset(args, name, run_dir, pre["backbone"], timings)
    if "retina" in results["datasets"] and not args.no_aptos:
        t0 = time.perf_counter()
        results["aptos"] = run_aptos(args, run_dir, pre["backbone"], results["datasets"]["retina"])
        timings["aptos_s"] = time.perf_counter() - t0
    timings["total_s"] = time.perf_counter() - start
    print_table(results)
    print(f"\nstage 1 (CIFAR-10 subset, {pre.get('epochs')} epochs) test accuracy: {_cell(pre['cifar_test_accuracy'])}")
    print("\ntimings (s):", {k: round(v) for k, v in timings.items()})
    results.update(
        command=" ".join([Path(sys.executable).name, *sys.argv]),
        args=vars(args),
        pretrain=pre,
        timings_s=timings,
        machine={
            "torch_threads": threads,
            "workers": args.workers,
            "cpu_count": os.cpu_count(),
            "loadavg_start": load_start,
            "loadavg_end": os.getloadavg(),
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
