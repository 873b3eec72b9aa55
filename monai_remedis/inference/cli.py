"""``monai-remedis embed`` and ``monai-remedis predict``: features and class probabilities for new images."""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Any

import numpy as np


def add_parsers(sub: Any) -> None:
    """Add the ``embed`` and ``predict`` sub-commands to the top-level parser's subparsers."""
    for name, help_text, default_out in (
        ("embed", "pooled backbone features of new images (no labels needed) -> .npz", "embeddings.npz"),
        ("predict", "class probabilities of new images from a fine-tuned classifier.pt -> .csv", "predictions.csv"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("bundle", help="bundle name (cxr, ...) or folder: supplies the transform and backbone")
        p.add_argument("--weights", required=True, help="classifier.pt (fine-tune) or backbone.pt (stage 1/2)")
        p.add_argument("--images", required=True, help="folder of images, datalist .json, .csv or one image file")
        p.add_argument("--split", help="datalist .json: read this split only (default: every split)")
        p.add_argument("-o", "--output", default=default_out, help=f"file to write (default {default_out})")
        p.add_argument("--batch-size", type=int, default=64)
        p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
        p.add_argument(
            "--set",
            nargs=2,
            action="append",
            metavar=("KEY", "VALUE"),
            default=[],
            help="bundle config override, e.g. --set backbone bit_resnet34 (repeatable)",
        )


def _overrides(pairs: list[list[str]]) -> dict[str, Any]:
    import ast

    out: dict[str, Any] = {}
    for key, value in pairs:
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def cmd_embed(args: argparse.Namespace, rest: list[str]) -> int:
    """Write ``ids``, ``features`` (and ``labels`` where every item has one) to an ``.npz``."""
    from monai_remedis.inference import embed, image_items, load_bundle_model

    return _guarded("embed", lambda: _embed(args, embed, image_items, load_bundle_model))


def _embed(args: argparse.Namespace, embed: Any, image_items: Any, load_bundle_model: Any) -> int:
    model = load_bundle_model(args.bundle, args.weights, _overrides(args.set))
    items = image_items(args.images, args.split)
    features = embed(model.backbone, items, model.transform, args.batch_size, args.device)
    arrays: dict[str, Any] = {"ids": np.array([str(it["id"]) for it in items]), "features": features}
    if all("label" in it for it in items):
        arrays["labels"] = np.array([int(float(it["label"])) for it in items])
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.output, **arrays)
    print(f"wrote {args.output}: {features.shape[0]} images x {features.shape[1]} features")
    return 0


def cmd_predict(args: argparse.Namespace, rest: list[str]) -> int:
    """Write one CSV row per image: ``id, image, predicted class, p(class) ...``."""
    from monai_remedis.inference import image_items, load_bundle_model, predict_probabilities

    return _guarded("predict", lambda: _predict(args, image_items, load_bundle_model, predict_probabilities))


def _predict(args: argparse.Namespace, image_items: Any, load_bundle_model: Any, predict_probabilities: Any) -> int:
    model = load_bundle_model(args.bundle, args.weights, _overrides(args.set))
    if model.classifier is None:
        raise ValueError(
            f"'{args.weights}' holds a backbone without a classification head: give the fine-tune stage's "
            "classifier.pt to predict, or use 'embed' for features."
        )
    items = image_items(args.images, args.split)
    probs = predict_probabilities(model.classifier, items, model.transform, args.batch_size, args.device)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    with open(args.output, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "image", "prediction", *(f"p_{name}" for name in model.class_names)])
        for item, p in zip(items, probs, strict=True):
            writer.writerow([item["id"], item["image"], model.class_names[int(p.argmax())], *(f"{v:.6f}" for v in p)])
    print(f"wrote {args.output}: {len(items)} images, classes {', '.join(model.class_names)}")
    return 0


def _guarded(command: str, body: Any) -> int:
    """Run ``body``; a bad input ends with one line naming the file or key, exit status 1."""
    from monai_remedis.backbones.weights import WeightsLoadError

    try:
        return body()
    except (FileNotFoundError, KeyError, ValueError, RuntimeError, WeightsLoadError) as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        return 1
