"""Files shipped with the package (see ``README.md`` in this folder)."""

from __future__ import annotations

from pathlib import Path

META_SCHEMA = Path(__file__).with_name("meta_schema_20240725.json")
"""The MONAI bundle metadata schema our bundles' ``metadata.json`` name, for ``verify_metadata`` offline."""

__all__ = ["META_SCHEMA"]
