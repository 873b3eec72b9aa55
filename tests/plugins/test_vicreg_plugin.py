"""The example plugin distribution ``plugins/remedis-vicreg``: its loss, backbone, and use by name from a bundle.

CI installs it first (``pip install ./plugins/remedis-vicreg``); without the install, the bundle test makes the
source tree discoverable through a generated ``dist-info`` instead, so it still runs the real entry point.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from plugin_test_utils import REPO, VICREG_SRC, vicreg_env, vicreg_installed  # noqa: E402

if not vicreg_installed():
    sys.path.insert(0, str(VICREG_SRC))

from remedis_vicreg import ConvNet, VICReg, VICRegLoss  # noqa: E402

from monai_remedis.data.paths import data_path  # noqa: E402

PNEUMONIA = data_path("medmnist_pneumonia", "pneumoniamnist.npz")


def test_vicreg_loss_hand_computed() -> None:
    """inv = 0.5; var = (0 + (0 + 1) / 2) / 2 = 0.25; cov = (2^2 + 2^2) / 2 + 0 = 4 -> 25 * 0.5 + 25 * 0.25 + 4."""
    z0 = torch.tensor([[0.0, 0.0], [2.0, 2.0]])
    z1 = torch.tensor([[0.0, 1.0], [2.0, 1.0]])
    loss_fn = VICRegLoss(eps=0.0)
    invariance, variance, covariance = loss_fn.components(z0, z1)
    assert (float(invariance), float(variance), float(covariance)) == pytest.approx((0.5, 0.25, 4.0))
    assert float(loss_fn(z0, z1)) == pytest.approx(22.75)


def test_vicreg_strategy_and_backbone_contracts() -> None:
    backbone = ConvNet(in_channels=1, width=8)
    assert backbone.feature_dim == 32 and backbone.spatial_dims == 2
    assert ConvNet(in_channels=1, spatial_dims=3, width=8)(torch.randn(2, 1, 8, 8, 8)).shape == (2, 32)
    strategy = VICReg(backbone, projection_dim=16, hidden_dim=16)
    out = strategy([torch.randn(6, 1, 28, 28), torch.randn(6, 1, 28, 28)])
    assert {"loss", "invariance", "variance", "covariance", "embedding_std", "collapse_score"} <= set(out)
    out["loss"].backward()
    assert all(p.grad is not None for p in strategy.parameters())


def test_installed_distribution_exposes_the_entry_point() -> None:
    if not vicreg_installed():
        pytest.skip("remedis-vicreg is not installed: pip install ./plugins/remedis-vicreg")
    eps = metadata.distribution("remedis-vicreg").entry_points.select(group="monai_remedis")
    assert [(ep.name, ep.value) for ep in eps] == [("vicreg", "remedis_vicreg.plugin")]


@pytest.mark.skipif(not PNEUMONIA.is_file(), reason=f"real data not found: {PNEUMONIA}")
def test_bundle_runs_plugin_strategy_and_backbone_by_name(tmp_path: Path) -> None:
    out_dir = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "monai.bundle",
        "run",
        "--config_file",
        "['monai_remedis/configs/base.yaml','bundles/cxr/configs/common.yaml','monai_remedis/configs/ssl.yaml']",
        "--strategy",
        "vicreg",
        "--backbone",
        "vicreg_convnet",
        "--strategy_kwargs",
        "{'hidden_dim': 256, 'projection_dim': 256}",
        "--limit",
        "128",
        "--ssl_epochs",
        "1",
        "--batch_size",
        "32",
        "--ssl_init",
        "''",
        "--output_dir",
        str(out_dir),
    ]
    env = vicreg_env(tmp_path) | {"MONAI_REMEDIS_STRICT_PLUGINS": "1"}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    run = out_dir / "ssl"
    history = json.loads((run / "history.json").read_text())
    assert history["epoch"] == [1] and all(torch.isfinite(torch.tensor(history[k])).all() for k in history)
    assert {"invariance", "variance", "covariance"} <= set(history)
    assert json.loads((run / "provenance.json").read_text())["config"]["strategy_name"] == "vicreg"
    state = torch.load(run / "backbone.pt", weights_only=True)
    ConvNet(in_channels=1).load_state_dict(state)  # the exported encoder is the plugin's backbone


def test_plugin_listing_names_the_separate_distribution(tmp_path: Path) -> None:
    """``python -m monai_remedis plugins`` shows the plugin's strategy and backbone, and where they came from."""
    env = vicreg_env(tmp_path) | {"MONAI_REMEDIS_STRICT_PLUGINS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "monai_remedis", "plugins"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = {line.split()[0]: line for line in proc.stdout.splitlines() if line.startswith("  ")}
    assert "[vicreg (remedis-vicreg 0.1.0)]" in lines["vicreg"]
    assert "[vicreg (remedis-vicreg 0.1.0)]" in lines["vicreg_convnet"]
    assert "[builtin]" in lines["simclr"] and "[builtin]" in lines["bit_resnet50x1"]
