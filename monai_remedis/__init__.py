"""monai-remedis: robust, label-efficient medical imaging models (REMEDIS) on MONAI and Ignite."""

from __future__ import annotations

__version__ = "0.1.0"
