"""Loading weights from local files: official BiT .npz, timm/torch state dicts, our own stage checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from monai_remedis.backbones import create_backbone, load_backbone_weights
from monai_remedis.backbones.weights import WeightsLoadError


def _bit_npz_from_model(model: torch.nn.Module, path: Path) -> Path:
    """Write ``model``'s weights in the official BiT .npz layout (TensorFlow names, HWIO kernels).

    This is the inverse of the published conversion, so the test checks our loader against the real file format.
    """
    arrays: dict[str, np.ndarray] = {}

    def conv(name: str, weight: torch.Tensor) -> None:
        arrays[f"resnet/{name}/standardized_conv2d/kernel"] = weight.detach().permute(2, 3, 1, 0).numpy()

    def norm(name: str, module: torch.nn.Module) -> None:
        arrays[f"resnet/{name}/group_norm/gamma"] = module.weight.detach().numpy()
        arrays[f"resnet/{name}/group_norm/beta"] = module.bias.detach().numpy()

    conv("root_block", model.stem.conv.weight)
    norm("", model.norm)
    arrays["resnet/group_norm/gamma"] = arrays.pop("resnet//group_norm/gamma")
    arrays["resnet/group_norm/beta"] = arrays.pop("resnet//group_norm/beta")
    for i, stage in enumerate(model.stages):
        for j, block in enumerate(stage.blocks):
            prefix = f"block{i + 1}/unit{j + 1:02d}"
            for k, (c, n) in enumerate([("conv1", "norm1"), ("conv2", "norm2"), ("conv3", "norm3")]):
                letter = "abc"[k]
                conv(f"{prefix}/{letter}", getattr(block, c).weight)
                norm(f"{prefix}/{letter}", getattr(block, n))
            if block.downsample is not None:
                conv(f"{prefix}/a/proj", block.downsample.conv.weight)
    np.savez(path, **arrays)
    return path


def test_official_bit_npz_loads_into_rgb_and_grayscale(tmp_path: Path) -> None:
    source = create_backbone("bit_resnet50x1", in_channels=3)
    torch.manual_seed(0)
    for p in source.parameters():
        p.data.normal_()
    npz = _bit_npz_from_model(source, tmp_path / "BiT-M-R50x1.npz")

    rgb = load_backbone_weights(create_backbone("bit_resnet50x1", in_channels=3), npz)
    for (name, a), b in zip(source.state_dict().items(), rgb.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    gray = load_backbone_weights(create_backbone("bit_resnet50x1", in_channels=1), npz)
    # RGB stem filters are summed into the single grayscale channel (gray image = same signal on R, G and B).
    assert torch.allclose(gray.stem.conv.weight, source.stem.conv.weight.sum(dim=1, keepdim=True), atol=1e-5)
    assert torch.equal(gray.stages[2].blocks[0].conv2.weight, source.stages[2].blocks[0].conv2.weight)


def test_state_dict_checkpoints_with_wrappers_and_heads(tmp_path: Path) -> None:
    source = create_backbone("bit_resnet18", in_channels=1)
    state = {f"module.backbone.{k}": v for k, v in source.state_dict().items()}
    state["module.head.fc.weight"] = torch.zeros(10, source.feature_dim)  # classifier heads are ignored
    path = tmp_path / "ckpt.pt"
    torch.save({"state_dict": state, "epoch": 3}, path)
    target = load_backbone_weights(create_backbone("bit_resnet18", in_channels=1), path)
    for k, v in source.state_dict().items():
        assert torch.equal(target.state_dict()[k], v), k


def test_rgb_checkpoint_adapts_stem_to_one_channel(tmp_path: Path) -> None:
    rgb = create_backbone("bit_resnet18", in_channels=3)
    torch.save(rgb.state_dict(), tmp_path / "rgb.pt")
    gray = load_backbone_weights(create_backbone("bit_resnet18", in_channels=1), tmp_path / "rgb.pt")
    assert torch.allclose(gray.stem.conv.weight, rgb.stem.conv.weight.sum(1, keepdim=True), atol=1e-6)


def test_wrong_architecture_is_refused_naming_file_and_keys(tmp_path: Path) -> None:
    torch.save(create_backbone("bit_resnet18").state_dict(), tmp_path / "r18.pt")
    with pytest.raises(WeightsLoadError, match=r"r18\.pt.*(shape mismatch|missing)"):
        load_backbone_weights(create_backbone("bit_resnet34"), tmp_path / "r18.pt")


def test_missing_and_corrupt_files_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_backbone_weights(create_backbone("bit_resnet18"), tmp_path / "nope.pt")
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsLoadError, match="corrupt.pt"):
        load_backbone_weights(create_backbone("bit_resnet18"), bad)
