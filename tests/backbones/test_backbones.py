"""Backbone registry: lookups by name and wildcard; BiT variants have the published widths (the contract every
registered backbone honours is tested over the registry in ``test_registry_contract.py``)."""

from __future__ import annotations

import pytest
import torch

from monai_remedis.backbones import create_backbone, list_backbones


@pytest.mark.parametrize(("name", "feature_dim"), [("bit_resnet50x1", 2048), ("bit_resnet152x2", 4096)])
def test_published_bit_architectures_have_their_feature_widths(name: str, feature_dim: int) -> None:
    model = create_backbone(name, in_channels=1)
    assert model.feature_dim == feature_dim
    # BiT: group norm + weight-standardised convolutions, pre-activation.
    kinds = {type(m).__name__ for m in model.modules()}
    assert {"StdConv2d", "GroupNormAct"} <= kinds and "BatchNorm2d" not in kinds


def test_unknown_backbone_error_lists_known_names() -> None:
    with pytest.raises(KeyError) as err:
        create_backbone("resnet9000")
    message = str(err.value)
    assert "resnet9000" in message and "bit_resnet50x1" in message and "bit_resnet18" in message


def test_wildcard_listing() -> None:
    assert set(list_backbones("bit_resnet*")) >= {"bit_resnet18", "bit_resnet50x1", "bit_resnet152x2"}
    assert all(n.endswith("_3d") for n in list_backbones("*_3d"))


def test_bit_is_2d_only() -> None:
    with pytest.raises(ValueError, match="2D only"):
        create_backbone("bit_resnet18", spatial_dims=3)


def test_small_image_stem_keeps_spatial_detail_and_bit_keys() -> None:
    """``*_small``: a 3x3 stride-2 stem without max-pool leaves a 28 px image 2x2 in the last stage (BiT's: 1x1),
    under the same state-dict keys as ``bit_resnet18`` (only the stem kernel differs)."""
    small, bit = create_backbone("bit_resnet18_small", in_channels=1), create_backbone("bit_resnet18", in_channels=1)
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        assert small.forward_features(x).shape[-2:] == (2, 2)
        assert bit.forward_features(x).shape[-2:] == (1, 1)
    small_state, bit_state = small.state_dict(), bit.state_dict()
    assert set(small_state) == set(bit_state)
    assert small_state["stem.conv.weight"].shape == (64, 1, 3, 3) and bit_state["stem.conv.weight"].shape[-1] == 7
    assert [info["reduction"] for info in small.feature_info] == [2, 2, 4, 8, 16]
