"""A broken third-party plugin is skipped with a clear warning, and fails in strict mode."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from plugin_test_utils import run_python, subprocess_env, write_dist_info  # noqa: E402

LIST = "from monai_remedis.ssl import list_strategies; print('STRATEGIES', list_strategies())"
LIST_THEN_DISABLE = (
    LIST + "\nimport os\nfrom monai_remedis.plugins.manager import plugin_failures, reset_plugins\n"
    "print('FAILURES', sorted(f.name for f in plugin_failures()))\n"
    "reset_plugins()\n"
    "os.environ['MONAI_REMEDIS_STRICT_PLUGINS'] = '1'\n"
    "os.environ['MONAI_REMEDIS_DISABLE_PLUGINS'] = 'broken,broken_hook,typo_hook'\n"
    "print('DISABLED', list_strategies(), plugin_failures())\n"
)


@pytest.fixture(scope="module")
def broken_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Broken distributions: a module that fails to import, a hook that raises, a misspelt hook name."""
    site = tmp_path_factory.mktemp("site")
    (site / "broken_import_mod.py").write_text("raise ImportError('this plugin needs a missing dependency')\n")
    (site / "broken_hook_mod.py").write_text(
        "from monai_remedis.plugins.hookspecs import hookimpl\n\n"
        "@hookimpl\n"
        "def remedis_register_strategies(registry):\n"
        "    raise RuntimeError('registration exploded')\n"
    )
    (site / "typo_hook_mod.py").write_text(
        "from monai_remedis.plugins.hookspecs import hookimpl\n\n"
        "@hookimpl\n"
        "def remedis_register_strategy(registry):\n"  # the hook is remedis_register_strategies
        "    registry.register('never_here', lambda backbone: None)\n"
    )
    write_dist_info(site, "broken-plugin", "0.1", {"broken": "broken_import_mod"})
    write_dist_info(site, "typo-plugin", "0.3", {"typo_hook": "typo_hook_mod"})
    write_dist_info(site, "broken-hook-plugin", "0.2", {"broken_hook": "broken_hook_mod"})
    return site


@pytest.fixture(scope="module")
def lenient_run(broken_site: Path) -> subprocess.CompletedProcess[str]:
    return run_python(LIST_THEN_DISABLE, subprocess_env(broken_site))


def test_broken_plugins_are_skipped_with_a_warning(lenient_run: subprocess.CompletedProcess[str]) -> None:
    out, err = lenient_run.stdout, lenient_run.stderr
    assert lenient_run.returncode == 0, err
    assert "skipping plugin 'broken' from broken-plugin 0.1: ImportError: this plugin needs a missing dependency" in err
    assert "skipping plugin 'broken_hook' from broken-hook-plugin 0.2" in err
    assert "RuntimeError: registration exploded" in err
    assert "'simclr'" in out and "'moco_v2'" in out  # the host and the built-ins keep working
    assert "skipping plugin 'typo_hook' from typo-plugin 0.3" in err
    assert "unknown hook 'remedis_register_strategy'" in err  # a misspelt hook name is reported, not fatal
    assert "FAILURES ['broken', 'broken_hook', 'typo_hook']" in out


def test_disabled_broken_plugins_are_not_loaded_even_in_strict_mode(
    lenient_run: subprocess.CompletedProcess[str],
) -> None:
    disabled = next(line for line in lenient_run.stdout.splitlines() if line.startswith("DISABLED"))
    assert "'simclr'" in disabled and disabled.endswith("[]")


def test_strict_mode_fails_on_a_broken_plugin(broken_site: Path) -> None:
    proc = run_python(LIST, subprocess_env(broken_site, MONAI_REMEDIS_STRICT_PLUGINS="1"))
    assert proc.returncode != 0
    assert "PluginLoadError: Plugin 'broken' from broken-plugin 0.1 failed" in proc.stderr
    assert "STRATEGIES" not in proc.stdout


def test_a_plugin_reusing_a_builtin_entry_point_name_is_reported_and_not_loaded(tmp_path: Path) -> None:
    """Entry-point names are unique: a second distribution claiming ``builtin_strategies`` is reported, not run."""
    (tmp_path / "impostor_mod.py").write_text("raise AssertionError('the impostor was imported')\n")
    write_dist_info(tmp_path, "impostor-plugin", "0.4", {"builtin_strategies": "impostor_mod"})
    proc = run_python(LIST, subprocess_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "skipping plugin 'builtin_strategies' from impostor-plugin 0.4: entry point name already used" in proc.stderr
    assert "the impostor was imported" not in proc.stderr and "'simclr'" in proc.stdout
