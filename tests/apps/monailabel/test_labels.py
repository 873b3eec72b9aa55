"""Class labels as the app reads them from label files (runs without monailabel)."""

from __future__ import annotations

from pathlib import Path

import pytest
from remedis_label.labels import LabelError, class_index, read_label_value, write_label_file

CLASSES = ["normal", "pneumonia"]


def test_class_index_accepts_names_and_indices() -> None:
    assert class_index("Pneumonia", CLASSES) == 1
    assert class_index(0, CLASSES) == 0
    assert class_index("1", CLASSES) == 1


def test_class_index_names_the_classes_when_a_label_is_unknown() -> None:
    with pytest.raises(LabelError, match="normal, pneumonia"):
        class_index("covid", CLASSES)
    with pytest.raises(LabelError):
        class_index(2, CLASSES)


def test_label_files_round_trip(tmp_path: Path) -> None:
    assert read_label_value(write_label_file(tmp_path / "a.json", "pneumonia")) == "pneumonia"
    (tmp_path / "b.txt").write_text("normal\n")
    assert read_label_value(tmp_path / "b.txt") == "normal"
    assert read_label_value(tmp_path / "c.png") is None  # an image label: the class comes from the label info
