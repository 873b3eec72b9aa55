"""The shared configuration layer and the bundles, both shipped inside the package.

``monai_remedis/configs/`` holds ``base.yaml`` (every default and typed config the stages share), one file per
stage (``pretrain/ssl/finetune/evaluate.yaml``: the stage object and ``run``), ``pipeline.yaml``,
``inference.yaml`` (a fine-tuned classifier on new images, with the ids MONAI's bundle tools expect) and
``logging.conf``. ``monai_remedis/bundles/<name>/configs/`` holds what is particular to a modality
(``common.yaml``, ``metadata.json``, overlays). A bundle runs with the list :func:`bundle_config_files` returns::

    base.yaml, <bundle>/common.yaml, <stage>.yaml [, <bundle>/<stage>.yaml], ..., [overlays]

See ``docs/design.md``.
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from monai.bundle import ConfigParser

STAGES = ("pretrain", "ssl", "finetune", "evaluate")
INFERENCE = "inference"
"""The inference workflow: not a stage of the pipeline, but a config list of its own (``inference.yaml``)."""


def shared_configs() -> Path:
    """The shared layer shipped in the package: ``base.yaml``, the stage files and ``logging.conf``."""
    return Path(str(resources.files("monai_remedis") / "configs"))


def unshadow_sys_path() -> None:
    """Take the package folder back off ``sys.path``.

    MONAI's ``ConfigWorkflow.run`` puts the parent of the first config file's folder on ``sys.path`` (a bundle's
    root, for its ``scripts``). Our first config file is ``monai_remedis/configs/base.yaml``, so that folder is the
    package itself, and its ``ssl`` subpackage then shadows the standard library's ``ssl`` in every later import.
    A sweep worker spawned under ``python -m monai.bundle run`` died on ``import asyncio``. Every stage calls this
    when it starts (:func:`~monai_remedis.engines.runtime.prepare_run_dir`), and so does the sweep before it spawns
    workers.
    """
    package = Path(__file__).resolve().parents[1]
    sys.path[:] = [entry for entry in sys.path if not entry or Path(entry).resolve() != package]


def bundles_root() -> Path:
    """The bundles shipped in the package (``monai_remedis/bundles``; in a checkout, a link to ``bundles/``)."""
    return Path(str(resources.files("monai_remedis") / "bundles"))


def known_bundles() -> list[str]:
    """Names of the bundles shipped in the package."""
    return sorted(p.parent.parent.name for p in bundles_root().glob("*/configs/common.yaml"))


def bundle_dir(name_or_path: str) -> Path:
    """Resolve a bundle given by path or by name (``cxr`` -> the ``cxr`` bundle shipped in the package).

    Raises:
        FileNotFoundError: listing the bundles shipped with the package.
    """
    for path in (Path(name_or_path), bundles_root() / name_or_path):
        if (path / "configs" / "common.yaml").is_file():
            return path
    raise FileNotFoundError(
        f"no bundle '{name_or_path}' (a folder with configs/common.yaml). Known: {', '.join(known_bundles())}."
    )


def bundle_config_files(bundle: Path, stage: str = "pipeline", extra: list[str] | None = None) -> list[str]:
    """The config list of ``stage`` in load order (``pipeline``: every stage, then ``pipeline.yaml``; ``common``:
    the shared base and the bundle's settings only, e.g. to build its transforms or datalists; ``inference``: the
    fine-tuned classifier on new images, the list MONAI's ``ckpt_export`` and ``verify_net_in_out`` take).

    ``monai_remedis/configs/base.yaml``, the bundle's ``common.yaml``, then per stage the shared stage file
    followed by the bundle's own file of that name when it has one (it replaces what it redefines, e.g. ct3d's
    import-only stage 1), then the overlay files (a path, or a name in the bundle's ``configs/``).
    """
    configs, shared = bundle / "configs", shared_configs()
    if stage == "pipeline":
        stages = [*STAGES, "pipeline"]
    elif stage in (*STAGES, INFERENCE, "common"):
        stages = [stage] if stage != "common" else []
    else:
        raise ValueError(f"unknown stage '{stage}'; choose from pipeline, common, {', '.join(STAGES)}, {INFERENCE}.")
    files = [shared / "base.yaml", configs / "common.yaml"]
    for name in stages:
        files += [f for f in (shared / f"{name}.yaml", configs / f"{name}.yaml") if f.is_file()]
    files += [Path(e) if Path(e).is_file() else configs / e for e in extra or []]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"bundle {bundle} lacks config files: {', '.join(missing)}.")
    return [str(f) for f in files]


def bundle_logging_file(bundle: Path) -> Path:
    """The bundle's ``configs/logging.conf`` when it has one, else the shared one."""
    own = bundle / "configs" / "logging.conf"
    return own if own.is_file() else shared_configs() / "logging.conf"


def bundle_parser(
    name_or_path: str, stage: str = "common", overlays: list[str] | None = None, **overrides: Any
) -> ConfigParser:
    """A ``monai.bundle.ConfigParser`` of a bundle stage's config list, with top-level ``overrides``."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(bundle_config_files(bundle_dir(name_or_path), stage, overlays))
    for key, value in overrides.items():
        parser[key] = value
    return parser
