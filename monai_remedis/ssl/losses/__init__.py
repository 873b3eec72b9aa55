"""Self-supervised losses, one per module."""

from __future__ import annotations

from monai_remedis.ssl.losses.ntxent import NTXentLoss

__all__ = ["NTXentLoss"]
