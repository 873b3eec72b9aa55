"""Every registered backbone (built-in or from an installed plugin) honours the backbone contract.

Parametrised over the registry, timm style: a plugin's backbone gets the same smoke test as the built-ins. For each
spatial dimensionality the backbone accepts (a ``ValueError`` means it declines), it builds, declares that
``spatial_dims``, maps ``(B, C, *spatial)`` to ``(B, feature_dim)`` and loads its own saved checkpoint through
:func:`~monai_remedis.backbones.load_backbone_weights`. Backbones above :data:`MAX_FAST_PARAMS` parameters
(BiT-M R50x3, R152x2, ...) are counted on the meta device and run only with ``-m slow``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from monai_remedis.backbones import create_backbone, list_backbones, load_backbone_weights

MAX_FAST_PARAMS = 25_000_000
INPUT_SIZE = {2: 32, 3: 16}


def _declared_dims(name: str) -> dict[int, int]:
    """spatial_dims -> parameter count, for the dimensionalities the backbone accepts (built on the meta device)."""
    sizes = {}
    for dims in (2, 3):
        try:
            with torch.device("meta"):
                model = create_backbone(name, in_channels=1, spatial_dims=dims)
        except ValueError:
            continue
        sizes[dims] = sum(p.numel() for p in model.parameters())
    return sizes


def _cases() -> list:
    cases = []
    for name in list_backbones():
        sizes = _declared_dims(name)
        cases.append(pytest.param(name, None, id=f"{name}-declares"))
        for dims, n_params in sizes.items():
            marks = [pytest.mark.slow] if n_params > MAX_FAST_PARAMS else []
            cases.append(pytest.param(name, dims, marks=marks, id=f"{name}-{dims}d"))
    return cases


@pytest.mark.parametrize(("name", "spatial_dims"), _cases())
def test_backbone_contract(name: str, spatial_dims: int | None, tmp_path: Path) -> None:
    if spatial_dims is None:
        assert _declared_dims(name), f"backbone '{name}' accepts neither spatial_dims=2 nor 3"
        return
    torch.manual_seed(0)
    model = create_backbone(name, in_channels=1, spatial_dims=spatial_dims).eval()
    assert model.spatial_dims == spatial_dims and model.feature_dim > 0
    x = torch.randn(2, 1, *([INPUT_SIZE[spatial_dims]] * spatial_dims))
    with torch.no_grad():
        out = model(x)
    assert out.shape == (2, model.feature_dim) and torch.isfinite(out).all()

    checkpoint = tmp_path / "backbone.pt"
    torch.save(model.state_dict(), checkpoint)
    torch.manual_seed(1)  # a differently initialised copy
    fresh = create_backbone(name, in_channels=1, spatial_dims=spatial_dims).eval()
    load_backbone_weights(fresh, checkpoint)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), out)
