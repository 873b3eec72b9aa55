"""Fixtures for bundle tests: a bundle's configs parsed in-process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from monai.bundle import ConfigParser

from monai_remedis.data.paths import PROJECT_ROOT

BUNDLES = PROJECT_ROOT / "bundles"


@pytest.fixture
def bundle_config() -> Callable[..., ConfigParser]:
    """Parser of a bundle's ``common.yaml`` (plus stage files), with overrides."""

    def make(bundle: str, *stages: str, **overrides: Any) -> ConfigParser:
        parser = ConfigParser()
        parser.read_config([str(BUNDLES / bundle / "configs" / f"{n}.yaml") for n in ("common", *stages)])
        for key, value in overrides.items():
            parser[key] = value
        return parser

    return make
