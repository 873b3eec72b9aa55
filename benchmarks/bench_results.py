"""The numbers of docs/results.md: REMEDIS vs supervised baseline vs scratch on real MedMNIST data and a real
second site, on CPU (sized for about half an hour on 2 idle cores; 50 minutes measured on a shared, busy machine).

For each of PneumoniaMNIST, BreastMNIST and RetinaMNIST (28 px, official splits; cross-split pixel duplicates are
dropped from train/val, test sets stay official):

1. stage 1, once for all datasets: ``bit_resnet18`` trained supervised on the CIFAR-10 subset (the grayscale
   datasets get its RGB stem summed to one channel);
2. stage 2, per dataset: SimCLR on the dataset's unlabelled training images, from the stage-1 backbone;
3. full fine-tuning on 100% of the labels for each init (``scratch``, ``baseline`` = stage 1 only,
   ``remedis`` = stages 1+2), selected on the validation split: the "full-label AUC" next to the
   MedMNIST v2 ResNet-18 (28) table, with a 95% bootstrap interval;
4. the data-efficiency sweep with the linear-probe fast path (frozen features, logistic head selected on
   validation AUC): 8 label fractions (1, 2, 5, 10, 20, 33, 50, 100%; 33% tests the "a third of the labels"
   aim directly) x 3 seeds, paired comparisons with the baseline, label-reduction factors.

Cross-site: the RetinaMNIST classifiers are scored zero-shot on APTOS 2019 (Aravind, India; 592 images after
removing SOURCE.md's duplicates), then the sweep runs on APTOS's own 50/15/35 split with the RetinaMNIST SSL
backbone (no APTOS images in SSL) and, as extra inits, the RetinaMNIST-fine-tuned backbones.

    python benchmarks/bench_results.py --out benchmarks/results/results.json

Prints a table, writes JSON, and one full report per dataset (markdown + PNG) under ``--run-dir``. Stages whose
output exists are reused (``--fresh`` retrains), so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch
from monai.bundle import ConfigParser

from monai_remedis.backbones import create_backbone
from monai_remedis.data.aptos import aptos_datalist, aptos_splits
from monai_remedis.data.builders import npz_splits, prepare_splits
from monai_remedis.data.datalists import natural_image_npz_datalist
from monai_remedis.data.paths import PROJECT_ROOT, data_path
from monai_remedis.evaluation.predict import predict
from monai_remedis.evaluation.statistics import classification_metrics
from monai_remedis.models import Classifier
from monai_remedis.stages import EvaluateStage, PretrainStage, SSLStage

BUNDLES = PROJECT_ROOT / "bundles"
FRACTIONS = (0.01, 0.02, 0.05, 0.1, 0.2, 1 / 3, 0.5, 1.0)
DATASETS: dict[str, dict[str, Any]] = {
    "pneumonia": {
        "bundle": "cxr",
        "file": ("medmnist_pneumonia", "pneumoniamnist.npz"),
        "site": "guangzhou",
        "in_channels": 1,
        "class_names": ["normal", "pneumonia"],
        "medmnist_resnet18_28_auc": 0.944,
        "ssl_epochs": 1,
    },
    "breast": {
        "bundle": "cxr",  # grayscale radiology policy; BreastMNIST is ultrasound, no ultrasound bundle yet
        "file": ("medmnist_breast", "breastmnist.npz"),
        "site": "cairo",
        "in_channels": 1,
        "class_names": ["malignant", "normal/benign"],
        "medmnist_resnet18_28_auc": 0.901,
        "ssl_epochs": 4,
    },
    "retina": {
        "bundle": "fundus",
        "file": ("medmnist_retina", "retinamnist.npz"),
        "site": "shanghai",
        "in_channels": 3,
        "class_names": ["no DR", "mild", "moderate", "severe", "proliferative"],
        "medmnist_resnet18_28_auc": 0.717,
        "ssl_epochs": 3,
    },
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run-dir", default="runs/bench_results")
    p.add_argument("--out", default="benchmarks/results/results.json")
    p.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    p.add_argument("--no-aptos", action="store_true", help="skip the RetinaMNIST -> APTOS cross-site scenario")
    p.add_argument("--backbone", default="bit_resnet18")
    p.add_argument("--pretrain-epochs", type=int, default=2)
    p.add_argument("--ssl-epochs", type=int, default=None, help="override the per-dataset SSL epochs")
    p.add_argument("--finetune-epochs", type=int, default=1, help="full fine-tune epochs (at least --min-steps)")
    p.add_argument("--min-steps", type=int, default=40)
    p.add_argument("--fractions", type=float, nargs="+", default=list(FRACTIONS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--n-boot", type=int, default=500)
    p.add_argument("--workers", type=int, default=2, help="parallel processes for the full fine-tunes")
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


def _bundle(name: str) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config(str(BUNDLES / name / "configs" / "common.yaml"))
    return parser


def _splits(spec: dict[str, Any], limit: int | None) -> dict[str, list[dict[str, Any]]]:
    raw = npz_splits(data_path(*spec["file"]), 2, site=spec["site"])
    splits = prepare_splits(raw, limit=limit, on_duplicate="drop")  # test kept, copies leave train/val
    names = {"training": "train", "validation": "val", "test": "test"}
    return {names[k]: [dict(item, split=names[k]) for item in v] for k, v in splits.items()}


def stage1(args: argparse.Namespace, run_dir: Path) -> dict[str, Any]:
    """Supervised CIFAR-10-subset pretraining, shared by every dataset; adds its CIFAR test accuracy."""
    out = run_dir / "pretrain"
    parser = ConfigParser()
    parser.read_config([str(BUNDLES / "cxr" / "configs" / f) for f in ("common.yaml", "pretrain.yaml")])
    npz = data_path("cifar10_subset", "cifar10_subset.npz")
    if (out / "backbone.pt").is_file() and not args.fresh:
        result: dict[str, Any] = {"backbone": str(out / "backbone.pt"), "classifier": str(out / "classifier.pt")}
    else:
        result = _pretrain(args, parser, npz, out)
    classifier = Classifier(create_backbone(args.backbone, in_channels=3), 10)
    classifier.load_state_dict(torch.load(result["classifier"], map_location="cpu", weights_only=True))
    probs, labels = predict(
        classifier.eval(),
        natural_image_npz_datalist(npz, "test", limit=args.limit),
        parser.get_parsed_content("natural_load_transform"),
    )
    result["cifar_test_accuracy"] = classification_metrics(probs, labels)["accuracy"]
    return result


def _pretrain(args: argparse.Namespace, parser: ConfigParser, npz: Path, out: Path) -> dict[str, Any]:
    return PretrainStage(
        create_backbone(args.backbone, in_channels=3),
        out,
        natural_image_npz_datalist(npz, "train", limit=args.limit),
        parser.get_parsed_content("natural_train_transform"),
        num_classes=10,
        max_epochs=args.pretrain_epochs,
        batch_size=128,
        optimizer="adamw",  # SGD 0.1 diverged in the first epochs of a short CPU run (loss above ln 10)
        learning_rate=1e-3,
        weight_decay=5e-4,
        log_every=0,
    ).run()


def stage2(args: argparse.Namespace, cfg: ConfigParser, spec: dict[str, Any], train: list, out: Path, init: str) -> str:
    """SimCLR on the unlabelled training images (labels are not read)."""
    if (out / "backbone.pt").is_file() and not args.fresh:
        return str(out / "backbone.pt")
    result = SSLStage(
        train,
        cfg.get_parsed_content("ssl_transform"),
        create_backbone(args.backbone, in_channels=spec["in_channels"]),
        out,
        strategy="simclr",
        init_weights=init,
        max_epochs=args.ssl_epochs or spec["ssl_epochs"],
        batch_size=min(128, len(train)),
        optimizer="adamw",
        learning_rate=1e-3,
        lr_scale_batch=False,
        weight_decay=1e-6,
        warmup_epochs=0.5,
        log_every=0,
    ).run()
    return result["backbone"]


def _common(args: argparse.Namespace, cfg: ConfigParser, spec: dict[str, Any], num_classes: int) -> dict[str, Any]:
    return {
        "backbone": args.backbone,
        "in_channels": spec["in_channels"],
        "num_classes": num_classes,
        "test_transform": cfg.get_parsed_content("eval_transform"),
        "sweep_train_transform": cfg.get_parsed_content("train_transform"),
        "n_boot": args.n_boot,
        "class_names": spec["class_names"],
        "device": "cpu",
    }


def full_finetune(args: argparse.Namespace, common: dict[str, Any], splits: dict, inits: dict, out: Path) -> dict:
    """100%-label fine-tune of every init (one seed), selected on validation; returns the stage result."""
    return EvaluateStage(
        output_dir=out,
        sweep_mode="finetune",
        sweep_inits=inits,
        sweep_train_datalist=splits["train"],
        sweep_val_datalist=splits["val"],
        sweep_test_datalist=splits["test"],
        fractions=[1.0],
        seeds=[0],
        finetune_options={
            "max_epochs": args.finetune_epochs,
            "min_steps": args.min_steps,
            "batch_size": 64,
            "optimizer": "sgd",
            "learning_rate": 0.01,
            "weight_decay": 1e-4,
            "log_every": 0,
            "val_evaluations": 2,
        },
        workers=args.workers,
        paired_n_boot=0,
        title=f"{out.parent.name}: full fine-tuning on 100% of the labels",
        **common,
    ).run()


def probe_sweep(args: argparse.Namespace, common: dict[str, Any], out: Path, **kwargs: Any) -> dict:
    """Zero-shot metrics of the classifiers and the linear-probe data-efficiency sweep."""
    return EvaluateStage(
        output_dir=out,
        sweep_mode="linear_probe",
        fractions=args.fractions,
        seeds=args.seeds,
        baseline_init="baseline",
        **common,
        **kwargs,
    ).run()


def run_dataset(args: argparse.Namespace, name: str, run_dir: Path, pretrain: str, timings: dict) -> dict[str, Any]:
    spec = DATASETS[name]
    cfg = _bundle(spec["bundle"])
    splits = _splits(spec, args.limit)
    num_classes = len(spec["class_names"])
    t0 = time.perf_counter()
    ssl = stage2(args, cfg, spec, splits["train"], run_dir / name / "ssl", pretrain)
    timings[f"{name}_ssl_s"] = time.perf_counter() - t0
    inits = {"scratch": None, "baseline": pretrain, "remedis": ssl}
    common = _common(args, cfg, spec, num_classes)
    t0 = time.perf_counter()
    ft = full_finetune(args, common, splits, inits, run_dir / name / "finetune_100")
    timings[f"{name}_finetune_s"] = time.perf_counter() - t0
    classifiers = {i: str(run_dir / name / "finetune_100" / "sweep" / i / "f1_s0" / "classifier.pt") for i in inits}
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
        sweep_inits=inits,
        sweep_train_datalist=splits["train"],
        sweep_val_datalist=splits["val"],
        title=f"{name.capitalize()}MNIST: REMEDIS vs supervised baseline vs scratch",
        notes=_notes(name, spec),
    )
    timings[f"{name}_probe_sweep_s"] = time.perf_counter() - t0
    return {
        "sizes": {k: len(v) for k, v in splits.items()},
        "checkpoints": {**inits, "classifiers": classifiers},
        "full_finetune_records": ft["records"],
        "evaluations": ev["evaluations"],
        "sweep_summary": ev["summary"],
        "label_reduction": ev["label_reduction"],
        "paired": ev["paired"],
        "report": ev["report"],
        "medmnist_resnet18_28_auc": spec["medmnist_resnet18_28_auc"],
        "ssl_history": json.loads((Path(ssl).parent / "history.json").read_text())
        if (Path(ssl).parent / "history.json").is_file()
        else None,
    }


def run_aptos(args: argparse.Namespace, run_dir: Path, pretrain: str, retina: dict[str, Any]) -> dict[str, Any]:
    """RetinaMNIST -> APTOS: zero-shot, then the sweep on APTOS's own split."""
    spec = DATASETS["retina"]
    cfg = _bundle("fundus")
    aptos = aptos_splits(aptos_datalist(), val=0.15, test=0.35, seed=0, limit=args.limit)
    classifiers = retina["checkpoints"]["classifiers"]
    inits = {
        "scratch": None,
        "baseline": pretrain,
        "remedis": retina["checkpoints"]["remedis"],
        "baseline+retina_ft": classifiers["baseline"],
        "remedis+retina_ft": classifiers["remedis"],
    }
    ev = probe_sweep(
        args,
        _common(args, cfg, spec, 5),
        run_dir / "aptos" / "evaluate",
        classifiers=classifiers,
        test_datalist=_splits(spec, args.limit)["test"],
        ood_sets={"aptos_test": {"datalist": aptos["test"], "note": "real second site, APTOS test split"}},
        sweep_inits=inits,
        sweep_train_datalist=aptos["train"],
        sweep_val_datalist=aptos["val"],
        sweep_test_datalist=aptos["test"],
        title="Cross-site DR grading: RetinaMNIST (Shanghai) -> APTOS 2019 (Aravind, India)",
        notes=[
            "APTOS: 600 images minus SOURCE.md's duplicates (both of each conflicting-grade pair, one of each "
            "same-grade pair) = 592, split 50/15/35 by image (no patient ids): images of one patient may sit in "
            "two splits.",
            "The APTOS subset is not at natural prevalence (0:150, 1:120, 2:150, 3:90, 4:90 before cleaning).",
            "remedis = stage 1 + SimCLR on RetinaMNIST (no APTOS image in SSL); '+retina_ft' inits start from the "
            "backbone of the RetinaMNIST 100%-label fine-tune.",
            "28 px images: absolute AUCs are far below full-resolution DR graders.",
        ],
    )
    return {
        "sizes": {k: len(v) for k, v in aptos.items()},
        "evaluations": ev["evaluations"],
        "sweep_summary": ev["summary"],
        "label_reduction": ev["label_reduction"],
        "paired": ev["paired"],
        "report": ev["report"],
    }


def _notes(name: str, spec: dict[str, Any]) -> list[str]:
    notes = [
        "CPU-budget training: stage 1 on 5,000 CIFAR-10 images, a few SSL epochs, short fine-tunes; bit_resnet18 "
        "at 28 px. MedMNIST v2's ResNet-18 (28) trained 100 epochs.",
        "Cross-split pixel duplicates were dropped from train/validation (test sets are the official ones).",
        "Linear-probe sweep: at 100% every seed uses the same images and the fit is deterministic, so the seeds "
        "agree there.",
    ]
    if spec["bundle"] == "cxr" and name == "breast":
        notes.append("BreastMNIST (ultrasound) uses the grayscale radiology view policy of the cxr bundle.")
    return notes


def _cell(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None or value != value else f"{value:.{digits}f}"


def print_table(results: dict[str, Any]) -> None:
    """The final console table: full-label AUC vs MedMNIST, probe AUC per fraction, label reduction."""
    print("\n== full fine-tuning, 100% labels (test AUC, 95% CI) vs MedMNIST v2 ResNet-18 (28) ==")
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
    fractions = sorted({row["fraction"] for r in blocks.values() for row in r["sweep_summary"]})
    print("\n== linear-probe sweep: test AUC, seed mean (3 seeds) ==")
    head = f"{'dataset':<11}{'init':<20}" + "".join(f"{100 * f:>7.3g}%" for f in fractions) + "   label reduction"
    print(head)
    for name, r in blocks.items():
        for init in dict.fromkeys(row["init"] for row in r["sweep_summary"]):
            rows = {row["fraction"]: row for row in r["sweep_summary"] if row["init"] == init}
            red = r["label_reduction"][init]
            factor = f"{red['factor']:.3g}x ({_cell(red['low'], 1)}-{_cell(red['high'], 1)})" if red["reached"] else "-"
            aucs = "".join(f"{_cell(rows[f]['auc_mean']):>8}" if f in rows else f"{'':>8}" for f in fractions)
            print(f"{name:<11}{init:<20}{aucs}   {factor}")
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
    run_dir = Path(args.run_dir)
    start = time.perf_counter()
    load_start = os.getloadavg()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    pre = stage1(args, run_dir)
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
    print(f"\nstage 1 (CIFAR-10 subset, {args.pretrain_epochs} epochs) test accuracy: {pre['cifar_test_accuracy']:.3f}")
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
