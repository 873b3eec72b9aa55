"""mini-MIAS patient ids: the two breasts of one woman share an id; the old import path still works."""

from __future__ import annotations

import pytest

from monai_remedis.apps.mini_mias import mini_mias_patient_id
from monai_remedis.data.builders import patient_id_function


def test_mini_mias_patient_id_pairs_consecutive_references():
    assert mini_mias_patient_id("mdb001") == mini_mias_patient_id("mdb002") == "mdb001-002"
    assert mini_mias_patient_id("mdb003") == mini_mias_patient_id("/x/y/malignant/mdb004.png") == "mdb003-004"
    assert mini_mias_patient_id("mdb002") != mini_mias_patient_id("mdb003")
    assert mini_mias_patient_id("mdb023_malignant.pgm") == mini_mias_patient_id("MDB024") == "mdb023-024"
    assert mini_mias_patient_id("mdb322") == "mdb321-322"
    with pytest.raises(ValueError, match="ISIC_0024320"):
        mini_mias_patient_id("ISIC_0024320.jpg")
    with pytest.raises(ValueError):
        mini_mias_patient_id("mdb000")


def test_patient_from_names_the_convention_and_the_old_path_still_imports() -> None:
    from monai_remedis.data.patient_split import mini_mias_patient_id as deprecated

    assert patient_id_function("mini-mias") is mini_mias_patient_id is deprecated
    assert patient_id_function(str.upper)("a") == "A"  # a function is used as is
