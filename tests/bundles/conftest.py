"""Fixtures for bundle tests: a bundle's configs parsed in-process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from monai.bundle import ConfigParser

from monai_remedis.configs import STAGES, bundle_config_files, bundle_dir


@pytest.fixture
def bundle_config() -> Callable[..., ConfigParser]:
    """Parser of a bundle's config list (shared base, ``common.yaml``, the given stages, then overlays such as
    ``dicom``: a name that is not a stage is a file of the bundle's ``configs/``), with overrides."""

    def make(bundle: str, *names: str, **overrides: Any) -> ConfigParser:
        folder = bundle_dir(bundle)
        files = bundle_config_files(folder, "common")
        for name in names:
            if name in (*STAGES, "pipeline"):
                files += [f for f in bundle_config_files(folder, name)[2:] if f not in files]
            else:
                files.append(str(folder / "configs" / f"{name}.yaml"))
        parser = ConfigParser()
        parser.read_config(files)
        for key, value in overrides.items():
            parser[key] = value
        return parser

    return make
