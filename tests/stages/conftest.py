"""Fixtures for stage tests: the CXR bundle's real transforms and datalists, resolved in-process."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from monai.bundle import ConfigParser

from monai_remedis.configs import bundle_parser


@pytest.fixture
def cxr_config() -> Callable[..., ConfigParser]:
    """Build a parser of the CXR bundle's settings (shared base + common.yaml) with overrides (e.g. ``limit=256``)."""

    def make(**overrides: object) -> ConfigParser:
        return bundle_parser("cxr", **overrides)

    return make
