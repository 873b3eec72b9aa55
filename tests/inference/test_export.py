"""A fine-tuned ``classifier.pt`` exported as the bundle's ``models/model.pt`` (what ``network_def`` loads)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from monai_remedis.backbones import create_backbone
from monai_remedis.backbones.weights import WeightsLoadError
from monai_remedis.configs import bundle_parser
from monai_remedis.inference import export_bundle_model
from monai_remedis.models.classifier import Classifier


def test_exported_model_loads_into_the_bundles_network_def(tmp_path: Path) -> None:
    torch.manual_seed(0)
    classifier = Classifier(create_backbone(bundle_parser("cxr")["backbone"], in_channels=1), 2)
    torch.nn.init.normal_(classifier.head[-1].weight)
    torch.save(classifier.state_dict(), tmp_path / "classifier.pt")
    path = export_bundle_model(tmp_path / "classifier.pt", tmp_path / "run" / "models" / "model.pt")
    network = bundle_parser("cxr", "inference").get_parsed_content("network_def")
    network.load_state_dict(torch.load(path, weights_only=True))  # strict: every key of the full classifier
    x = torch.rand(2, 1, 28, 28)
    torch.testing.assert_close(network.eval()(x), classifier.eval()(x))


def test_a_backbone_checkpoint_is_refused_naming_the_file(tmp_path: Path) -> None:
    torch.save(create_backbone(bundle_parser("cxr")["backbone"], in_channels=1).state_dict(), tmp_path / "backbone.pt")
    with pytest.raises(WeightsLoadError, match="backbone.pt: not a classifier state dict"):
        export_bundle_model(tmp_path / "backbone.pt", tmp_path / "models" / "model.pt")
    assert not (tmp_path / "models" / "model.pt").exists()
