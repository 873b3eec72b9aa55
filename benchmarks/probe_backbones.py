"""Compare frozen backbones on a bundle's validation split: the stages' representation diagnostics, side by side.

Each checkpoint is loaded into its architecture and scored by
:func:`monai_remedis.evaluation.representation.representation_diagnostics` on the bundle's checked training and
validation splits (first 512 items of each) with the bundle's evaluation transform: standardised effective rank,
mean cosine and a fixed-L2 linear probe's validation AUC. Test data is never read. The fundus bundle's backbone was
chosen with

    python benchmarks/probe_backbones.py --bundle fundus \\
        --checkpoints bit_resnet18=runs/big/pretrain/backbone.pt bit_resnet18_small=runs/cxr/pretrain/backbone.pt

(``name=path``: ``name`` is the registered backbone of ``path``). ``--set key=value`` overrides bundle keys (YAML
values), e.g. ``--set dataset_file=../shared/data/medmnist_breast/breastmnist.npz on_duplicate=drop``.
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
from monai_remedis.evaluation.representation import representation_diagnostics


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bundle", required=True, help="bundle name or folder (its datalist and eval_transform)")
    p.add_argument("--checkpoints", nargs="+", required=True, help="backbone_name=path/to/backbone.pt")
    p.add_argument("--set", nargs="*", default=[], help="bundle overrides, key=value (YAML value)")
    p.add_argument("--max-items", type=int, default=512)
    p.add_argument("--out", default=None, help="JSON of the scores")
    args = p.parse_args(argv)
    overrides = {k: yaml.safe_load(v) for k, v in parse_pairs(args.set).items()}
    cfg = bundle_parser(args.bundle, **overrides)
    splits = cfg.get_parsed_content("checked_datalist")
    transform = cfg.get_parsed_content("eval_transform")
    scores = {}
    for name, path in parse_pairs(args.checkpoints).items():
        backbone = load_backbone_weights(create_backbone(name, in_channels=cfg["in_channels"]), path).eval()
        scores[name] = representation_diagnostics(backbone, splits["train"], splits["val"], transform, args.max_items)
        scores[name]["checkpoint"] = str(path)
    print(f"| backbone | probe validation AUC | standardised erank | mean cosine |  ({args.bundle})")
    print("|---|---|---|---|")
    for name, s in scores.items():
        print(f"| {name} | {s['probe_val_auc']:.3f} | {s['feature_erank']:.2f} | {s['mean_cosine']:.4f} |")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        record = {"bundle": args.bundle, "overrides": overrides, "scores": scores}
        Path(args.out).write_text(json.dumps(record, indent=2))
    return scores


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
