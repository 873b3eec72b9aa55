"""Shared fixtures for the data-layer tests."""

from __future__ import annotations

import warnings

import pytest


@pytest.fixture(autouse=True)
def _quiet_dicom_affine_warnings():
    """Projection radiographs have no patient position tags; MONAI warns about the identity affine on every read."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PydicomReader: ImageOrientationPatient")
        yield
