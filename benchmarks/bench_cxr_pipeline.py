"""End-to-end REMEDIS chain on real PneumoniaMNIST, on CPU in about half an hour.

Runs the CXR bundle's four stages in one process with the bundle's own transforms and datalists:
stage 1 supervised pretraining on the CIFAR-10 subset, stage 2 SimCLR on the unlabelled PneumoniaMNIST
training images, stage 3 fine-tuning, stage 4 test/OOD metrics and the data-efficiency sweep
(1%, 10%, 100% labels x 3 seeds) for the REMEDIS init (stages 1+2) vs the supervised baseline (stage 1).

    python benchmarks/bench_cxr_pipeline.py --out benchmarks/results/cxr_pipeline.json

Prints a table and writes JSON; the full report (markdown + PNG curve) lands in ``--run-dir``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from monai.bundle import ConfigParser

from monai_remedis.backbones import create_backbone
from monai_remedis.data.paths import PROJECT_ROOT
from monai_remedis.evaluation.predict import predict
from monai_remedis.evaluation.statistics import classification_metrics
from monai_remedis.models import Classifier
from monai_remedis.stages import EvaluateStage, PretrainStage, SSLStage

CONFIGS = PROJECT_ROOT / "bundles" / "cxr" / "configs"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run-dir", default="runs/bench_cxr")
    p.add_argument("--out", default="benchmarks/results/cxr_pipeline.json")
    p.add_argument("--backbone", default="bit_resnet18")
    p.add_argument("--pretrain-epochs", type=int, default=4)
    p.add_argument("--ssl-epochs", type=int, default=6)
    p.add_argument("--ssl-batch", type=int, default=128)
    p.add_argument("--finetune-epochs", type=int, default=3)
    p.add_argument("--min-steps", type=int, default=60)
    p.add_argument("--fractions", type=float, nargs="+", default=[0.01, 0.1, 1.0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--limit", type=int, default=None, help="items per split (smoke runs)")
    p.add_argument("--reuse", action="store_true", help="reuse stage-1/2 outputs already in --run-dir")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    run_dir = Path(args.run_dir)
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / f) for f in ("common.yaml", "pretrain.yaml")])
    parser["limit"] = args.limit
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    backbone = create_backbone(args.backbone, in_channels=3)
    nat_train = parser.get_parsed_content("pretrain#train_datalist")
    nat_test = parser.get_parsed_content("pretrain#val_datalist")
    nat_eval = parser.get_parsed_content("natural_load_transform")
    pre_dir = run_dir / "pretrain"
    if args.reuse and (pre_dir / "classifier.pt").is_file():  # stage 1 already ran in this run dir
        pre = {"backbone": str(pre_dir / "backbone.pt"), "classifier": str(pre_dir / "classifier.pt")}
    else:
        pre = PretrainStage(
            backbone,
            pre_dir,
            nat_train,
            parser.get_parsed_content("natural_train_transform"),
            num_classes=10,
            max_epochs=args.pretrain_epochs,
            batch_size=128,
            optimizer="sgd",
            learning_rate=0.1,
            weight_decay=1e-4,
            log_every=0,
        ).run()
    clf = Classifier(backbone, 10)
    clf.load_state_dict(torch.load(pre["classifier"], weights_only=True))
    probs, labels = predict(clf.eval(), nat_test, nat_eval)
    stage1_acc = classification_metrics(probs, labels)["accuracy"]
    timings["pretrain_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    ssl_dir = run_dir / "ssl"
    if args.reuse and (ssl_dir / "backbone.pt").is_file():  # stage 2 already ran in this run dir
        ssl = {"backbone": str(ssl_dir / "backbone.pt"), "history": str(ssl_dir / "history.json")}
    else:
        ssl = SSLStage(
            parser.get_parsed_content("datalist#train"),
            parser.get_parsed_content("ssl_transform"),
            create_backbone(args.backbone, in_channels=1),
            ssl_dir,
            init_weights=pre["backbone"],
            max_epochs=args.ssl_epochs,
            batch_size=args.ssl_batch,
            optimizer="adamw",
            learning_rate=1e-3,
            lr_scale_batch=False,
            weight_decay=1e-6,
            warmup_epochs=0.5,
            log_every=0,
        ).run()
    ssl_history = json.loads(Path(ssl["history"]).read_text())
    timings["ssl_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    ev = EvaluateStage(
        backbone=args.backbone,
        in_channels=1,
        num_classes=2,
        output_dir=run_dir / "evaluate",
        test_transform=parser.get_parsed_content("eval_transform"),
        sweep_inits={"remedis": ssl["backbone"], "baseline": pre["backbone"]},
        sweep_train_datalist=parser.get_parsed_content("datalist#train"),
        sweep_val_datalist=parser.get_parsed_content("datalist#val"),
        sweep_test_datalist=parser.get_parsed_content("datalist#test"),
        sweep_train_transform=parser.get_parsed_content("train_transform"),
        fractions=args.fractions,
        seeds=args.seeds,
        baseline_init="baseline",
        finetune_options={
            "max_epochs": args.finetune_epochs,
            "min_steps": args.min_steps,
            "batch_size": 128,
            "optimizer": "sgd",
            "learning_rate": 0.01,
            "weight_decay": 1e-4,
            "log_every": 0,
        },
        title="REMEDIS vs supervised baseline on PneumoniaMNIST (CPU benchmark)",
    ).run()
    timings["sweep_s"] = time.perf_counter() - t0

    summary = ev["summary"]
    print(f"\nstage 1 (CIFAR-10 subset, {args.pretrain_epochs} epochs) test accuracy: {stage1_acc:.3f}")
    print("stage 2 SimCLR loss per epoch:", " ".join(f"{x:.3f}" for x in ssl_history["loss"]))
    print(f"\n{'init':<10}{'labels':>8}{'AUC mean':>10}{'min':>8}{'max':>8}")
    for row in summary:
        print(
            f"{row['init']:<10}{100 * row['fraction']:>7.3g}%{row['auc_mean']:>10.4f}{row['auc_min']:>8.4f}"
            f"{row['auc_max']:>8.4f}"
        )
    for init, r in ev["label_reduction"].items():
        print(
            f"label-reduction factor {init}: {r['status']} factor={r['factor']:.3g} [{r['low']:.3g}, {r['high']:.3g}]"
        )
    print("timings (s):", {k: round(v) for k, v in timings.items()})
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "args": vars(args),
                "stage1_test_accuracy": stage1_acc,
                "ssl_history": ssl_history,
                "sweep_summary": summary,
                "label_reduction": ev["label_reduction"],
                "timings_s": timings,
                "report": ev["report"],
                "torch_threads": torch.get_num_threads(),
            },
            indent=2,
            default=str,
        )
    )
    print(f"wrote {out} and {ev['report']}")


if __name__ == "__main__":
    main()
