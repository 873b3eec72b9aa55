"""LARS adapts every parameter group's step to its weight norm, GroupNorm and bias parameters included; a fine-tune's
backbone can train at a fraction of the head's learning rate."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from monai_remedis.models import Classifier
from monai_remedis.optim import build_optimizer
from monai_remedis.stages import OptimConfig


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


def _classifier() -> Classifier:
    backbone = nn.Sequential(nn.Conv2d(1, 8, 3), nn.GroupNorm(2, 8), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    backbone.feature_dim = 8
    return Classifier(backbone, 2)


def test_backbone_lr_scale_shrinks_only_the_backbone_step() -> None:
    """Discriminative fine-tuning: AdamW's first step moves each weight by about its group's LR."""
    torch.manual_seed(0)
    model = _classifier()
    with torch.no_grad():
        model.head[-1].weight.normal_()
    optimizer = build_optimizer(model, "adamw", lr=1e-2, weight_decay=0.0, lr_scales={"backbone": 0.1})
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    nn.functional.cross_entropy(model(torch.randn(4, 1, 8, 8)), torch.tensor([0, 1, 0, 1])).backward()
    optimizer.step()
    moved = {k: (v - before[k]).abs().max().item() for k, v in model.named_parameters()}
    assert moved["backbone.0.weight"] == pytest.approx(1e-3, rel=0.05)
    assert moved["head.1.weight"] == pytest.approx(1e-2, rel=0.05)


def test_backbone_lr_scale_keeps_weight_decay_off_biases_and_norms() -> None:
    model = _classifier()
    optimizer = build_optimizer(model, "adamw", lr=1e-3, weight_decay=0.05, lr_scales={"backbone": 0.1})
    group_of = {id(p): (g["lr"], g["weight_decay"]) for g in optimizer.param_groups for p in g["params"]}
    assert group_of[id(model.backbone[0].weight)] == pytest.approx((1e-4, 0.05))
    assert group_of[id(model.backbone[1].weight)] == pytest.approx((1e-4, 0.0))  # GroupNorm scale
    assert group_of[id(model.head[-1].weight)] == pytest.approx((1e-3, 0.05))
    assert group_of[id(model.head[-1].bias)] == pytest.approx((1e-3, 0.0))
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(list(model.parameters()))


def test_lr_scales_refuse_unknown_modules_and_non_positive_scales() -> None:
    with pytest.raises(ValueError, match="'encoder'.*top level: backbone, feature_norm, head"):
        build_optimizer(_classifier(), "adamw", lr=1e-3, lr_scales={"encoder": 0.1})
    with pytest.raises(ValueError, match="must be positive"):
        build_optimizer(_classifier(), "adamw", lr=1e-3, lr_scales={"backbone": 0.0})
    with pytest.raises(ValueError, match="backbone_lr_scale must be positive"):
        OptimConfig(backbone_lr_scale=-1.0)
