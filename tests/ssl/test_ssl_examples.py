"""The runnable ``Example`` sections of the SSL docstrings run and print what they claim."""

from __future__ import annotations

import doctest
import importlib

import pytest

FAST = [
    "monai_remedis.ssl.collapse",
    "monai_remedis.ssl.heads",
    "monai_remedis.ssl.momentum",
    "monai_remedis.ssl.losses.barlow_twins",
    "monai_remedis.ssl.losses.byol",
    "monai_remedis.ssl.losses.moco",
    "monai_remedis.ssl.losses.ntxent",
    "monai_remedis.ssl.losses.relic",
    "monai_remedis.ssl.losses.utils",
    "monai_remedis.data.multi_instance",
]
WITH_BIT_BACKBONE = [
    "monai_remedis.ssl.simclr",
    "monai_remedis.ssl.moco",
    "monai_remedis.ssl.byol",
    "monai_remedis.ssl.relic",
    "monai_remedis.ssl.barlow_twins",
    "monai_remedis.ssl.micle",
]


def _run(module_name: str) -> None:
    result = doctest.testmod(importlib.import_module(module_name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0, result


@pytest.mark.parametrize("module_name", FAST)
def test_examples(module_name: str) -> None:
    _run(module_name)


@pytest.mark.slow
@pytest.mark.parametrize("module_name", WITH_BIT_BACKBONE)
def test_strategy_examples(module_name: str) -> None:
    _run(module_name)
