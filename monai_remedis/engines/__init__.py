"""Ignite/MONAI engines and handlers shared by the stages."""

from __future__ import annotations

from monai_remedis.engines.ssl_trainer import SSLTrainer

__all__ = ["SSLTrainer"]
