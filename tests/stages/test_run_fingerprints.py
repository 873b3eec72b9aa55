"""Run fingerprints on real stages: stale sweep results are never reused, resume never picks another run's
checkpoints, and an interrupted sweep fine-tune resumes mid-run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from ignite.engine import Events
from monai.transforms import Compose, EnsureTyped, RandFlipd, ScaleIntensityRanged

import monai_remedis.stages.supervised as supervised
from monai_remedis.backbones import create_backbone
from monai_remedis.data import EnsureImaged, medmnist_datalist
from monai_remedis.engines.fingerprint import SWEEP_FINGERPRINT_FILE, StaleOutputError
from monai_remedis.stages import (
    EvaluateStage,
    FinetuneStage,
    ModelSpec,
    OptimConfig,
    ReportConfig,
    RuntimeConfig,
    SweepConfig,
    SweepData,
)


def _transform(*augment) -> Compose:
    return Compose(
        [
            EnsureImaged(keys="image"),
            ScaleIntensityRanged("image", 0, 255, 0.0, 1.0, clip=True),
            *augment,
            EnsureTyped(keys="image", track_meta=False),
        ]
    )


@pytest.fixture(scope="module")
def breast(data_dir: Path) -> dict[str, list[dict]]:
    npz = data_dir / "medmnist_breast" / "breastmnist.npz"
    return {
        "train": medmnist_datalist(npz, "train", limit=16),
        "val": medmnist_datalist(npz, "val", limit=8),
        "test": medmnist_datalist(npz, "test", limit=16),
    }


def _save_backbone(path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    torch.save(create_backbone("bit_resnet18", in_channels=1).state_dict(), path)
    return path


def _sweep(out: Path, breast: dict, weights: Path, train_transform: Compose | None = None, **optim) -> EvaluateStage:
    return EvaluateStage(
        model=ModelSpec("bit_resnet18", in_channels=1, num_classes=2),
        output_dir=out,
        test_transform=_transform(),
        test_datalist=breast["test"],
        sweep=SweepConfig(
            inits={"remedis": weights},
            baseline_init="remedis",
            fractions=[1.0],
            seeds=[0],
            mode="finetune",
            optim=OptimConfig(**{"max_epochs": 1, "batch_size": 8, **optim}),
        ),
        sweep_data=SweepData(train=breast["train"], val=breast["val"], train_transform=train_transform or _transform()),
        report=ReportConfig(n_boot=0, console=False),
        runtime=RuntimeConfig(device="cpu", log_every=0),
    )


def test_sweep_never_reuses_results_of_other_weights(tmp_path: Path, breast, monkeypatch) -> None:
    """Defect 1: after retraining the SSL backbone, the sweep reused the old result.json (0 fine-tunes)."""
    weights = _save_backbone(tmp_path / "backbone.pt", seed=0)
    first = _sweep(tmp_path / "eval", breast, weights).run()["records"][0]
    run_dir = tmp_path / "eval" / "sweep" / "remedis" / "f1_s0"
    assert json.loads((run_dir / SWEEP_FINGERPRINT_FILE).read_text())["inputs"]["init_weights"]["sha256"]

    again = _sweep(tmp_path / "eval", breast, weights).run()["records"][0]  # same weights: reused, not retrained
    assert again == first

    _save_backbone(weights, seed=1)  # "retrained with BYOL": same path, other weights
    with pytest.raises(StaleOutputError, match=r"f1_s0 holds a sweep result of a different run \(inputs\.init_weights"):
        _sweep(tmp_path / "eval", breast, weights).run()
    monkeypatch.setenv("MONAI_REMEDIS_ON_STALE", "fresh")
    rerun = _sweep(tmp_path / "eval", breast, weights).run()["records"][0]
    assert rerun["auc"] != first["auc"] or rerun["best_val_auc"] != first["best_val_auc"]
    monkeypatch.delenv("MONAI_REMEDIS_ON_STALE")
    assert _sweep(tmp_path / "eval", breast, weights).run()["records"][0] == rerun  # fresh result reused


def test_sweep_reruns_when_options_change(tmp_path: Path, breast) -> None:
    weights = _save_backbone(tmp_path / "backbone.pt", seed=0)
    _sweep(tmp_path / "eval", breast, weights).run()
    with pytest.raises(StaleOutputError, match="optim"):
        _sweep(tmp_path / "eval", breast, weights, learning_rate=0.5).run()


def test_sweep_reruns_when_the_augmentation_changes(tmp_path: Path, breast) -> None:
    """A bundle edit that only changes the training augmentation (no option of the sweep) makes its results stale."""
    weights = _save_backbone(tmp_path / "backbone.pt", seed=0)
    _sweep(tmp_path / "eval", breast, weights, _transform(RandFlipd("image", prob=0.5, spatial_axis=0))).run()
    stronger = _transform(RandFlipd("image", prob=1.0, spatial_axis=0))
    with pytest.raises(StaleOutputError, match=r"transforms\.train"):
        _sweep(tmp_path / "eval", breast, weights, stronger).run()


def _finetune(
    out: Path, items: list[dict], breast: dict, max_epochs: int, resume: bool = False, train_transform=None
) -> FinetuneStage:
    return FinetuneStage(
        create_backbone("bit_resnet18", in_channels=1),
        2,
        items,
        train_transform or _transform(),
        out,
        val_datalist=breast["val"],
        val_transform=_transform(),
        optim=OptimConfig(max_epochs=max_epochs, batch_size=8),
        runtime=RuntimeConfig(log_every=0, cache_decoded=False, resume=resume),
    )


def test_resume_never_picks_another_runs_checkpoint(data_dir: Path, tmp_path: Path, breast) -> None:
    """Defect 2: a 64-image 1-epoch run resumed from a 1024-image run's checkpoint_3.pt and exported old weights."""
    big = medmnist_datalist(data_dir / "medmnist_breast" / "breastmnist.npz", "train", limit=48)
    _finetune(tmp_path, big, breast, max_epochs=3).run()
    assert (tmp_path / "checkpoints" / "checkpoint_3.pt").is_file()

    with pytest.raises(StaleOutputError, match=r"data\.train: \"48 items.* -> \"16 items"):
        _finetune(tmp_path, breast["train"], breast, max_epochs=1, resume=True).run()
    result = _finetune(tmp_path, breast["train"], breast, max_epochs=1).run()  # fresh: old checkpoints cleared
    assert result["epochs"] == 1
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["checkpoint_1.pt"]
    assert json.loads((tmp_path / "history.json").read_text())["epoch"] == [1]


def test_resume_refuses_checkpoints_trained_with_another_augmentation(tmp_path: Path, breast) -> None:
    _finetune(tmp_path, breast["train"], breast, max_epochs=1).run()
    flipped = _transform(RandFlipd("image", prob=1.0, spatial_axis=1))
    with pytest.raises(StaleOutputError, match=r"transforms\.train"):
        _finetune(tmp_path, breast["train"], breast, max_epochs=1, resume=True, train_transform=flipped).run()
    assert _finetune(tmp_path, breast["train"], breast, max_epochs=1, resume=True).run()["epochs"] == 1  # resumes


def test_interrupted_sweep_finetune_resumes_mid_run(tmp_path: Path, breast, monkeypatch) -> None:
    """Work lost: an interrupted sweep fine-tune restarted from epoch 0 (``_sweep_one`` never passed resume)."""
    weights = _save_backbone(tmp_path / "backbone.pt", seed=0)
    real = supervised.attach_training_handlers

    def interrupt_after_epoch_2(trainer, *args, **kwargs):
        resumed = real(trainer, *args, **kwargs)

        @trainer.on(Events.EPOCH_COMPLETED(once=2))
        def _crash(engine) -> None:
            raise KeyboardInterrupt("power cut")

        return resumed

    monkeypatch.setattr(supervised, "attach_training_handlers", interrupt_after_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        _sweep(tmp_path / "eval", breast, weights, max_epochs=3).run()
    run_dir = tmp_path / "eval" / "sweep" / "remedis" / "f1_s0"
    assert (run_dir / "checkpoints" / "checkpoint_2.pt").is_file() and not (run_dir / "result.json").exists()

    monkeypatch.setattr(supervised, "attach_training_handlers", real)
    epochs_run = []
    monkeypatch.setattr(
        supervised,
        "attach_training_handlers",
        lambda trainer, *a, **k: (
            trainer.add_event_handler(Events.EPOCH_STARTED, lambda e: epochs_run.append(e.state.epoch))
            and real(trainer, *a, **k)
        ),
    )
    record = _sweep(tmp_path / "eval", breast, weights, max_epochs=3).run()["records"][0]
    assert epochs_run == [3]  # only the missing epoch trains
    assert json.loads((run_dir / "history.json").read_text())["epoch"] == [1, 2, 3]  # nothing lost
    assert record["num_labels"] == 16
