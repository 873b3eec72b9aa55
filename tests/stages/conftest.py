"""Fixtures for stage tests: the CXR bundle's real transforms and datalists, resolved in-process."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from monai.bundle import ConfigParser

from monai_remedis.data.paths import PROJECT_ROOT

CXR_COMMON = PROJECT_ROOT / "bundles" / "cxr" / "configs" / "common.yaml"


@pytest.fixture
def cxr_config() -> Callable[..., ConfigParser]:
    """Build a parser of the CXR bundle's common.yaml with overrides (e.g. ``limit=256``)."""

    def make(**overrides: object) -> ConfigParser:
        parser = ConfigParser()
        parser.read_config(str(CXR_COMMON))
        for key, value in overrides.items():
            parser[key] = value
        return parser

    return make
