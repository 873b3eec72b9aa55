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
    "os.environ['MONAI_REMEDIS_DISABLE_PLUGINS'] = 'broken,broken_hook'\n"
    "print('DISABLED', list_strategies(), plugin_failures())\n"
)


@pytest.fixture(scope="module")
def broken_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two broken distributions: one whose module fails to import, one whose hook raises."""
    site = tmp_path_factory.mktemp("site")
    (site / "broken_import_mod.py").write_text("raise ImportError('this plugin needs a missing dependency')\n")
    (site / "broken_hook_mod.py").write_text(
        "from monai_remedis.plugins.hookspecs import hookimpl\n\n"
        "@hookimpl\n"
        "def remedis_register_strategies(registry):\n"
        "    raise RuntimeError('registration exploded')\n"
    )
    write_dist_info(site, "broken-plugin", "0.1", {"broken": "broken_import_mod"})
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
    assert "FAILURES ['broken', 'broken_hook']" in out


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
