"""Every hook in hookspecs is documented in docs/plugins.md and exercised here through an in-process plugin."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pluggy
import pytest
import torch.nn as nn

from monai_remedis.backbones import create_backbone
from monai_remedis.plugins import hookspecs, manager
from monai_remedis.plugins.hookspecs import hookimpl
from monai_remedis.plugins.registry import Registry
from monai_remedis.ssl import SSLStrategy, create_strategy

DOCS = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


def pluggy_hookspecs() -> dict[str, tuple[str, ...]]:
    """Hook name -> argument names, as pluggy itself parses ``monai_remedis.plugins.hookspecs``."""
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    return {
        name: tuple(caller.spec.argnames)
        for name, caller in vars(pm.hook).items()
        if isinstance(caller, pluggy.HookCaller) and caller.spec is not None
    }


def documented_hooks() -> dict[str, tuple[str, ...]]:
    """Hook name -> argument names of every ``### `hook(args)` `` section of docs/plugins.md."""
    sections = re.findall(r"^### `(\w+)\(([^)]*)\)`", DOCS.read_text(), flags=re.MULTILINE)
    return {name: tuple(a.strip() for a in args.split(",") if a.strip()) for name, args in sections}


HOOK_SPECS = pluggy_hookspecs()


@pytest.fixture
def fresh_plugins() -> Iterator[None]:
    manager.reset_plugins()
    yield
    manager.reset_plugins()


class _DummyBackbone(nn.Module):
    feature_dim = 3
    spatial_dims = 2

    def __init__(self, in_channels: int = 1, spatial_dims: int = 2) -> None:
        super().__init__()
        self.linear = nn.LazyLinear(3)


class _DummyStrategy(SSLStrategy):
    def __init__(self, backbone: nn.Module, answer: int = 42) -> None:
        super().__init__(backbone)
        self.answer = answer


class _InProcessPlugin:
    """Implements every hook, registering ``dummy_<kind>``."""

    @hookimpl
    def remedis_register_backbones(self, registry: Registry) -> None:
        registry.register("dummy_backbone", _DummyBackbone)

    @hookimpl
    def remedis_register_strategies(self, registry: Registry) -> None:
        registry.register("dummy_strategy", _DummyStrategy)


EXERCISES = {
    "remedis_register_backbones": lambda: isinstance(create_backbone("dummy_backbone", in_channels=1), _DummyBackbone),
    "remedis_register_strategies": lambda: (
        create_strategy("dummy_strategy", backbone=_DummyBackbone(), answer=7).answer == 7
    ),
}
"""Hook name -> a check that what the in-process plugin registered through it is usable by name."""


def test_hookspecs_are_known() -> None:
    """The hooks pluggy finds are exactly the documented, exercised and called ones: a new hookspec fails here."""
    found = set(HOOK_SPECS)
    assert {"remedis_register_backbones", "remedis_register_strategies"} <= found, found
    assert found == set(documented_hooks()), "hookspecs and the '### `hook(args)`' sections of docs/plugins.md differ"
    assert found == set(EXERCISES), "hookspecs and the EXERCISES of this module differ"
    assert found == {name for name in dir(_InProcessPlugin) if name.startswith("remedis_")}
    assert found == set(manager.HOOKS.values()), "a hook the plugin manager never calls (or calls without a spec)"


@pytest.mark.parametrize("hook", sorted(HOOK_SPECS))
def test_every_hook_is_documented(hook: str) -> None:
    documented = documented_hooks()
    assert hook in documented, f"docs/plugins.md has no '### `{hook}(...)`' section"
    assert documented[hook] == HOOK_SPECS[hook], f"docs/plugins.md documents {hook}{documented[hook]}"


@pytest.mark.parametrize("hook", sorted(HOOK_SPECS))
def test_every_hook_is_exercised(hook: str, fresh_plugins: None) -> None:
    assert hook in EXERCISES, f"add an in-process exercise of {hook} to EXERCISES"
    assert hasattr(_InProcessPlugin, hook)
    manager.register_plugin(_InProcessPlugin(), name="in_process_test_plugin")
    assert EXERCISES[hook]()
    kind = next(k for k, h in manager.HOOKS.items() if h == hook)
    assert manager.get_registries()[kind].get(f"dummy_{kind}").source.startswith("in_process_test_plugin")


def test_builtins_register_through_the_same_hooks(fresh_plugins: None) -> None:
    registries = manager.get_registries()
    assert registries["strategy"].get("moco_v2").source == "builtin"
    assert registries["backbone"].get("bit_resnet18").source == "builtin"


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match="Known strategy names: .*barlow_twins.*moco_v2"):
        create_strategy("mocov2", backbone=_DummyBackbone())
