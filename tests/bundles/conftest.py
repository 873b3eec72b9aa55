"""Fixtures for bundle tests: a bundle's configs parsed in-process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from monai.bundle import ConfigParser

from monai_remedis.configs import bundle_config_files, bundle_dir


@pytest.fixture
def bundle_config() -> Callable[..., ConfigParser]:
    """Parser of a bundle's config list (shared base, ``common.yaml``, the given stages), with overrides."""

    def make(bundle: str, *stages: str, **overrides: Any) -> ConfigParser:
        files = bundle_config_files(bundle_dir(bundle), "common")
        for stage in stages:
            files += [f for f in bundle_config_files(bundle_dir(bundle), stage)[2:] if f not in files]
        parser = ConfigParser()
        parser.read_config(files)
        for key, value in overrides.items():
            parser[key] = value
        return parser

    return make
