"""Small ViTs: the backbone contract at 28-64 px, patch tokens on the PEAC grid, RGB stage-1 weights to grayscale."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from monai_remedis.backbones import create_backbone, list_backbones, load_backbone_weights
from monai_remedis.backbones.dense import dense_features, to_cell_grid


def test_vits_are_registered_by_name() -> None:
    assert {"vit_tiny_p4", "vit_tiny_p8", "vit_mini_p4"} <= set(list_backbones("vit_*"))


@pytest.mark.parametrize(
    ("name", "size", "grid"), [("vit_mini_p4", 28, 7), ("vit_mini_p4", 40, 10), ("vit_tiny_p8", 64, 8)]
)
def test_vit_maps_images_to_features_and_patch_tokens(name: str, size: int, grid: int) -> None:
    model = create_backbone(name, in_channels=1).eval()
    x = torch.randn(2, 1, size, size)
    with torch.no_grad():
        pooled, dense = dense_features(model, x)
        out = model(x)
    assert out.shape == (2, model.feature_dim) and model.spatial_dims == 2
    assert dense.shape == (2, model.feature_dim, grid, grid)
    torch.testing.assert_close(pooled, out)  # one pass gives the contract's pooled feature and the tokens


def test_stage1_rgb_cifar_weights_load_into_a_grayscale_vit(tmp_path: Path) -> None:
    rgb = create_backbone("vit_mini_p4", in_channels=3)
    with torch.no_grad():
        assert rgb(torch.randn(2, 3, 32, 32)).shape == (2, 192)  # stage 1 feeds 32 px CIFAR images
    torch.save(rgb.state_dict(), tmp_path / "backbone.pt")
    gray = load_backbone_weights(create_backbone("vit_mini_p4", in_channels=1), tmp_path / "backbone.pt")
    summed = rgb.patch_embed.proj.weight.sum(dim=1, keepdim=True)
    torch.testing.assert_close(gray.patch_embed.proj.weight, summed)
    torch.testing.assert_close(gray.blocks[0].attn.qkv.weight, rgb.blocks[0].attn.qkv.weight)


def test_resnet_dense_features_are_its_last_map_and_pool_to_its_output() -> None:
    model = create_backbone("bit_resnet18", in_channels=1).eval()
    x = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        pooled, dense = dense_features(model, x)
        torch.testing.assert_close(pooled, model(x))
    assert dense.shape == (2, 512, 2, 2)  # stride 32: a 64 px crop gives 2 x 2 cells
    assert to_cell_grid(dense, 8).shape == (2, 512, 8, 8)  # interpolated onto finer grid cells (approximate)


def test_cell_grid_is_exact_for_matching_patches_and_pools_finer_maps() -> None:
    fine = torch.arange(16.0).view(1, 1, 4, 4)
    assert torch.equal(to_cell_grid(fine, 4), fine)
    assert to_cell_grid(fine, 2).flatten().tolist() == [2.5, 4.5, 10.5, 12.5]
