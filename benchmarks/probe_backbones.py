"""Compare frozen backbones on a bundle's validation split: the stages' representation diagnostics, side by side.

Each checkpoint is loaded into its architecture and scored by
:func:`monai_remedis.evaluation.representation.probe_representation` on the bundle's checked training and
validation splits (first 512 items of each) with the bundle's evaluation transform: standardised effective rank,
mean cosine and a fixed-L2 linear probe's validation AUC. Test data is never read. The fundus bundle's backbone was
chosen with

    python benchmarks/probe_backbones.py --bundle fundus \\
        --checkpoints bit_resnet18=runs/big/pretrain/backbone.pt bit_resnet18_small=runs/cxr/pretrain/backbone.pt

(``name=path``: ``name`` is the registered backbone of ``path``). ``--set key=value`` overrides bundle keys (YAML
values), e.g. ``--set dataset_file=../shared/data/medmnist_breast/breastmnist.npz on_duplicate=drop``.

With ``--backbone`` every checkpoint is that architecture and ``name`` is a free label; ``--reference name`` then
compares every other checkpoint with that one on the same validation images, as the SSL stage compares its result
with its init (:func:`monai_remedis.evaluation.representation.probe_change`: paired bootstrap 95% CI of the probe
AUC change, and the stage's warning verdict). The check was calibrated on earlier SSL runs with

    python benchmarks/probe_backbones.py --bundle cxr --backbone bit_resnet18_small --reference stage1 \
        --checkpoints stage1=runs/cxr/pretrain/backbone.pt simclr=runs/cxr/ssl/backbone.pt
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import yaml
from select_finetune import parse_pairs  # this folder: the scripts run from it

from monai_remedis.backbones import create_backbone
from monai_remedis.backbones.weights import load_backbone_weights
from monai_remedis.configs import bundle_parser
from monai_remedis.evaluation.representation import degradation_verdict, probe_change, probe_representation


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bundle", required=True, help="bundle name or folder (its datalist and eval_transform)")
    p.add_argument("--checkpoints", nargs="+", required=True, help="name=path/to/backbone.pt")
    p.add_argument("--backbone", default=None, help="architecture of every checkpoint (then names are labels)")
    p.add_argument("--reference", default=None, help="name of the checkpoint the others are compared with")
    p.add_argument("--set", nargs="*", default=[], help="bundle overrides, key=value (YAML value)")
    p.add_argument("--max-items", type=int, default=512)
    p.add_argument("--out", default=None, help="JSON of the scores")
    args = p.parse_args(argv)
    checkpoints = parse_pairs(args.checkpoints)
    if args.reference is not None and args.reference not in checkpoints:
        p.error(f"--reference {args.reference!r} is not one of the --checkpoints names {sorted(checkpoints)}")
    overrides = {k: yaml.safe_load(v) for k, v in parse_pairs(args.set).items()}
    cfg = bundle_parser(args.bundle, **overrides)
    splits = cfg.get_parsed_content("checked_datalist")
    transform = cfg.get_parsed_content("eval_transform")
    probed, scores = {}, {}
    for name, path in checkpoints.items():
        backbone = create_backbone(args.backbone or name, in_channels=cfg["in_channels"])
        backbone = load_backbone_weights(backbone, path).eval()
        probed[name] = probe_representation(backbone, splits["train"], splits["val"], transform, args.max_items)
        scores[name] = {**probed[name].scores, "checkpoint": str(path)}
    print(f"| backbone | probe validation AUC | standardised erank | mean cosine |  ({args.bundle})")
    print("|---|---|---|---|")
    for name, s in scores.items():
        print(f"| {name} | {s['probe_val_auc']:.3f} | {s['feature_erank']:.2f} | {s['mean_cosine']:.4f} |")
    if args.reference is not None:
        print(f"\n| against {args.reference} | probe AUC change | paired 95% CI | SSL stage verdict |")
        print("|---|---|---|---|")
        for name in scores:
            if name == args.reference:
                continue
            change = probe_change(probed[args.reference], probed[name])
            verdict = degradation_verdict(change)
            scores[name]["change_vs_reference"] = {**change, "verdict": verdict}
            print(
                f"| {name} | {change['change']:+.4f} | {change['ci_low']:+.4f} to {change['ci_high']:+.4f} | "
                f"{'warns' if verdict else 'no warning'} |"
            )
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        record = {
            "bundle": args.bundle,
            "overrides": overrides,
            "backbone": args.backbone,
            "reference": args.reference,
            "scores": scores,
        }
        Path(args.out).write_text(json.dumps(record, indent=2))
    return scores


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
