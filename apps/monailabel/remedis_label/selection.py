"""Which unlabelled images to label next: coverage of the embedding space and predictive uncertainty.

Pure NumPy, so the ranking can be checked without MONAI Label installed.

Coverage is the greedy k-center rule of Sener & Savarese, "Active Learning for Convolutional Neural Networks: A Core-Set
Approach" (ICLR 2018): repeatedly pick the pool image farthest from everything labelled or already picked, so the
labelled set covers the embedding space with the smallest radius. Uncertainty is the entropy of the predicted class
probabilities (Shannon 1948; "uncertainty sampling", Lewis & Gale 1994).

Example::

    >>> import numpy as np
    >>> pool = np.array([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0]])
    >>> labelled = np.array([[0.0, 0.1]])
    >>> [int(i) for i, _ in k_center_greedy(pool, labelled, 2)]
    [2, 1]
"""

from __future__ import annotations

import numpy as np


def _normalise(features: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm: distances then compare directions, as the contrastive loss does."""
    features = np.asarray(features, dtype=np.float64)
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norms, 1e-12)


def _sq_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances ``(len(a), len(b))``, clipped at zero against rounding."""
    return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T, 0.0)


def k_center_greedy(
    pool: np.ndarray, labelled: np.ndarray | None, count: int, normalise: bool = False
) -> list[tuple[int, float]]:
    """Greedy k-center order of ``pool`` given the ``labelled`` embeddings.

    Args:
        pool: ``(N, D)`` embeddings of unlabelled images.
        labelled: ``(M, D)`` embeddings of labelled images; None or empty starts from the pool's medoid (the image
            with the smallest mean distance to the others), so the first pick is typical, not an outlier.
        count: how many to pick (at most ``N``).
        normalise: compare unit-norm embeddings (cosine geometry).

    Returns:
        ``(pool index, distance to the nearest labelled-or-picked image at the time of picking)`` in pick order;
        the distance of the medoid start is 0.

    Raises:
        ValueError: when ``pool`` and ``labelled`` differ in feature size.
    """
    pool = _normalise(pool) if normalise else np.asarray(pool, dtype=np.float64)
    count = min(int(count), len(pool))
    if count <= 0:
        return []
    picks: list[tuple[int, float]] = []
    if labelled is not None and len(labelled):
        labelled = _normalise(labelled) if normalise else np.asarray(labelled, dtype=np.float64)
        if labelled.shape[1] != pool.shape[1]:
            raise ValueError(f"pool has {pool.shape[1]} features per image, labelled {labelled.shape[1]}.")
        nearest = _sq_distances(pool, labelled).min(axis=1)
    else:
        start = int(np.sqrt(_sq_distances(pool, pool)).mean(axis=1).argmin())
        picks.append((start, 0.0))
        nearest = _sq_distances(pool, pool[start : start + 1])[:, 0]
    while len(picks) < count:
        index = int(nearest.argmax())
        picks.append((index, float(np.sqrt(nearest[index]))))
        nearest = np.minimum(nearest, _sq_distances(pool, pool[index : index + 1])[:, 0])
    return picks


def entropy(probabilities: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) of each row of ``probabilities`` ``(N, C)``."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-12, 1.0)
    return -(p * np.log(p)).sum(axis=1)


def most_uncertain(probabilities: np.ndarray, count: int) -> list[tuple[int, float]]:
    """``(index, entropy)`` of the ``count`` rows with the highest entropy, highest first (ties: lower index)."""
    scores = entropy(probabilities)
    order = np.argsort(-scores, kind="stable")[: max(0, int(count))]
    return [(int(i), float(scores[i])) for i in order]
