"""Typed stage configuration: defined once in the shared base config, shared by every stage, overridable by key."""

from __future__ import annotations

import pytest

from monai_remedis.configs import bundle_parser
from monai_remedis.stages import OptimConfig, RuntimeConfig, SweepConfig
from monai_remedis.stages.config import ssl_optim_defaults


def test_sweep_config_validates_and_normalises() -> None:
    with pytest.raises(ValueError, match="finetune.*linear_probe"):
        SweepConfig(mode="knn")
    with pytest.raises(ValueError, match="baseline_init 'baseline' is not among"):
        SweepConfig(inits={"remedis": None})
    config = SweepConfig(inits={"baseline": None}, fractions=[1, 0.1], seeds=["2"], optim={"max_epochs": 2})
    assert config.fractions == [0.1, 1.0] and config.seeds == [2] and config.optim == OptimConfig(max_epochs=2)


def test_optim_replace_leaves_the_original() -> None:
    base = OptimConfig(optimizer="adamw", learning_rate=3e-4)
    sweep = base.replace(max_epochs=1, batch_size=8)
    assert (sweep.optimizer, sweep.learning_rate, sweep.batch_size) == ("adamw", 3e-4, 8) and base.batch_size == 128
    assert ssl_optim_defaults().optimizer == "lars" and ssl_optim_defaults().lr_scale_batch


def test_every_stage_of_a_bundle_shares_one_runtime_object(tmp_path) -> None:
    parser = bundle_parser("cxr", "pipeline", limit=8, output_dir=str(tmp_path), device="cpu", amp=True)
    stages = [parser.get_parsed_content(name) for name in ("pretrain", "ssl", "finetune", "evaluate")]
    runtime = parser.get_parsed_content("runtime")
    assert isinstance(runtime, RuntimeConfig) and (runtime.device, runtime.amp) == ("cpu", True)
    assert all(stage.runtime is runtime for stage in stages)


def test_legacy_override_keys_reach_the_typed_configs(tmp_path) -> None:
    overrides = {
        "ssl_learning_rate": 0.3,
        "ssl_optimizer": "lars",
        "batch_size": 64,
        "finetune_batch_size": 32,
        "sweep_batch_size": 16,
        "sweep_epochs": 2,
        "sweep_fractions": [1.0, 0.5],
        "sweep_seeds": [0],
        "max_epochs": 4,
        "min_steps": 7,
        "resume": True,
        "seed": 3,
        "limit": 8,
    }
    parser = bundle_parser("cxr", "pipeline", output_dir=str(tmp_path), **overrides)
    ssl, finetune, evaluate = (parser.get_parsed_content(n) for n in ("ssl", "finetune", "evaluate"))
    assert (ssl.optim.optimizer, ssl.optim.learning_rate, ssl.optim.batch_size) == ("lars", 0.3, 64)
    assert ssl.optim.max_epochs == 8  # cxr: SSL runs 2 x max_epochs
    assert (finetune.optim.batch_size, finetune.optim.max_epochs, finetune.optim.min_steps) == (32, 4, 7)
    sweep = evaluate.sweep
    assert (sweep.optim.batch_size, sweep.optim.max_epochs, sweep.optim.min_steps) == (16, 2, 7)
    assert sweep.optim.learning_rate == finetune.optim.learning_rate  # one definition of the fine-tune recipe
    assert sweep.fractions == [0.5, 1.0] and sweep.seeds == [0]
    assert finetune.runtime.resume and finetune.runtime.seed == 3


@pytest.mark.parametrize(
    "strategy, expected",
    [
        ("simclr", {"temperature": 0.5}),
        ("micle", {"temperature": 0.5}),
        ("barlow_twins", {"projection_dim": 2048, "hidden_dim": 2048}),
        ("byol", {}),
    ],
)
def test_strategy_defaults_follow_the_chosen_strategy_and_an_explicit_dict_replaces_them(strategy, expected) -> None:
    assert bundle_parser("cxr", strategy=strategy).get_parsed_content("strategy_kwargs") == expected
    explicit = bundle_parser("cxr", strategy=strategy, strategy_kwargs={"projection_dim": 64})
    assert explicit.get_parsed_content("strategy_kwargs") == {"projection_dim": 64}
