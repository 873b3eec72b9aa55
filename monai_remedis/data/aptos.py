"""Deprecated: moved to :mod:`monai_remedis.apps.aptos` (dataset adapters live in ``monai_remedis.apps``).

This re-export keeps ``monai_remedis.data.aptos.*`` (e.g. in older bundle configs) working; import from
``monai_remedis.apps.aptos`` instead.
"""

from __future__ import annotations

from monai_remedis.apps.aptos import APTOS_SITE, AptosCleaning, aptos_datalist, aptos_splits, clean_duplicates

__all__ = ["APTOS_SITE", "AptosCleaning", "aptos_datalist", "aptos_splits", "clean_duplicates"]
