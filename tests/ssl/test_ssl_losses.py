"""Each SSL loss equals a value computed by hand on a tiny fixed batch."""

from __future__ import annotations

import math

import pytest
import torch

from monai_remedis.ssl.losses import BarlowTwinsLoss, BYOLLoss, MoCoLoss, NTXentLoss, RelicLoss


def _log_softmax_at(row: list[float], index: int) -> float:
    return row[index] - math.log(sum(math.exp(v) for v in row))


def _softmax(row: list[float]) -> list[float]:
    total = sum(math.exp(v) for v in row)
    return [math.exp(v) / total for v in row]


def test_ntxent_hand_computed() -> None:
    """Two orthogonal images, identical views, t=1: every row is -1 + log(e^0 + e^1 + e^0)."""
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    loss = NTXentLoss(temperature=1.0)(z, z.clone())
    assert float(loss) == pytest.approx(math.log(2 + math.e) - 1)


def test_ntxent_hand_computed_at_temperature_0_1() -> None:
    """Unit embeddings a0=(1,0), a1=(.6,.8) | b0=(.8,.6), b1=(0,1) at t=0.1: logits are cosines x 10.

    Row a0: positive b0 (.8) against a1 (.6), b1 (0); row a1: b1 (.8) against a0 (.6), b0 (.96);
    row b0: a0 (.8) against a1 (.96), b1 (.6); row b1: a1 (.8) against a0 (0), b0 (.6). A loss that multiplied
    by the temperature (or ignored it) gives another value.
    """
    z0 = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    z1 = torch.tensor([[0.8, 0.6], [0.0, 1.0]])
    rows = [[8.0, 6.0, 0.0], [8.0, 6.0, 9.6], [8.0, 9.6, 6.0], [8.0, 0.0, 6.0]]  # positive first
    expected = -sum(_log_softmax_at(row, 0) for row in rows) / 4
    assert float(NTXentLoss(temperature=0.1)(z0, z1)) == pytest.approx(expected, rel=1e-5)
    assert float(NTXentLoss(temperature=0.1)(2 * z0, 3 * z1)) == pytest.approx(expected, rel=1e-5)  # cosines


@pytest.mark.parametrize("temperature", [0.2, 0.07])
def test_moco_hand_computed_at_its_temperature(temperature: float) -> None:
    """q=(.6,.8), k=(.8,.6), queue (1,0), (0,-1): logits [.96, .6, -.8] / t; MoCo v2 uses t=0.2."""
    q, k = torch.tensor([[0.6, 0.8]]), torch.tensor([[0.8, 0.6]])
    queue = torch.tensor([[1.0, 0.0], [0.0, -1.0]])
    expected = -_log_softmax_at([0.96 / temperature, 0.6 / temperature, -0.8 / temperature], 0)
    assert float(MoCoLoss(temperature=temperature)(q, k, queue)) == pytest.approx(expected, rel=1e-5)


def test_moco_hand_computed() -> None:
    """Logits [q.k, q.Q_1, q.Q_2] / 0.2 per query; loss is the mean of -log softmax at the key."""
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    k = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    queue = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])
    expected = -(_log_softmax_at([5.0, 0.0, -5.0], 0) + _log_softmax_at([0.0, 5.0, 0.0], 0)) / 2
    loss_fn = MoCoLoss(temperature=0.2)
    assert float(loss_fn(q, k, queue)) == pytest.approx(expected)
    assert float(loss_fn(3 * q, 2 * k, 5 * queue)) == pytest.approx(expected)  # cosine similarities


def test_moco_gradient_only_to_query() -> None:
    q, k, queue = (torch.randn(4, 3, requires_grad=True) for _ in range(3))
    MoCoLoss()(q, k, queue).backward()
    assert q.grad is not None and q.grad.abs().sum() > 0
    assert k.grad is None and queue.grad is None


def test_byol_hand_computed_and_stop_gradient() -> None:
    """cos = 0 and 1 -> 2 - 2cos = 2 and 0 -> mean 1; the target gets no gradient."""
    p = torch.tensor([[1.0, 0.0], [1.0, 1.0]], requires_grad=True)
    t = torch.tensor([[0.0, 3.0], [2.0, 2.0]], requires_grad=True)
    loss = BYOLLoss()(p, t)
    assert float(loss.detach()) == pytest.approx(1.0)
    loss.backward()
    assert t.grad is None and p.grad.abs().sum() > 0


def test_relic_hand_computed() -> None:
    z0 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    z1 = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    l01 = [[1.0, 0.6], [0.0, 0.8]]  # z0_i . z1_j (t = 1)
    l10 = [[1.0, 0.0], [0.6, 0.8]]  # z1_i . z0_j
    contrastive = -sum(_log_softmax_at(l01[i], i) + _log_softmax_at(l10[i], i) for i in range(2)) / 4
    p01, p10 = [_softmax(r) for r in l01], [_softmax(r) for r in l10]
    kl = [sum(a * math.log(a / b) for a, b in zip(pa, pb, strict=True)) for pa, pb in zip(p01, p10, strict=True)]
    kl_rev = [sum(b * math.log(b / a) for a, b in zip(pa, pb, strict=True)) for pa, pb in zip(p01, p10, strict=True)]
    invariance = (sum(kl) / 2 + sum(kl_rev) / 2) / 2
    loss_fn = RelicLoss(temperature=1.0, alpha=0.5)
    got_c, got_i = loss_fn.components(z0, z1)
    assert float(got_c) == pytest.approx(contrastive)
    assert float(got_i) == pytest.approx(invariance)
    assert float(loss_fn(z0, z1)) == pytest.approx(contrastive + 0.5 * invariance)


def test_relic_invariance_vanishes_for_identical_views() -> None:
    z = torch.randn(6, 4)
    _, invariance = RelicLoss().components(z, z.clone())
    assert float(invariance) == pytest.approx(0.0, abs=1e-6)


def test_barlow_twins_hand_computed() -> None:
    """Standardised columns (-1, 1), (1, -1) vs (1, -1), (1, -1): C = [[-1, -1], [1, 1]] -> 4 + lambda * 2."""
    z0 = torch.tensor([[1.0, 2.0], [3.0, 0.0]])
    z1 = torch.tensor([[2.0, 5.0], [0.0, 1.0]])
    loss_fn = BarlowTwinsLoss(lambda_offdiag=5e-3, eps=0.0)
    torch.testing.assert_close(loss_fn.cross_correlation(z0, z1), torch.tensor([[-1.0, -1.0], [1.0, 1.0]]))
    assert float(loss_fn(z0, z1)) == pytest.approx(4.0 + 5e-3 * 2.0)


def test_barlow_twins_zero_for_identical_decorrelated_views() -> None:
    z = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
    assert float(BarlowTwinsLoss(eps=0.0)(z, z.clone())) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize(
    "loss_fn, args",
    [
        (NTXentLoss(), (torch.randn(4, 3), torch.randn(5, 3))),
        (MoCoLoss(), (torch.randn(4, 3), torch.randn(4, 3), torch.randn(8, 2))),
        (BYOLLoss(), (torch.randn(4, 3), torch.randn(4, 2))),
        (RelicLoss(), (torch.randn(4, 3), torch.randn(3, 3))),
        (BarlowTwinsLoss(), (torch.randn(4, 3), torch.randn(4, 2))),
    ],
)
def test_shape_mismatch_is_reported(loss_fn: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> None:
    with pytest.raises(ValueError, match="expected"):
        loss_fn(*args)


def test_half_precision_inputs_are_scored_in_float32() -> None:
    z0, z1 = torch.randn(8, 4), torch.randn(8, 4)
    full = BarlowTwinsLoss()(z0, z1)
    half = BarlowTwinsLoss()(z0.bfloat16(), z1.bfloat16())
    assert half.dtype == torch.float32 and float(half) == pytest.approx(float(full), rel=0.05)
