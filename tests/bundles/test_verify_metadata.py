"""MONAI's own ``verify_metadata`` passes on every bundle offline, against the schema shipped in the package."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest
from monai.bundle import verify_metadata

from monai_remedis.data.paths import PROJECT_ROOT
from monai_remedis.resources import META_SCHEMA

METADATA = sorted((PROJECT_ROOT / "bundles").glob("*/configs/metadata.json"))


def test_every_bundle_has_metadata():
    assert len(METADATA) >= 6


@pytest.mark.parametrize("meta_file", METADATA, ids=lambda p: p.parent.parent.name)
def test_verify_metadata_passes_offline(meta_file: Path, tmp_path: Path):
    schema_url = json.loads(meta_file.read_text())["schema"]
    assert schema_url.endswith(META_SCHEMA.name), "the shipped schema must be the one the metadata names"
    schema = shutil.copy(META_SCHEMA, tmp_path / META_SCHEMA.name)  # present: MONAI skips the download
    verify_metadata(meta_file=str(meta_file), filepath=str(schema))


@pytest.mark.parametrize("meta_file", METADATA, ids=lambda p: p.parent.parent.name)
def test_one_requirements_key_in_monai_16_form(meta_file: Path):
    """MONAI 1.6 maps ``optional_packages_version`` onto ``required_packages_version`` (and warns): keep one key."""
    from monai.bundle.utils import DEPRECATED_ID_MAPPING

    metadata = json.loads(meta_file.read_text())
    for old, new in DEPRECATED_ID_MAPPING.items():
        assert old not in metadata, f"{meta_file}: use '{new}' instead of the deprecated '{old}'"
    assert {"monai-remedis", "pytorch-ignite", "timm"} <= set(metadata["required_packages_version"])


def test_verify_metadata_rejects_a_broken_metadata(tmp_path: Path):
    metadata = json.loads(METADATA[0].read_text())
    del metadata["network_data_format"]
    bad = tmp_path / "metadata.json"
    bad.write_text(json.dumps(metadata))
    schema = shutil.copy(META_SCHEMA, tmp_path / META_SCHEMA.name)
    with warnings.catch_warnings(), pytest.raises(ValueError, match="network_data_format"):
        verify_metadata(meta_file=str(bad), filepath=str(schema))
