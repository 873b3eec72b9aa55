"""Offline checks of every bundle under bundles/: the metadata fields the MONAI bundle specification requires
(``verify_metadata`` downloads its schema, so it cannot run here), metadata that agrees with the configs, and
configs that parse, reference only ids that exist, name importable ``_target_``s and expose the override keys."""

from __future__ import annotations

import json
import pydoc
from pathlib import Path
from typing import Any

import pytest
from monai.bundle import ConfigParser
from monai.bundle.reference_resolver import ReferenceResolver

from monai_remedis.cli import STAGES, bundle_config_files, bundle_logging_file
from monai_remedis.data.paths import PROJECT_ROOT

BUNDLES = sorted(p.parent.parent for p in (PROJECT_ROOT / "bundles").glob("*/configs/metadata.json"))
BUNDLE_IDS = [b.name for b in BUNDLES]
STAGE_FILES = (*STAGES, "pipeline")

REQUIRED_META = {
    "schema": str,
    "version": str,
    "changelog": dict,
    "monai_version": str,
    "pytorch_version": str,
    "numpy_version": str,
    "required_packages_version": dict,
    "task": str,
    "description": str,
    "authors": str,
    "copyright": str,
    "network_data_format": dict,
}
TENSOR_KEYS = {
    "type": str,
    "format": str,
    "num_channels": int,
    "spatial_shape": list,
    "dtype": str,
    "value_range": list,
    "is_patch_data": bool,
    "channel_def": dict,
}
OVERRIDE_KEYS = (
    "dataset_dir",
    "output_dir",
    "max_epochs",
    "batch_size",
    "backbone",
    "strategy",
    "limit",
    "num_workers",
    "device",
    "amp",
    "resume",
    "seed",
    "log_every",
    "progress_bar",
    "epoch_length",
    "in_channels",
    "num_classes",
    "image_size",
)


def _metadata(bundle: Path) -> dict[str, Any]:
    return json.loads((bundle / "configs" / "metadata.json").read_text())


def _parser(bundle: Path, stage: str = "common", *overlays: str) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config(bundle_config_files(bundle, stage, [f"{o}.yaml" for o in overlays]))
    parser.parse()
    return parser


def _walk(node: Any, path: str = "") -> list[tuple[str, Any]]:
    """(id, value) of every leaf and of every dict, depth first."""
    out = [(path, node)]
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in children:
        out += _walk(value, f"{path}::{key}" if path else str(key))
    return out


def _broken_references(parser: ConfigParser) -> list[str]:
    known = set(parser.ref_resolver.items)
    broken = []
    for node_id, value in _walk(parser.get()):
        if isinstance(value, str) and value.startswith(("$", "@")):
            refs = ReferenceResolver.match_refs_pattern(value)
            broken += [f"{node_id} -> @{ref}" for ref in refs if ref not in known]
    return broken


def _unimportable_targets(parser: ConfigParser) -> list[str]:
    bad = []
    for node_id, value in _walk(parser.get()):
        if isinstance(value, dict) and isinstance(value.get("_target_"), str):
            target = value["_target_"]
            if "." not in target or pydoc.locate(target) is None:
                bad.append(f"{node_id}: {target}")
    return bad


def test_every_bundle_is_found() -> None:
    assert {"cxr", "dermatology", "fundus", "pathology", "mammography", "ct3d"} <= set(BUNDLE_IDS)


@pytest.mark.parametrize("bundle", BUNDLES, ids=BUNDLE_IDS)
def test_metadata_has_the_fields_the_bundle_spec_requires(bundle: Path) -> None:
    meta = _metadata(bundle)
    for key, kind in REQUIRED_META.items():
        assert isinstance(meta.get(key), kind), f"{bundle.name}: '{key}' missing or not {kind.__name__}"
        assert meta[key] or kind is dict and key == "optional_packages_version", f"{bundle.name}: '{key}' is empty"
    assert meta["version"] in meta["changelog"], "the current version needs a changelog entry"
    assert meta["schema"].startswith("https://") and meta["schema"].endswith(".json")
    for section in ("inputs", "outputs"):
        tensors = meta["network_data_format"].get(section)
        assert isinstance(tensors, dict) and tensors, f"{bundle.name}: network_data_format.{section} is empty"
        for name, spec in tensors.items():
            for key, kind in TENSOR_KEYS.items():
                assert isinstance(spec.get(key), kind), f"{bundle.name}: {section}.{name}.{key} not {kind.__name__}"
            assert len(spec["value_range"]) in (0, 2) and len(spec["channel_def"]) == spec["num_channels"]


@pytest.mark.parametrize("bundle", BUNDLES, ids=BUNDLE_IDS)
def test_metadata_agrees_with_the_configs(bundle: Path) -> None:
    meta = _metadata(bundle)["network_data_format"]
    common = _parser(bundle)
    image, pred = meta["inputs"]["image"], meta["outputs"]["pred"]
    assert image["num_channels"] == common["in_channels"]
    assert image["spatial_shape"] == list(common.get_parsed_content("image_size"))
    assert len(image["spatial_shape"]) == common.get("spatial_dims", 2)
    assert pred["num_channels"] == common["num_classes"]


@pytest.mark.parametrize("bundle", BUNDLES, ids=BUNDLE_IDS)
def test_bundle_ships_license_docs_and_logging_config(bundle: Path) -> None:
    assert (bundle / "LICENSE").read_text() == (PROJECT_ROOT / "LICENSE").read_text()
    assert len((bundle / "docs" / "README.md").read_text()) > 500
    assert "[loggers]" in bundle_logging_file(bundle).read_text()


@pytest.mark.parametrize("bundle", BUNDLES, ids=BUNDLE_IDS)
def test_common_config_has_the_override_keys(bundle: Path) -> None:
    common = _parser(bundle)
    missing = [key for key in OVERRIDE_KEYS if key not in common]
    assert not missing, f"{bundle.name}/configs/common.yaml lacks override keys {missing}"


@pytest.mark.parametrize("bundle", BUNDLES, ids=BUNDLE_IDS)
@pytest.mark.parametrize("stage", STAGE_FILES)
def test_stage_config_parses_with_valid_references_and_targets(bundle: Path, stage: str) -> None:
    parser = _parser(bundle, stage)
    assert "run" in parser and (stage == "pipeline" or stage in parser), f"{bundle.name}/{stage}.yaml: no '{stage}'"
    assert not _broken_references(parser)
    assert not _unimportable_targets(parser)
    if stage == "evaluate":
        assert "ood_sets" in parser  # out-of-distribution sets are a parameter of every bundle


def _overlays() -> list[Any]:
    stage_names = {f"{n}.yaml" for n in ("common", *STAGE_FILES)}  # a bundle's own stage file is no overlay
    return [
        pytest.param(b, f.stem, id=f"{b.name}-{f.stem}")
        for b in BUNDLES
        for f in sorted((b / "configs").glob("*.yaml"))
        if f.name not in stage_names
    ]


@pytest.mark.parametrize(("bundle", "overlay"), _overlays())
def test_overlay_config_parses_with_valid_references_and_targets(bundle: Path, overlay: str) -> None:
    parser = _parser(bundle, "pipeline", overlay)
    assert not _broken_references(parser)
    assert not _unimportable_targets(parser)
