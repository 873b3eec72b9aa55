"""LP-FT head initialisation: before its first step the fine-tuned model computes the probe's probabilities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from monai_remedis.backbones import create_backbone
from monai_remedis.data import medmnist_datalist
from monai_remedis.evaluation.linear_probe import extract_features
from monai_remedis.models import Classifier
from monai_remedis.models.head_init import load_probe, probe_head_init
from monai_remedis.stages import OptimConfig


def _transform(item: dict) -> dict:
    image = torch.as_tensor(np.asarray(item["image"]), dtype=torch.float32).reshape(1, 28, 28) / 255.0
    return {**item, "image": image}


def test_probe_initialised_classifier_reproduces_the_probe_on_real_xrays(pneumonia_npz: Path) -> None:
    torch.manual_seed(0)
    train = medmnist_datalist(pneumonia_npz, "train", limit=96)
    val = medmnist_datalist(pneumonia_npz, "val", limit=64)
    model = Classifier(create_backbone("bit_resnet18", in_channels=1), 2)
    probe = probe_head_init(model, train, _transform, val, _transform)
    assert probe.val_auc is not None and probe.val_auc > 0.5  # random GN-ResNet features separate the classes a bit
    assert int(model.feature_norm.num_batches_tracked) == 1  # the first training batch must not reseed the statistics
    test = extract_features(model.backbone, medmnist_datalist(pneumonia_npz, "test", limit=32), _transform)
    with torch.no_grad():
        logits = model.eval().head(model.feature_norm(test.features))
    np.testing.assert_allclose(torch.softmax(logits, 1).numpy(), probe.predict_proba(test.features), atol=1e-5)


def test_zero_head_stays_zero_until_trained(pneumonia_npz: Path) -> None:
    model = Classifier(create_backbone("bit_resnet18", in_channels=1), 2)
    assert torch.count_nonzero(model.head[-1].weight) == 0
    probe = probe_head_init(model, medmnist_datalist(pneumonia_npz, "train", limit=32), _transform)
    assert torch.count_nonzero(model.head[-1].weight) > 0
    fresh = Classifier(create_backbone("bit_resnet18", in_channels=1), 2)
    load_probe(fresh, probe)
    assert torch.equal(fresh.head[-1].weight, model.head[-1].weight)


def test_unknown_head_init_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="known: zero, probe"):
        OptimConfig(head_init="linear")
