"""Dataset adapters, like :mod:`monai.apps`: what is specific to one public dataset (its file names, folders,
columns, site and naming conventions) lives here, never in :mod:`monai_remedis.data`.

* :mod:`monai_remedis.apps.aptos`: the APTOS 2019 subset (second diabetic-retinopathy site), duplicates removed.
* :mod:`monai_remedis.apps.mini_mias`: mini-MIAS patient ids (left/right breasts of one woman).

:data:`PATIENT_ID_SCHEMES` names the patient-id conventions that ``patient_from`` (bundle configs, the
``datalist`` CLI's ``--patient-from``) accepts besides a regular expression.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from monai_remedis.apps.aptos import APTOS_SITE, AptosCleaning, aptos_datalist, aptos_splits, clean_duplicates
from monai_remedis.apps.mini_mias import mini_mias_patient_id

PATIENT_ID_SCHEMES: dict[str, Callable[[Any], str]] = {
    "mini-mias": mini_mias_patient_id,
    "mini_mias": mini_mias_patient_id,
    "mias": mini_mias_patient_id,
}
"""Named patient-id functions (image path -> patient id) for ``patient_from``."""

__all__ = [
    "APTOS_SITE",
    "AptosCleaning",
    "PATIENT_ID_SCHEMES",
    "aptos_datalist",
    "aptos_splits",
    "clean_duplicates",
    "mini_mias_patient_id",
]
