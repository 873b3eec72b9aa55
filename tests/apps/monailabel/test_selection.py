"""Ranking rules of the active-learning strategies (NumPy only; runs without monailabel)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from remedis_label.selection import entropy, k_center_greedy, most_uncertain


def _radius(points: np.ndarray, centres: np.ndarray) -> float:
    d = np.linalg.norm(points[:, None] - centres[None], axis=2)
    return float(d.min(axis=1).max())


def test_k_center_picks_the_point_farthest_from_the_labelled_set_first() -> None:
    pool = np.array([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0], [10.5, 0.0]])
    picks = k_center_greedy(pool, np.array([[0.0, 0.1]]), 3)
    assert [i for i, _ in picks] == [3, 1, 2]
    assert picks[0][1] == pytest.approx(np.hypot(10.5, 0.1))


def test_k_center_greedy_is_within_twice_the_optimal_radius() -> None:
    rng = np.random.default_rng(0)
    pool, labelled = rng.normal(size=(12, 3)), rng.normal(size=(2, 3))
    picks = [i for i, _ in k_center_greedy(pool, labelled, 3)]
    greedy = _radius(pool, np.vstack([labelled, pool[picks]]))
    best = min(_radius(pool, np.vstack([labelled, pool[list(c)]])) for c in itertools.combinations(range(12), 3))
    assert len(set(picks)) == 3
    assert greedy <= 2 * best + 1e-9  # the 2-approximation guarantee of greedy k-center


def test_k_center_without_labels_starts_at_the_medoid_not_an_outlier() -> None:
    pool = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.3, 0.3], [50.0, 50.0]])
    picks = k_center_greedy(pool, None, 2)
    assert picks[0] == (3, 0.0)
    assert picks[1][0] == 4


def test_k_center_refuses_embeddings_of_different_sizes() -> None:
    with pytest.raises(ValueError, match="features"):
        k_center_greedy(np.zeros((3, 4)), np.zeros((1, 5)), 1)


def test_uncertainty_ranks_the_flattest_prediction_first() -> None:
    probs = np.array([[0.99, 0.01], [0.5, 0.5], [0.7, 0.3]])
    assert [i for i, _ in most_uncertain(probs, 3)] == [1, 2, 0]
    assert entropy(probs)[1] == pytest.approx(np.log(2))
