"""The plugin-author surface: every documented name imports, and the example plugin imports nothing else."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import monai_remedis.plugin_api as api

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "plugins" / "remedis-vicreg" / "src"


def _monai_remedis_imports(source: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("monai_remedis"):
            modules.add(node.module)
        elif isinstance(node, ast.Import):
            modules.update(a.name for a in node.names if a.name.startswith("monai_remedis"))
    return modules


def test_every_public_name_imports() -> None:
    assert api.__all__ and all(getattr(api, name, None) is not None for name in api.__all__)


def test_example_plugin_imports_only_the_plugin_api() -> None:
    imported = {path.name: _monai_remedis_imports(path) for path in sorted(EXAMPLE.rglob("*.py"))}
    assert set().union(*imported.values()) == {"monai_remedis.plugin_api"}, imported


def test_docs_list_exactly_the_stable_names() -> None:
    """docs/plugins.md's table of the stable surface and ``plugin_api.__all__`` stay the same list."""
    text = (REPO / "docs" / "plugins.md").read_text()
    section = text.split("## The stable surface", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `(\w+)`", section, flags=re.MULTILINE))
    assert documented == set(api.__all__)
