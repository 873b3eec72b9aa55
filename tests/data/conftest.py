"""Shared fixtures for the data-layer tests."""

from __future__ import annotations

import warnings

import pytest


@pytest.fixture(autouse=True)
def _quiet_expected_monai_warnings():
    """Warnings MONAI emits on every read here and that the tests expect.

    Projection radiographs have no patient position tags (identity affine), and building a ``LoadImage`` tries
    the optional nvImageCodec pydicom plugin, which a CPU machine does not have.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PydicomReader: ImageOrientationPatient")
        warnings.filterwarnings("ignore", message="NvImgCodecPydicomReader")
        yield
