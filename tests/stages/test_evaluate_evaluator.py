"""The evaluator: classifiers scored on the test set and zero-shot on OOD sets of real BreastMNIST images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from monai.transforms import Compose, EnsureTyped, ScaleIntensityRanged

from monai_remedis.data import EnsureImaged, medmnist_datalist
from monai_remedis.models import Classifier
from monai_remedis.stages.evaluate import Evaluator, ModelSpec, patient_groups

SPEC = ModelSpec("bit_resnet18", in_channels=1, num_classes=2)


def _transform(low: float = 0.0) -> Compose:
    return Compose(
        [
            EnsureImaged(keys="image"),
            ScaleIntensityRanged("image", 0, 255, low, 1.0),
            EnsureTyped("image", track_meta=False),
        ]
    )


def test_evaluator_names_each_classifier_and_set(tmp_path: Path, data_dir: Path) -> None:
    items = medmnist_datalist(data_dir / "medmnist_breast" / "breastmnist.npz", "test", limit=16)
    torch.manual_seed(0)
    torch.save(Classifier(SPEC.new_backbone(), 2).state_dict(), tmp_path / "a.pt")
    evaluator = Evaluator(SPEC, _transform(), batch_size=8, device="cpu", n_boot=10)
    ood = {"bright": {"datalist": items, "transform": _transform(0.3), "note": "simulated"}}
    result = evaluator.evaluate_classifiers({"": tmp_path / "a.pt", "b": tmp_path / "a.pt"}, items, ood)
    assert list(result) == [
        "test (in-distribution)",
        "bright (zero-shot)",
        "b: test (in-distribution)",
        "b: bright (zero-shot)",
    ]
    first, second = result["test (in-distribution)"], result["b: test (in-distribution)"]
    assert first["metrics"]["confusion_matrix"] == second["metrics"]["confusion_matrix"]  # same weights, same scores
    assert first["auc_ci"] == second["auc_ci"]
    bright = result["bright (zero-shot)"]
    assert bright["note"] == "simulated" and bright["metrics"]["n_samples"] == 16
    assert bright["auc_ci"]["by_patient"] is False


def test_patient_groups_only_when_ids_exist() -> None:
    assert patient_groups([{"label": 0}, {"label": 1}]) is None
    groups = patient_groups([{"patient_id": 7}, {"label": 1}])
    assert isinstance(groups, np.ndarray) and groups.tolist() == ["7", "item1"]
