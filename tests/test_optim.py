"""LARS adapts every parameter group's step to its weight norm, GroupNorm and bias parameters included."""

from __future__ import annotations

import torch
import torch.nn as nn

from monai_remedis.optim import build_optimizer


def test_lars_adapts_norm_and_bias_parameters() -> None:
    """At a SimCLR-scale LR a raw SGD step would move a GroupNorm bias by lr x grad; LARS moves it by ~0.1%."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.GroupNorm(2, 4))
    with torch.no_grad():
        model[1].bias.fill_(0.5)
    optimizer = build_optimizer(model, "lars", lr=0.15, weight_decay=1e-6, momentum=0.0)
    assert all(group["always_adapt"] for group in optimizer.param_groups)
    no_decay = [g for g in optimizer.param_groups if g["weight_decay"] == 0.0]
    assert no_decay and any(p is model[1].bias for g in no_decay for p in g["params"])
    before = model[1].bias.detach().clone()
    (100.0 * model(torch.randn(8, 1, 8, 8)).sum()).backward()  # a large gradient, as in an unstable SSL start
    optimizer.step()
    relative_step = (model[1].bias - before).norm() / before.norm()
    assert 0 < relative_step < 0.15 * 1e-3 * 1.01  # lr x trust_coeff: the step is relative to the weight norm
