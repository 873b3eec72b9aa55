"""PEAC: the teacher follows the student by EMA only, the local term pairs overlapping cells only, and a short run
on real chest X-rays learns and writes its correspondence picture."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from monai.transforms import Compose, EnsureTyped, RandScaleIntensityd, ScaleIntensityRanged

from monai_remedis.backbones import create_backbone
from monai_remedis.data import EnsureImaged, medmnist_datalist
from monai_remedis.data.grid_views import MASK_KEY
from monai_remedis.ssl import PEAC, create_strategy
from monai_remedis.ssl.momentum import cosine_momentum
from monai_remedis.ssl.peac import matched_consistency
from monai_remedis.stages import OptimConfig, RuntimeConfig, SSLStage

SMALL = {"hidden_dim": 32, "projection_dim": 16}


def _model(backbone: str = "vit_mini_p4", **kwargs: object) -> PEAC:
    return create_strategy("peac", backbone=create_backbone(backbone, in_channels=1), **(SMALL | kwargs))


def _pair(batch: int = 4, cells: int = 7) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    mask = torch.zeros(batch, cells, cells, dtype=torch.bool)
    mask[:, 1:, :-2] = True
    other = torch.zeros_like(mask)
    other[:, :-1, 2:] = True
    size = cells * 4
    return [torch.rand(batch, 1, size, size, generator=g), torch.rand(batch, 1, size, size, generator=g)] + [
        mask.flatten(1),
        other.flatten(1),
    ]


@pytest.mark.parametrize("backbone", ["vit_mini_p4", "bit_resnet18"])
def test_teacher_gets_no_gradient_and_follows_the_ema_formula(backbone: str) -> None:
    model = _model(backbone)
    out = model(_pair())
    out["loss"].backward()
    teacher = [*model.teacher_backbone.parameters(), *model.teacher_projector.parameters()]
    assert all(p.grad is None and not p.requires_grad for p in teacher)
    assert any(p.grad is not None for p in model.backbone.parameters())
    with torch.no_grad():
        for p in model.backbone.parameters():
            p.add_(torch.randn_like(p))
    before = [p.clone() for p in model.teacher_backbone.parameters()]
    model.after_step(progress=0.25)
    m = cosine_momentum(0.25, 0.999, 1.0)
    assert model.momentum == pytest.approx(m) and 0.999 < m < 1.0
    for old, new, student in zip(before, model.teacher_backbone.parameters(), model.backbone.parameters(), strict=True):
        torch.testing.assert_close(new, m * old + (1 - m) * student)
    frozen = [p.clone() for p in model.teacher_backbone.parameters()]
    model.after_step(progress=1.0)  # momentum 1 at the end: the teacher stops moving
    assert all(torch.equal(a, b) for a, b in zip(frozen, model.teacher_backbone.parameters(), strict=True))


def test_local_loss_counts_only_overlapping_cells() -> None:
    g = torch.Generator().manual_seed(1)
    student = torch.randn(2, 9, 8, generator=g, requires_grad=True)
    teacher = torch.randn(2, 9, 8, generator=g)
    m_s, m_t = torch.zeros(2, 9, dtype=torch.bool), torch.zeros(2, 9, dtype=torch.bool)
    m_s[:, [4, 5, 7, 8]] = True  # crop offset by one cell down and right
    m_t[:, [0, 1, 3, 4]] = True
    loss = matched_consistency(student, teacher, m_s, m_t)
    loss.backward()
    assert student.grad[~m_s].abs().sum() == 0 and student.grad[m_s].abs().sum() > 0
    changed_s, changed_t = student.detach().clone(), teacher.clone()
    changed_s[~m_s] += 100.0
    changed_t[~m_t] -= 100.0
    assert matched_consistency(changed_s, changed_t, m_s, m_t) == pytest.approx(loss.item())
    same = teacher.clone()
    same[m_t] = student.detach()[m_s]  # the teacher agrees on every matched cell: no local loss, whatever elsewhere
    assert matched_consistency(student, same, m_s, m_t).item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="different numbers"):
        matched_consistency(student, teacher, m_s, torch.ones_like(m_t))


def test_no_overlap_gives_no_local_loss() -> None:
    x0, x1, _, _ = _pair()
    empty = torch.zeros(4, 49, dtype=torch.bool)
    out = _model()([x0, x1, empty, empty])
    assert out["loss_local"].item() == 0.0 and out["matched_cells"].item() == 0.0


def test_restoration_is_refused_until_implemented_and_cells_must_fit_the_vit_patch() -> None:
    with pytest.raises(NotImplementedError, match="restoration"):
        _model(restoration=True)
    with pytest.raises(ValueError, match="8 px patches"):
        _model("vit_tiny_p8", cell_size=4, crop_cells=7)


def test_patch_order_term_shuffles_the_student_crop_and_scores_every_cell() -> None:
    model = _model(patch_order=True, order_prob=1.0)
    torch.manual_seed(0)
    out = model(_pair())
    out["loss"].backward()
    assert out["loss_order"].item() > 0 and model.order_head.weight.grad is not None
    assert model._draw_order(3, torch.device("cpu")).sort(dim=1).values.equal(torch.arange(49).expand(3, 49))
    model.order_prob = 0.0
    assert torch.equal(model._draw_order(2, torch.device("cpu")), torch.arange(49).expand(2, 49))


def _real_stage(tmp_path: Path, pneumonia_npz: Path, backbone: str, epochs: int) -> SSLStage:
    load = Compose(
        [
            EnsureImaged(keys="image", channels=1, spatial_dims=2),
            ScaleIntensityRanged(keys="image", a_min=0, a_max=255, b_min=0.0, b_max=1.0, clip=True),
        ]
    )
    views = Compose([RandScaleIntensityd(keys="image", factors=0.2, prob=0.8), EnsureTyped(keys="image")])
    return SSLStage(
        medmnist_datalist(pneumonia_npz, "train", limit=64),
        transform=lambda d: pytest.fail("PEAC builds its own pipeline"),
        backbone=create_backbone(backbone, in_channels=1),
        output_dir=tmp_path,
        strategy="peac",
        strategy_kwargs=SMALL | {"base_momentum": 0.99},
        optim=OptimConfig(max_epochs=epochs, batch_size=32, optimizer="adamw", learning_rate=1e-3, warmup_epochs=0),
        runtime=RuntimeConfig(log_every=0),
        load_transform=load,
        view_transform=views,
    )


def test_the_loss_falls_on_real_xrays_and_the_correspondence_png_is_written(
    tmp_path: Path, pneumonia_npz: Path
) -> None:
    stage = _real_stage(tmp_path, pneumonia_npz, "vit_mini_p4", epochs=4)
    batch = stage.transform(stage.datalist[0])
    assert batch["view_0"].shape == (1, 28, 28) and batch[MASK_KEY.format(0)].shape == (49,)
    out = stage.run()
    history = json.loads(Path(out["history"]).read_text())
    assert history["loss"][-1] < history["loss"][0]
    assert history["loss_local"][-1] < history["loss_local"][0]
    assert min(history["matched_cells"]) >= 25  # 7x7-cell crops offset by at most 2 cells overlap by >= 5x5
    png = Path(out["run_dir"]) / "peac_correspondence.png"
    assert png.is_file() and png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
@pytest.mark.parametrize("backbone", ["bit_resnet18", "vit_mini_p4"])
def test_the_cxr_bundle_runs_peac_by_name(tmp_path: Path, backbone: str) -> None:
    args = [sys.executable, "-m", "monai_remedis", "run", "cxr", "ssl", "--strategy", "peac", "--backbone", backbone]
    args += ["--ssl_init", "$None", "--limit", "64", "--batch_size", "32", "--max_epochs", "1", "--log_every", "0"]
    result = subprocess.run([*args, "--output_dir", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "ssl" / "backbone.pt").is_file() and (tmp_path / "ssl" / "peac_correspondence.png").is_file()
