"""Mechanics of Ark's engine on real images: masked heads, the EMA teacher, the consistency schedule, and the
equivalence with plain supervised training when the consistency is off."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch
from ignite.engine import Events
from monai.data import DataLoader, Dataset, list_data_collate
from monai.engines import SupervisedTrainer
from monai.transforms import Compose, EnsureTyped, RandFlipd, ScaleIntensityRanged

from monai_remedis.backbones import create_backbone
from monai_remedis.data import EnsureImaged, medmnist_datalist
from monai_remedis.data.mias import mias_abnormality_datalist
from monai_remedis.data.transforms import MultiViewd
from monai_remedis.engines.ark_trainer import (
    ArkTrainer,
    CycleLoader,
    MultiClassLoss,
    MultiLabelLoss,
    consistency_weight,
)
from monai_remedis.models.omni import OmniModel
from monai_remedis.ssl.momentum import cosine_momentum, frozen_copy

LOAD = Compose(
    [
        EnsureImaged(keys="image", channels=1, spatial_dims=2),
        ScaleIntensityRanged(keys="image", a_min=0, a_max=255, b_min=0.0, b_max=1.0, clip=True),
        EnsureTyped(keys="image", track_meta=False),
    ]
)
VIEWS = Compose([LOAD, MultiViewd(keys="image", view_transform=RandFlipd(keys="image", prob=0.5), num_views=2)])


@pytest.fixture(scope="module")
def breast_items(data_dir: Path) -> list[dict]:
    return medmnist_datalist(data_dir / "medmnist_breast" / "breastmnist.npz", "train", limit=8)


@pytest.fixture(scope="module")
def pneumonia_items(data_dir: Path) -> list[dict]:
    return medmnist_datalist(data_dir / "medmnist_pneumonia" / "pneumoniamnist.npz", "train", limit=8)


def _loader(items: list[dict], batch: int = 8, transform=VIEWS) -> DataLoader:
    return DataLoader(
        Dataset(items, transform=transform), batch_size=batch, shuffle=False, collate_fn=list_data_collate
    )


def _student(heads: dict[str, int], projector_dim: int | None = 16) -> OmniModel:
    torch.manual_seed(0)
    return OmniModel(create_backbone("bit_resnet18", in_channels=1), heads, projector_dim=projector_dim)


def _trainer(
    student: OmniModel, loaders: dict, epochs: int = 1, consistency_max: float = 0.5, weight_decay: float = 0.05
) -> ArkTrainer:
    optimizer = torch.optim.AdamW([p for p in student.parameters()], lr=1e-2, weight_decay=weight_decay)
    losses = {name: MultiClassLoss() for name in student.head_names}
    return ArkTrainer(
        device="cpu",
        max_epochs=epochs,
        train_data_loader=CycleLoader(loaders),
        network=student,
        teacher=frozen_copy(student),
        optimizer=optimizer,
        loss_functions=losses,
        consistency_max=consistency_max,
    )


def test_consistency_weight_rises_from_zero_to_half_along_a_cosine() -> None:
    values = [consistency_weight(p / 10) for p in range(11)]
    assert values[0] == 0.0 and values[-1] == pytest.approx(0.5)
    assert all(b > a for a, b in zip(values, values[1:], strict=False))
    assert values[5] == pytest.approx(0.25)
    assert values[2] == pytest.approx(0.25 * (1 - math.cos(math.pi * 0.2)))


def test_trainer_applies_the_schedules_at_every_iteration(breast_items: list[dict]) -> None:
    trainer = _trainer(_student({"breast": 2}), {"breast": _loader(breast_items, batch=4)}, epochs=2)
    seen: list[tuple[float, float]] = []
    trainer.add_event_handler(
        Events.ITERATION_COMPLETED,
        lambda e: seen.append((e.state.output["consistency_weight"], e.state.output["momentum"])),
    )
    trainer.run()
    total = 4  # 2 epochs x 2 batches
    for i, (c, m) in enumerate(seen):
        assert c == pytest.approx(consistency_weight(i / (total - 1)))
        assert m == pytest.approx(cosine_momentum(i / (total - 1), 0.9))
    assert seen[0][0] == 0.0 and seen[-1][0] == pytest.approx(0.5) and seen[-1][1] == pytest.approx(1.0)


def test_heads_of_absent_datasets_get_no_gradient_and_do_not_move(
    breast_items: list[dict], pneumonia_items: list[dict]
) -> None:
    student = _student({"breast": 2, "pneumonia": 2})
    trainer = _trainer(student, {"breast": _loader(breast_items), "pneumonia": _loader(pneumonia_items)})
    before = copy.deepcopy(student.heads.state_dict())
    trainer.state.max_epochs, trainer.state.epoch_length, trainer.state.iteration = 1, 2, 1
    trainer._iteration(trainer, {**next(iter(_loader(breast_items))), "task": "breast"})
    assert all(p.grad is None for p in student.heads["pneumonia"].parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in student.heads["breast"].parameters())
    after = student.heads.state_dict()
    for key in before:  # weight decay (0.05) would move a head with a zero gradient: a None gradient is skipped
        moved = not torch.equal(before[key], after[key])
        assert moved == key.startswith("breast"), key


def test_teacher_follows_the_ema_of_the_student_and_gets_no_gradient(breast_items: list[dict]) -> None:
    student = _student({"breast": 2})
    trainer = _trainer(student, {"breast": _loader(breast_items)})
    with torch.no_grad():  # make teacher and student differ, so the EMA is visible
        for p in trainer.teacher.parameters():
            p.add_(0.01)
    teacher_before = copy.deepcopy(trainer.teacher.state_dict())
    trainer.state.max_epochs, trainer.state.epoch_length, trainer.state.iteration = 1, 5, 3
    out = trainer._iteration(trainer, {**next(iter(_loader(breast_items))), "task": "breast"})
    m = out["momentum"]
    assert 0.9 < m < 1.0 and out["consistency_weight"] > 0
    assert all(p.grad is None and not p.requires_grad for p in trainer.teacher.parameters())
    student_state = student.state_dict()
    for key, value in trainer.teacher.state_dict().items():
        expected = m * teacher_before[key] + (1 - m) * student_state[key]
        torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-6)


def test_with_c_zero_and_one_dataset_the_step_is_plain_supervised_training(breast_items: list[dict]) -> None:
    """Same batch, same initial weights: ArkTrainer (c=0) and MONAI's SupervisedTrainer give the same losses and
    the same weights after three steps."""
    batches = list(_loader(breast_items, batch=8, transform=LOAD))  # one view: the student sees `image`
    ark_student = _student({"breast": 2})
    sup_network = copy.deepcopy(ark_student).head_network("breast")
    ark = _trainer(ark_student, {"breast": batches}, consistency_max=0.0)
    sup = SupervisedTrainer(
        device="cpu",
        max_epochs=1,
        train_data_loader=batches,
        network=sup_network,
        optimizer=torch.optim.AdamW(sup_network.parameters(), lr=1e-2, weight_decay=0.05),
        loss_function=torch.nn.CrossEntropyLoss(),
        decollate=False,
    )
    ark.state.max_epochs, ark.state.epoch_length = 1, 3
    for i in range(3):
        batch = batches[i % len(batches)]
        ark.state.iteration = i + 1
        ark_loss = ark._iteration(ark, {**batch, "task": "breast"})["loss"]
        sup_loss = sup._iteration(sup, dict(batch))["loss"].item()
        assert ark_loss == pytest.approx(sup_loss, rel=1e-6)
    for (name, a), b in zip(ark_student.state_dict().items(), sup_network.model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=name)


def test_multi_label_head_trains_on_mias_abnormalities(data_dir: Path) -> None:
    mias = data_dir / "mini_mias_abnormal"
    items = mias_abnormality_datalist(mias / "images_512", mias / "Info.txt")[:4]
    student = _student({"mias": 6})
    trainer = _trainer(student, {"mias": _loader(items, batch=4)})
    trainer.loss_functions["mias"] = MultiLabelLoss()
    trainer.run()
    assert math.isfinite(trainer.state.metrics["loss_mias"])


def test_cycle_loader_interleaves_datasets_and_tags_each_batch() -> None:
    loaders = {"a": [{"x": 1}, {"x": 2}, {"x": 3}], "b": [{"x": 10}]}
    tags = [(b["task"], b["x"]) for b in CycleLoader(loaders)]
    assert tags == [("a", 1), ("b", 10), ("a", 2), ("a", 3)]
    assert [b["task"] for b in CycleLoader(loaders, order="sequential")] == ["a", "a", "a", "b"]
    assert len(CycleLoader(loaders)) == 4
    with pytest.raises(ValueError, match="interleave, sequential"):
        CycleLoader(loaders, order="random")
    with pytest.raises(ValueError, match="empty"):
        CycleLoader({"a": []})


def test_trainer_refuses_a_teacher_with_trainable_parameters(breast_items: list[dict]) -> None:
    student = _student({"breast": 2})
    with pytest.raises(ValueError, match="frozen"):
        ArkTrainer(
            device="cpu",
            max_epochs=1,
            train_data_loader=CycleLoader({"breast": _loader(breast_items)}),
            network=student,
            teacher=copy.deepcopy(student),
            optimizer=torch.optim.SGD(student.parameters(), lr=0.1),
            loss_functions={"breast": MultiClassLoss()},
        )
