"""MONAI Label active-learning strategies: embedding coverage (k-center greedy) and predictive uncertainty."""

from __future__ import annotations

import logging
import time
from typing import Any

from monailabel.interfaces.datastore import Datastore
from monailabel.interfaces.tasks.strategy import Strategy

from remedis_label.runtime import BundleRuntime
from remedis_label.selection import k_center_greedy, most_uncertain

logger = logging.getLogger(__name__)


def _pool(request: dict[str, Any], datastore: Datastore) -> list[str]:
    """Unlabelled image ids, less those this strategy handed out within ``recent_seconds`` (default 0: none).

    MONAI Label stamps each image it serves with ``strategy.<name>.ts``; skipping recent ones keeps two annotators
    asking at once from getting the same image.
    """
    images = datastore.get_unlabeled_images()
    recent = float(request.get("recent_seconds", 0))
    if recent <= 0:
        return images
    now, name = time.time(), request.get("strategy", "")
    info = {i: datastore.get_image_info(i).get("strategy", {}).get(name, {}) for i in images}
    return [i for i in images if now - info[i].get("ts", 0) > recent]


def _result(ids: list[str], picks: list[tuple[int, float]], method: str) -> dict[str, Any]:
    ranking = [{"id": ids[i], "score": round(score, 6)} for i, score in picks]
    return {"id": ranking[0]["id"], "score": ranking[0]["score"], "method": method, "ranking": ranking}


class CoverageStrategy(Strategy):
    """Next image = the unlabelled one farthest from every labelled image in the served model's embedding space.

    ``ranking`` (length ``count``, default 10) continues the greedy k-center order: labelling the list top-down
    covers the unlabelled pool fastest. With nothing labelled the first pick is the pool's medoid.

    Args:
        runtime: the bundle's shared model holder (embeddings cached until a new model is published).
    """

    def __init__(self, runtime: BundleRuntime) -> None:
        super().__init__(f"{runtime.bundle}: k-center greedy coverage of the REMEDIS embedding space")
        self.runtime = runtime

    def __call__(self, request: dict[str, Any], datastore: Datastore) -> dict[str, Any] | None:
        pool = _pool(request, datastore)
        if not pool:
            return None
        labelled = datastore.get_labeled_images()
        uri = datastore.get_image_uri
        features = self.runtime.embeddings([uri(i) for i in pool + labelled])
        picks = k_center_greedy(
            features[: len(pool)], features[len(pool) :], int(request.get("count", 10)), normalise=True
        )
        return _result(pool, picks, "coverage")


class UncertaintyStrategy(Strategy):
    """Next image = the unlabelled one whose predicted class probabilities have the highest entropy.

    Before a classifier has been fine-tuned every prediction is uniform, so it falls back to coverage
    (``method`` in the answer says which rule chose).

    Args:
        runtime: the bundle's shared model holder.
    """

    def __init__(self, runtime: BundleRuntime) -> None:
        super().__init__(f"{runtime.bundle}: highest predictive entropy of the fine-tuned classifier")
        self.runtime = runtime
        self._coverage = CoverageStrategy(runtime)

    def __call__(self, request: dict[str, Any], datastore: Datastore) -> dict[str, Any] | None:
        if not self.runtime.model().trained:
            logger.info("%s: no fine-tuned classifier yet; choosing by coverage", self.runtime.bundle)
            return self._coverage(request, datastore)
        pool = _pool(request, datastore)
        if not pool:
            return None
        probs = self.runtime.probabilities([datastore.get_image_uri(i) for i in pool])
        return _result(pool, most_uncertain(probs, int(request.get("count", 10))), "uncertainty")
