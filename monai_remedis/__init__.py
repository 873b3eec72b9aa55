"""monai-remedis: robust, label-efficient medical imaging models (REMEDIS) on MONAI and Ignite."""

from __future__ import annotations

from monai_remedis.errors import guard_bundle_cli, running_bundle_cli

__version__ = "0.1.0"

if running_bundle_cli():  # python -m monai.bundle run ...
    guard_bundle_cli()  # unknown override keys refused with a did-you-mean; errors end with their cause
