"""MONAI Label train task: fine-tune from the REMEDIS encoder on the datastore's class labels, then publish."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from monailabel.interfaces.datastore import Datastore
from monailabel.interfaces.tasks.train import TrainTask

from remedis_label.finetune import FinetuneJob, run_finetune
from remedis_label.labels import labelled_items
from remedis_label.runtime import BundleRuntime

logger = logging.getLogger(__name__)

STATS_NAME = "train_stats.json"


class RemedisFinetuneTrain(TrainTask):
    """Fine-tune the bundle's classifier on every image labelled ``final`` and publish it to the app's model.

    Each run starts again from the REMEDIS encoder (not from the last classifier), as the REMEDIS recipe fine-tunes,
    so a round never inherits the previous round's overfitting. The request may set ``max_epochs``, ``min_steps``,
    ``val_split`` (fraction of labelled images held out for checkpoint selection; default 0: with a few dozen labels
    a validation AUC on a handful of images picks noise, the last epoch is kept), ``device`` and ``seed``.

    Args:
        runtime: the bundle's shared model holder.
        max_epochs: default epochs (the bundle's ``min_steps`` lengthens runs on few labels).
    """

    def __init__(self, runtime: BundleRuntime, max_epochs: int = 10) -> None:
        super().__init__(f"Fine-tune {runtime.bundle} from the REMEDIS encoder on the datastore's class labels")
        self.runtime = runtime
        self._defaults = {"max_epochs": max_epochs, "min_steps": 60, "val_split": 0.0, "seed": 0}

    def config(self) -> dict[str, Any]:
        return dict(self._defaults)

    def stats(self) -> dict[str, Any]:
        """The last run's summary (MONAI Label shows it as ``train_stats``)."""
        path = self.runtime.settings.model_dir / STATS_NAME
        return json.loads(path.read_text()) if path.is_file() else {}

    def __call__(self, request: dict[str, Any], datastore: Datastore) -> dict[str, Any]:
        """Train on the datastore's labels; returns the run summary (also written to ``train_stats.json``).

        Raises:
            ValueError: with fewer than two labelled classes.
        """
        options = {**self._defaults, **{k: request[k] for k in self._defaults if k in request}}
        model = self.runtime.model()
        items = labelled_items(datastore, model.class_names)
        classes = sorted({int(i["label"]) for i in items})
        if len(classes) < 2:
            raise ValueError(
                f"{self.runtime.bundle}: {len(items)} labelled images cover {len(classes)} class(es); label images "
                "of at least two classes before training."
            )
        train, val = split_items(items, float(options["val_split"]))
        max_epochs, min_steps = int(options["max_epochs"]), int(options["min_steps"])
        run_dir = self.runtime.settings.model_dir / "runs" / time.strftime("%Y%m%d_%H%M%S")
        started = time.time()
        result = run_finetune(
            FinetuneJob(
                bundle=self.runtime.bundle,
                train_items=train,
                val_items=val,
                output_dir=run_dir,
                init_weights=self.runtime.settings.encoder,
                max_epochs=max_epochs,
                min_steps=min_steps,
                epoch_length=epoch_length(len(train), max_epochs, min_steps),
                device=str(request.get("device", self.runtime.settings.device)),
                seed=int(options["seed"]),
                overrides=self.runtime.settings.overrides,
            )
        )
        published = self.runtime.publish(result["classifier"])
        stats = {
            "bundle": self.runtime.bundle,
            "num_labels": len(train),
            "num_val": len(val),
            "class_counts": {model.class_names[c]: sum(int(i["label"]) == c for i in train) for c in classes},
            "epochs": result.get("epochs"),
            "best_val_auc": result.get("best_val_auc"),
            "run_dir": str(run_dir),
            "published": str(published),
            "init_weights": str(self.runtime.settings.encoder),
            "seconds": round(time.time() - started, 1),
        }
        (self.runtime.settings.model_dir / STATS_NAME).write_text(json.dumps(stats, indent=2))
        logger.info("%s: fine-tuned on %d labels, published %s", self.runtime.bundle, len(train), published)
        return stats


def epoch_length(num_items: int, max_epochs: int, min_steps: int, batch_size: int = 128) -> int:
    """Iterations per epoch so that ``max_epochs`` epochs reach ``min_steps``, and never less than one data pass.

    With a few dozen labels one pass is one batch: reaching ``min_steps`` by more epochs would save a checkpoint
    per step, so the epochs get longer instead (the loader restarts within an epoch).
    """
    one_pass = max(1, -(-num_items // batch_size))
    return max(one_pass, -(-min_steps // max(1, max_epochs)))


def split_items(items: list[dict[str, Any]], val_split: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Hold out every k-th item of each class (``val_split`` of it, deterministic); 0 keeps everything for training."""
    if val_split <= 0:
        return list(items), []
    step = max(2, round(1 / val_split))
    train, val, seen = [], [], {}
    for item in sorted(items, key=lambda i: str(i["id"])):
        n = seen[item["label"]] = seen.get(item["label"], 0) + 1
        (val if n % step == 0 else train).append(item)
    return train, val
