"""The collapse score sees complete collapse (a point, with or without noise) and dimensional collapse (line, plane)."""

from __future__ import annotations

import math

import pytest
import torch

from monai_remedis.ssl.collapse import COMPLETE_COLLAPSE_SPREAD, collapse_logs, collapse_score, normalised_spread

D = 128


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _point(batch: int = 32) -> torch.Tensor:
    return torch.randn(1, D, generator=_gen(1)).repeat(batch, 1)


def test_exact_point_scores_one() -> None:
    assert float(collapse_score(_point())) == 1.0
    assert float(collapse_logs(_point())["embedding_std"]) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("noise", [1e-6, 1e-3, 1e-2])
def test_point_plus_small_noise_scores_one(noise: float) -> None:
    """Centred, a point plus noise is isotropic noise: the effective rank alone calls it healthy (~0.03)."""
    z = _point() + noise * torch.randn(32, D, generator=_gen(2))
    assert float(normalised_spread(z)) < COMPLETE_COLLAPSE_SPREAD
    assert float(collapse_score(z)) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("batch, dim", [(32, 128), (64, 16), (256, 128)])
def test_healthy_random_embeddings_score_low(batch: int, dim: int) -> None:
    z = torch.randn(batch, dim, generator=_gen(3))
    assert float(collapse_score(z)) < 0.2
    std = float(collapse_logs(z)["embedding_std"])
    assert std * math.sqrt(dim) == pytest.approx(float(normalised_spread(z)), rel=0.1)  # both about 1 when healthy


@pytest.mark.parametrize("rank, minimum", [(1, 0.95), (2, 0.9)])
@pytest.mark.parametrize("offset", [0.0, 3.0])
def test_low_rank_embeddings_score_high(rank: int, minimum: float, offset: float) -> None:
    """A line or a plane through the origin or away from it: dimensional collapse, spread or not."""
    gen = _gen(4)
    z = offset * torch.randn(1, D, generator=gen) + torch.randn(32, rank, generator=gen) @ torch.randn(
        rank, D, generator=gen
    )
    assert float(collapse_score(z)) > minimum


def test_collapse_signals_carry_no_gradient() -> None:
    z = torch.randn(8, 4, requires_grad=True)
    logs = collapse_logs(z)
    assert not logs["embedding_std"].requires_grad and not logs["collapse_score"].requires_grad
