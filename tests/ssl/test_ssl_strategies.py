"""What makes each strategy that strategy: outputs, collapse signals, gradient routing, momentum and queue updates."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ssl_test_utils import BUILTIN, TinyBackbone, build_strategy, make_views  # noqa: E402

from monai_remedis.engines.ssl_trainer import SSLTrainer  # noqa: E402
from monai_remedis.ssl import BYOL, RELIC, BarlowTwins, MICLe, MoCoV2, SimCLR, create_strategy, list_strategies  # noqa: E402
from monai_remedis.ssl.losses import MoCoLoss  # noqa: E402
from monai_remedis.ssl.momentum import cosine_momentum  # noqa: E402

TARGET_PREFIXES = ("momentum_", "target_")


def _target_params(strategy: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p for n, p in strategy.named_parameters() if n.startswith(TARGET_PREFIXES)}


def test_every_method_of_the_paper_is_registered() -> None:
    assert {"simclr", "moco_v2", "byol", "relic", "barlow_twins", "micle"} <= set(list_strategies())


@pytest.mark.parametrize(
    "cls, defaults",
    [
        (SimCLR, {"temperature": 0.1, "projection_dim": 128}),
        (MoCoV2, {"temperature": 0.2, "queue_size": 65536, "momentum": 0.999, "projection_dim": 128}),
        (BYOL, {"projection_dim": 256, "hidden_dim": 4096, "base_momentum": 0.996, "final_momentum": 1.0}),
        (RELIC, {"temperature": 0.1, "alpha": 1.0, "projection_dim": 128}),
        (BarlowTwins, {"lambda_offdiag": 5e-3, "projection_dim": 8192, "hidden_dim": 8192}),
        (MICLe, {"temperature": 0.1, "projection_dim": 128}),
    ],
)
def test_paper_defaults(cls: type, defaults: dict[str, float]) -> None:
    params = inspect.signature(cls.__init__).parameters
    assert {k: params[k].default for k in defaults} == defaults


@pytest.mark.parametrize("name", BUILTIN)
def test_forward_returns_loss_and_collapse_signals(name: str) -> None:
    strategy = build_strategy(name)
    out = strategy(make_views(6))
    assert out["loss"].ndim == 0 and torch.isfinite(out["loss"]) and out["loss"].requires_grad
    assert 0.0 < float(out["embedding_std"]) < 1.0
    assert 0.0 <= float(out["collapse_score"]) <= 1.0
    assert strategy.num_views == 2 and strategy.encoder is strategy.backbone
    assert strategy.transferable_state_dict().keys() == strategy.backbone.state_dict().keys()


@pytest.mark.parametrize("name", BUILTIN)
def test_gradients_reach_the_online_network_only(name: str) -> None:
    strategy = build_strategy(name)
    targets = _target_params(strategy)
    before = {n: p.detach().clone() for n, p in targets.items()}
    strategy(make_views(6))["loss"].backward()
    online = {n: p for n, p in strategy.named_parameters() if n not in targets}
    assert all(p.requires_grad and p.grad is not None for p in online.values())
    assert strategy.backbone.net[0].weight.grad.abs().sum() > 0
    assert all(not p.requires_grad and p.grad is None for p in targets.values())
    assert all(torch.equal(p, before[n]) for n, p in targets.items())
    assert bool(targets) == (name in ("moco_v2", "byol"))


def test_collapse_signal_reports_a_collapsed_encoder() -> None:
    strategy = build_strategy("simclr", batchnorm=False)
    torch.nn.init.zeros_(strategy.backbone.net[-1].weight)  # every image -> the same feature vector
    out = strategy(make_views(6))
    assert float(out["embedding_std"]) == pytest.approx(0.0, abs=1e-6)
    assert float(out["collapse_score"]) == pytest.approx(1.0)


def test_strategy_kwargs_override_defaults() -> None:
    strategy = create_strategy("moco_v2", backbone=TinyBackbone(), temperature=0.5, queue_size=32, projection_dim=16)
    assert strategy.criterion.temperature == 0.5 and tuple(strategy.queue.shape) == (32, 16)
    barlow = create_strategy("barlow_twins", backbone=TinyBackbone(), lambda_offdiag=0.01, hidden_dim=32)
    assert barlow.criterion.lambda_offdiag == 0.01


def _fake_step(strategy: torch.nn.Module, scale: float = 0.1) -> None:
    with torch.no_grad():
        for p in strategy.parameters():
            if p.requires_grad:
                p.add_(scale)


def test_moco_momentum_update_and_queue() -> None:
    strategy = build_strategy("moco_v2")  # queue_size 12, momentum 0.9
    views = make_views(4)
    with torch.no_grad():
        expected_keys = F.normalize(strategy.momentum_projector(strategy.momentum_backbone(views[1])), dim=1)
        q = strategy.projector(strategy.backbone(views[0]))
        expected_loss = MoCoLoss(0.2)(q, expected_keys, strategy.queue)
    out = strategy(views)
    assert float(out["loss"].detach()) == pytest.approx(float(expected_loss), rel=1e-5)  # the queue is the negatives
    old_target = {n: p.detach().clone() for n, p in _target_params(strategy).items()}
    _fake_step(strategy)
    strategy.after_step(progress=0.5)
    online = dict(strategy.named_parameters())
    for name, old in old_target.items():
        source = online[name.replace("momentum_", "")]
        torch.testing.assert_close(_target_params(strategy)[name], 0.9 * old + 0.1 * source.detach())
    torch.testing.assert_close(strategy.queue[:4], expected_keys)
    assert int(strategy.queue_ptr) == 4
    strategy.after_step(progress=0.6)  # no new forward: nothing is enqueued twice
    assert int(strategy.queue_ptr) == 4
    keys = F.normalize(torch.randn(10, 8), dim=1)
    strategy.enqueue(keys)  # ring buffer: slots 4..11 then 0..1
    assert int(strategy.queue_ptr) == 2
    torch.testing.assert_close(strategy.queue[4:], keys[:8])
    torch.testing.assert_close(strategy.queue[:2], keys[8:])


def test_moco_keys_are_not_enqueued_in_eval_mode() -> None:
    strategy = build_strategy("moco_v2").eval()
    with torch.no_grad():
        strategy(make_views(4))
    strategy.after_step(progress=0.1)
    assert int(strategy.queue_ptr) == 0


def test_byol_cosine_momentum_and_ema() -> None:
    strategy = build_strategy("byol", base_momentum=0.9, final_momentum=1.0)
    old_target = {n: p.detach().clone() for n, p in _target_params(strategy).items()}
    _fake_step(strategy)
    strategy.after_step(progress=0.5)
    m = cosine_momentum(0.5, 0.9, 1.0)
    assert m == pytest.approx(0.95) and strategy.momentum == pytest.approx(m)
    online = dict(strategy.named_parameters())
    for name, old in old_target.items():
        source = online[name.replace("target_", "")]
        torch.testing.assert_close(_target_params(strategy)[name], m * old + (1 - m) * source.detach())
    frozen = {n: p.detach().clone() for n, p in _target_params(strategy).items()}
    _fake_step(strategy)
    strategy.after_step(progress=1.0)  # momentum 1 at the end: the target stops moving
    assert all(torch.equal(p, frozen[n]) for n, p in _target_params(strategy).items())
    assert float(strategy(make_views(4))["target_momentum"]) == pytest.approx(1.0)


def test_relic_and_barlow_log_their_terms() -> None:
    relic = build_strategy("relic")(make_views(6))
    assert float(relic["loss"].detach()) == pytest.approx(float(relic["contrastive"] + relic["invariance"]), rel=1e-5)
    barlow = build_strategy("barlow_twins")(make_views(6))
    expected = float(barlow["on_diag"] + 5e-3 * barlow["off_diag"])
    assert float(barlow["loss"].detach()) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("name", ["moco_v2", "byol"])
def test_trainer_calls_after_step(name: str) -> None:
    """Through SSLTrainer: targets move after each optimiser step and MoCo's queue fills."""
    strategy = build_strategy(name)
    loader = [{"view_0": v0, "view_1": v1} for v0, v1 in (make_views(4, seed=s) for s in range(2))]
    before = {n: p.detach().clone() for n, p in _target_params(strategy).items()}
    optimizer = torch.optim.SGD([p for p in strategy.parameters() if p.requires_grad], lr=0.1)
    trainer = SSLTrainer("cpu", max_epochs=1, train_data_loader=loader, network=strategy, optimizer=optimizer)
    trainer.run()
    assert {"loss", "embedding_std", "collapse_score"} <= set(trainer.state.output)
    moved = {n for n, p in _target_params(strategy).items() if not torch.equal(p, before[n])}
    assert {n for n in before if n.endswith("backbone.net.0.weight")} <= moved
    if name == "moco_v2":
        assert int(strategy.queue_ptr) == 8


LEARNING_KWARGS = {
    "simclr": {},
    "micle": {},
    "relic": {},
    "moco_v2": {"queue_size": 32, "momentum": 0.99},
    "byol": {"base_momentum": 0.99},
    "barlow_twins": {},
}


@pytest.mark.parametrize("name", BUILTIN)
def test_loss_falls_on_an_easy_task(name: str) -> None:
    """32 fixed images, views = image + noise: 50 AdamW steps lower the mean loss of the last 10 steps by 10%+."""
    torch.manual_seed(0)
    images = torch.randn(32, 1, 8, 8)
    kwargs = {"hidden_dim": 64, "projection_dim": 32} | LEARNING_KWARGS[name]
    strategy = create_strategy(name, backbone=TinyBackbone(32), **kwargs)
    optimizer = torch.optim.AdamW([p for p in strategy.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for step in range(50):
        x = images[torch.randperm(32)[:16]]
        loss = strategy([x + 0.3 * torch.randn_like(x), x + 0.3 * torch.randn_like(x)])["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        strategy.after_step(step / 50)
        losses.append(float(loss.detach()))
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < 0.9 * first, (first, last)
