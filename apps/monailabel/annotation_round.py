"""One annotation round in the MONAI Label app, measured: infer, label 20 images, train, infer again, next images.

An oracle annotator (the dataset's own labels) stands in for the person in 3D Slicer/OHIF. Everything else is the app
inside real monailabel, in process: ``app.infer``, ``app.next_sample`` (active learning), ``datastore.save_label``
(class label files, tag ``final``) and ``app.train`` (the bundle's fine-tune stage from the REMEDIS encoder).

    python apps/monailabel/annotation_round.py --encoder runs/cxr/ssl/backbone.pt --out /tmp/round

Held-out images (PneumoniaMNIST ``test`` by default) are only predicted, never labelled or used for choices.
The same round is run with the coverage ranking and with random batches of the same size, for comparison.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

APP_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(APP_DIR))


def write_pngs(npz: Path, split: str, count: int | None, folder: Path) -> dict[str, int]:
    """PneumoniaMNIST images of ``split`` as PNGs in ``folder`` (a datastore); returns image id -> true label."""
    from PIL import Image

    data = np.load(npz)
    images, labels = data[f"{split}_images"], data[f"{split}_labels"][:, 0]
    count = len(images) if count is None else min(count, len(images))
    folder.mkdir(parents=True, exist_ok=True)
    truth = {}
    for i in range(count):
        image_id = f"{split}_{i:04d}"
        Image.fromarray(images[i]).save(folder / f"{image_id}.png")
        truth[image_id] = int(labels[i])
    return truth


def held_out_metrics(runtime: Any, folder: Path, truth: dict[str, int]) -> dict[str, float]:
    """AUC and accuracy of the served model on held-out images."""
    from monai.metrics import compute_roc_auc

    ids = sorted(truth)
    probs = runtime.probabilities([str(folder / f"{i}.png") for i in ids])
    y = torch.tensor([truth[i] for i in ids])
    auc = float(compute_roc_auc(torch.as_tensor(probs[:, 1]), y))
    return {"auc": round(auc, 4), "accuracy": round(float((probs.argmax(1) == y.numpy()).mean()), 4), "n": len(ids)}


def run_round(args: argparse.Namespace, work: Path, strategy: str, seed: int) -> dict[str, Any]:
    """One round on a fresh datastore; ``strategy`` is ``cxr_coverage`` or ``random``."""
    from monailabel.interfaces.utils.app import app_instance, clear_cache
    from remedis_label.labels import LABEL_TAG, write_label_file

    data = Path(args.data) / "medmnist_pneumonia" / "pneumoniamnist.npz"
    studies, held_out = work / "studies", work / "held_out"
    pool = write_pngs(data, "train", args.pool, studies)
    truth_held = write_pngs(data, args.eval_split, None, held_out)
    conf = {"models": "cxr", "cxr_encoder": str(args.encoder), "model_dir": str(work / "model")}
    clear_cache()
    app = app_instance(str(APP_DIR), str(studies), conf)
    runtime = app.runtimes["cxr"]
    classes = runtime.model().class_names
    query = str(held_out / f"{sorted(truth_held)[0]}.png")
    out: dict[str, Any] = {"strategy": strategy, "seed": seed, "pool": len(pool), "query_image": query}
    out["infer_before"] = app.infer({"model": "cxr", "image": query})["params"]
    out["held_out_before"] = held_out_metrics(runtime, held_out, truth_held)

    if strategy == "random":
        batch = random.Random(seed).sample(sorted(pool), args.labels)
    else:
        batch = [r["id"] for r in app.next_sample({"strategy": strategy, "count": args.labels})["ranking"]]
    for image_id in batch:  # the oracle annotator labels the batch the app asked for
        name = classes[pool[image_id]]
        label = write_label_file(work / f"{image_id}.json", name)
        app.datastore().save_label(image_id, str(label), LABEL_TAG, {"label": name})
    out["labelled"] = {"ids": batch, "class_counts": {c: sum(classes[pool[i]] == c for i in batch) for c in classes}}

    started = time.time()
    out["train"] = app.train({"model": "cxr", "max_epochs": args.epochs, "seed": seed})
    out["train_seconds"] = round(time.time() - started, 1)
    out["infer_after"] = app.infer({"model": "cxr", "image": query})["params"]
    out["held_out_after"] = held_out_metrics(runtime, held_out, truth_held)
    out["next"] = {
        name: {
            k: v for k, v in app.next_sample({"strategy": name, "count": 5}).items() if k in ("id", "method", "ranking")
        }
        for name in ("cxr_coverage", "cxr_uncertainty")
    }
    return out


def summary(rounds: list[dict[str, Any]], query_truth: str) -> str:
    """Markdown table of the rounds."""
    first = rounds[0]
    lines = [
        f"Query image `{Path(first['query_image']).name}` (truth: {query_truth}); pool {first['pool']} unlabelled "
        f"images; held-out n={first['held_out_before']['n']}.",
        "",
        "| labels chosen by | seed | class counts | p(pneumonia) before -> after | held-out AUC before -> after | "
        "accuracy after | train s | next (coverage) | next (uncertainty) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rounds:
        p0, p1 = (r[k]["probabilities"]["pneumonia"] for k in ("infer_before", "infer_after"))
        auc0, auc1 = (r[k]["auc"] for k in ("held_out_before", "held_out_after"))
        nxt = r["next"]
        lines.append(
            f"| {r['strategy']} | {r['seed']} | {r['labelled']['class_counts']} | {p0:.3f} -> {p1:.3f} | "
            f"{auc0:.3f} -> {auc1:.3f} | {r['held_out_after']['accuracy']:.3f} | {r['train_seconds']} | "
            f"{nxt['cxr_coverage']['id']} | {nxt['cxr_uncertainty']['id']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from monai_remedis.data.paths import data_root

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--encoder", required=True, help="REMEDIS encoder: the cxr bundle's stage-2 backbone.pt")
    p.add_argument("--out", default="runs/monailabel_round", help="folder for datastores, models and round.json/.md")
    p.add_argument("--data", default=str(data_root()), help="shared data root (holds medmnist_pneumonia/)")
    p.add_argument("--pool", type=int, default=500, help="unlabelled images in the datastore (PneumoniaMNIST train)")
    p.add_argument("--labels", type=int, default=20, help="images the annotator labels in the round")
    p.add_argument("--eval-split", default="test", help="held-out split, predicted only")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--random-seeds", type=int, nargs="*", default=[0, 1, 2], help="random-batch baselines")
    args = p.parse_args(argv)
    out = Path(args.out)
    rounds = [run_round(args, out / "coverage", "cxr_coverage", 0)]
    rounds += [run_round(args, out / f"random_{s}", "random", s) for s in args.random_seeds]
    (out / "round.json").write_text(json.dumps(rounds, indent=2))
    data = np.load(Path(args.data) / "medmnist_pneumonia" / "pneumoniamnist.npz")
    truth = ["normal", "pneumonia"][int(data[f"{args.eval_split}_labels"][0, 0])]
    (out / "round.md").write_text(summary(rounds, truth))
    print((out / "round.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
