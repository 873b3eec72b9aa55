"""The per-batch collapse score sees complete and dimensional collapse; the monitor's verdict calls only what SSL
made worse (one point, a line) and leaves healthy anisotropy alone (decaying spectrum, constant offset)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch

from monai_remedis.ssl.collapse import (
    COMPLETE_COLLAPSE_SPREAD,
    collapse_logs,
    collapse_score,
    collapse_verdict,
    normalised_spread,
    representation_state,
)

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


# ---- the reference-based verdict of the SSL monitor: standardised effective rank and relative spread ---------------

N, DIM = 512, 128


def _healthy(seed: int = 5) -> torch.Tensor:
    return torch.randn(N, DIM, generator=_gen(seed))


def _decaying(seed: int) -> torch.Tensor:
    """Full rank, variance of the i-th principal direction ~ i^-1.5, in a random basis (as real features)."""
    gen = _gen(seed)
    basis, _ = torch.linalg.qr(torch.randn(DIM, DIM, generator=_gen(99)))
    scales = torch.arange(1, DIM + 1, dtype=torch.float32).pow(-0.75)
    return (torch.randn(N, DIM, generator=gen) * scales) @ basis.T


def test_one_point_after_healthy_start_is_complete_collapse() -> None:
    reference = representation_state(_healthy())
    point = torch.randn(1, DIM, generator=_gen(6)) + 1e-9 * _healthy(7)
    assert "complete collapse" in collapse_verdict(representation_state(point), reference)
    shrunk = torch.randn(1, DIM, generator=_gen(6)) + 1e-3 * _healthy(7)  # standardised, this noise looks full rank
    assert "complete collapse" in collapse_verdict(representation_state(shrunk), reference)


def test_line_after_healthy_start_is_dimensional_collapse() -> None:
    gen = _gen(8)
    direction = torch.randn(1, DIM, generator=gen)
    line = 3.0 * torch.randn(1, DIM, generator=gen) + torch.randn(N, 1, generator=gen) @ direction
    state = representation_state(line)
    assert state["erank"] == pytest.approx(1.0, abs=1e-3)
    assert "dimensional collapse" in collapse_verdict(state, representation_state(_healthy()))
    assert "dimensional collapse" in collapse_verdict(state)  # a line is collapse even without a reference


def test_decaying_full_rank_spectrum_is_not_collapse() -> None:
    """A spectrum decaying like i^-1.5 (healthy features) scores >= 0.9 on the per-batch score, not on the monitor."""
    z = _decaying(10)
    assert float(collapse_score(z[:128])) > 0.5  # the per-batch score calls it (nearly) collapsed
    state = representation_state(z)
    assert collapse_verdict(state) is None
    assert collapse_verdict(state, representation_state(_decaying(11))) is None
    assert state["erank"] > 10


def test_constant_offset_with_informative_variation_is_not_collapse() -> None:
    """Stage-1 -> SSL case of issue 11: per-dimension std 0.0155 -> 0.0003 on an offset of norm ~12, still full rank."""
    offset = 12.0 * torch.nn.functional.normalize(torch.randn(1, DIM, generator=_gen(12)), dim=1)
    before = representation_state(offset + 0.0155 * _healthy(13))
    after = representation_state(offset + 0.0003 * _healthy(14))
    assert after["erank"] == pytest.approx(before["erank"], rel=0.05)  # blind to the offset and the scale
    assert collapse_verdict(after, before) is None


def test_score_does_not_depend_on_the_training_batch_size() -> None:
    """The monitor scores one fixed probe set, so loaders of batch 128 and 256 give the same step-0 rank."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from ssl_test_utils import TinyBackbone

    from monai_remedis.engines.ssl_trainer import SSLTrainer
    from monai_remedis.ssl import SimCLR

    images = torch.randn(512, 1, 8, 8, generator=_gen(15))
    eranks = []
    for batch in (128, 256):
        torch.manual_seed(0)
        strategy = SimCLR(TinyBackbone(), hidden_dim=16, projection_dim=8)
        loader = [{"view_0": x, "view_1": x.flip(-1)} for x in images.split(batch)]
        optimizer = torch.optim.SGD(strategy.parameters(), lr=0.0)
        trainer = SSLTrainer("cpu", max_epochs=1, train_data_loader=loader, network=strategy, optimizer=optimizer)
        trainer.run()
        eranks.append(trainer.state.metrics["backbone_erank_step0"])
    assert eranks[0] == pytest.approx(eranks[1], rel=1e-4)
