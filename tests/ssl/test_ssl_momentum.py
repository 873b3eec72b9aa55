"""EMA helpers behind MoCo's momentum encoder and BYOL's target network."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from monai_remedis.ssl.momentum import cosine_momentum, ema_update, frozen_copy


def test_frozen_copy_is_independent_and_gradient_free() -> None:
    online = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    target = frozen_copy(online)
    assert all(not p.requires_grad for p in target.parameters())
    assert all(p.requires_grad for p in online.parameters())
    with torch.no_grad():
        online[0].weight.add_(1.0)
    assert not torch.equal(online[0].weight, target[0].weight)


@pytest.mark.parametrize("momentum", [0.0, 0.5, 0.99, 1.0])
def test_ema_update_interpolates_parameters_and_copies_buffers(momentum: float) -> None:
    online = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    target = frozen_copy(online)
    old = [p.detach().clone() for p in target.parameters()]
    with torch.no_grad():
        for p in online.parameters():
            p.add_(torch.randn_like(p))
    online.train()(torch.randn(5, 3))  # moves the BN running statistics
    ema_update(target, online, momentum)
    for t, o, before in zip(target.parameters(), online.parameters(), old, strict=True):
        torch.testing.assert_close(t, momentum * before + (1 - momentum) * o.detach())
    for t, o in zip(target.buffers(), online.buffers(), strict=True):
        assert torch.equal(t, o)


def test_ema_update_rejects_different_networks() -> None:
    with pytest.raises(ValueError, match="differ"):
        ema_update(nn.Linear(2, 2), nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)), 0.9)


def test_cosine_momentum_schedule() -> None:
    assert cosine_momentum(0.0, 0.996) == pytest.approx(0.996)
    assert cosine_momentum(0.5, 0.996) == pytest.approx(0.998)
    assert cosine_momentum(1.0, 0.996) == pytest.approx(1.0)
    assert cosine_momentum(2.0, 0.996) == pytest.approx(1.0)  # clamped
    values = [cosine_momentum(t / 10, 0.9) for t in range(11)]
    assert values == sorted(values)
