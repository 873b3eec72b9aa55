"""Stage 3 on real chest X-rays: a short fine-tune separates pneumonia from normal; linear probes freeze."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from ignite.engine import Events

import monai_remedis.stages.supervised as supervised
from monai_remedis.backbones import create_backbone
from monai_remedis.evaluation.predict import predict
from monai_remedis.evaluation.statistics import auc_score
from monai_remedis.models import Classifier
from monai_remedis.stages import FinetuneStage, OptimConfig, RuntimeConfig
from monai_remedis.stages.supervised import guard_validation_split


def test_short_finetune_reaches_test_auc_above_0_8(cxr_config, tmp_path: Path) -> None:
    cfg = cxr_config()
    train = cfg.get_parsed_content("datalist#train")
    stage = FinetuneStage(
        create_backbone("bit_resnet18", in_channels=1),
        2,
        train,
        cfg.get_parsed_content("train_transform"),
        tmp_path,
        val_datalist=cfg.get_parsed_content("datalist#val"),
        val_transform=cfg.get_parsed_content("eval_transform"),
        label_fraction=0.15,
        fraction_seed=0,
        optim=OptimConfig(max_epochs=2, batch_size=64, learning_rate=0.01),
        runtime=RuntimeConfig(log_every=0),
    )
    result = stage.run()
    assert result["num_labels"] == pytest.approx(0.15 * len(train), abs=2)
    assert result["best_val_auc"] > 0.8
    model = Classifier(create_backbone("bit_resnet18", in_channels=1), 2)
    model.load_state_dict(torch.load(result["classifier"], weights_only=True))
    probs, labels = predict(
        model.eval(), cfg.get_parsed_content("datalist#test"), cfg.get_parsed_content("eval_transform")
    )
    assert len(labels) == 624
    assert auc_score(probs, labels) > 0.8
    assert json.loads((tmp_path / "metrics.json").read_text())["label_fraction"] == 0.15


def test_linear_probe_trains_only_the_head(cxr_config, tmp_path: Path) -> None:
    cfg = cxr_config(limit=128)
    backbone = create_backbone("bit_resnet18", in_channels=1)
    torch.save(backbone.state_dict(), tmp_path / "backbone.pt")
    stage = FinetuneStage(
        create_backbone("bit_resnet18", in_channels=1),
        2,
        cfg.get_parsed_content("datalist#train"),
        cfg.get_parsed_content("train_transform"),
        tmp_path / "probe",
        init_weights=tmp_path / "backbone.pt",
        linear_probe=True,
        optim=OptimConfig(max_epochs=1, batch_size=32, learning_rate=0.1),
        runtime=RuntimeConfig(log_every=0),
    )
    result = stage.run()
    trained = torch.load(result["classifier"], weights_only=True)
    for key, value in backbone.state_dict().items():
        assert torch.equal(trained[f"backbone.{key}"], value), key
    assert trained["head.1.weight"].abs().sum() > 0


def test_test_or_ood_items_cannot_drive_model_selection() -> None:
    with pytest.raises(ValueError, match="split='test'"):
        guard_validation_split([{"image": "a.png", "label": 0, "split": "test", "id": "a"}])
    guard_validation_split([{"image": "a.png", "label": 0, "split": "val"}])


def test_resumed_finetune_keeps_the_best_model_record(cxr_config, tmp_path: Path, monkeypatch) -> None:
    """The best-model saver's record travels in the resumable checkpoint: a run interrupted after epoch 1 and
    resumed replaces classifier.pt only with a better model, and reports the epoch that produced it."""
    cfg = cxr_config(limit=64)
    real = supervised.attach_training_handlers

    def interrupted_after_epoch_1(trainer, *args, **kwargs):
        resumed = real(trainer, *args, **kwargs)
        trainer.add_event_handler(Events.EPOCH_COMPLETED(once=1), lambda e: (_ for _ in ()).throw(KeyboardInterrupt()))
        return resumed

    def stage(resume: bool) -> FinetuneStage:
        return FinetuneStage(
            create_backbone("bit_resnet18", in_channels=1),
            2,
            cfg.get_parsed_content("datalist#train"),
            cfg.get_parsed_content("eval_transform"),
            tmp_path,
            val_datalist=cfg.get_parsed_content("datalist#val"),
            val_transform=cfg.get_parsed_content("eval_transform"),
            optim=OptimConfig(max_epochs=2, batch_size=32, learning_rate=0.01),
            runtime=RuntimeConfig(log_every=0, resume=resume),
        )

    monkeypatch.setattr(supervised, "attach_training_handlers", interrupted_after_epoch_1)
    with pytest.raises(KeyboardInterrupt):
        stage(resume=False).run()
    assert (tmp_path / "classifier.pt").is_file() and not (tmp_path / "best.json").exists()
    monkeypatch.setattr(supervised, "attach_training_handlers", real)
    second = stage(resume=True).run()
    history = json.loads((tmp_path / "history.json").read_text())
    assert history["epoch"] == [1, 2] and second["epochs"] == 2  # epoch 1 was not trained again
    assert second["best_val_auc"] == max(history["val_auc"])
    assert second["best_epoch"] == 1 + history["val_auc"].index(max(history["val_auc"]))


def test_probe_head_init_sees_only_the_labelled_subset(cxr_config, tmp_path: Path, monkeypatch) -> None:
    """LP-FT fits its probe on the run's labelled subset (never the whole training set) and records it."""
    import monai_remedis.stages.finetune as finetune

    cfg = cxr_config(limit=128)
    seen: dict[str, int] = {}
    real = finetune.probe_head_init

    def spy(model, train, *args, **kwargs):
        seen["train"] = len(train)
        return real(model, train, *args, **kwargs)

    monkeypatch.setattr(finetune, "probe_head_init", spy)
    optim = OptimConfig(max_epochs=1, batch_size=16, learning_rate=1e-4, optimizer="adamw", head_init="probe")
    result = _cxr_finetune(cfg, tmp_path, optim, RuntimeConfig(log_every=0), label_fraction=0.25)
    assert seen["train"] == result["num_labels"] == 32
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["head_init"] == "probe" and 0.0 < metrics["probe_val_auc"] <= 1.0


def _cxr_finetune(cfg, output_dir: Path, optim: OptimConfig, runtime: RuntimeConfig, **options) -> dict:
    """A cxr fine-tune from a random ``bit_resnet18`` drawn with seed 0 (config files seed before building it)."""
    torch.manual_seed(0)
    return FinetuneStage(
        create_backbone("bit_resnet18", in_channels=1),
        2,
        cfg.get_parsed_content("datalist#train"),
        cfg.get_parsed_content("train_transform"),
        output_dir,
        val_datalist=cfg.get_parsed_content("datalist#val"),
        val_transform=cfg.get_parsed_content("eval_transform"),
        optim=optim,
        runtime=runtime,
        **options,
    ).run()


def test_an_lpft_run_keeps_its_probe_when_fine_tuning_only_makes_it_worse(
    cxr_config, tmp_path: Path, monkeypatch
) -> None:
    """With a probe head the untrained model is validated before the first step: when every update ruins the
    features (here the backbone is zeroed after each step), the exported classifier is the probe itself."""
    cfg = cxr_config(limit=128)
    real = supervised.attach_training_handlers

    def ruin_each_step(trainer, run_dir, to_save, *args, **kwargs):
        network = to_save["network"]
        trainer.add_event_handler(
            Events.ITERATION_COMPLETED, lambda _: [p.data.zero_() for p in network.backbone.parameters()]
        )
        return real(trainer, run_dir, to_save, *args, **kwargs)

    monkeypatch.setattr(supervised, "attach_training_handlers", ruin_each_step)

    def run(head_init: str) -> dict:
        optim = OptimConfig(max_epochs=2, batch_size=16, optimizer="adamw", learning_rate=3e-4, head_init=head_init)
        return _cxr_finetune(cfg, tmp_path / head_init, optim, RuntimeConfig(log_every=0), label_fraction=0.5)

    lpft = run("probe")
    assert lpft["best_epoch"] == 0
    assert lpft["probe_val_auc"] > 0.6 and lpft["best_val_auc"] == pytest.approx(lpft["probe_val_auc"], abs=1e-6)
    exported = torch.load(lpft["classifier"], weights_only=True)
    assert any(v.abs().sum() > 0 for k, v in exported.items() if k.startswith("backbone.") and v.is_floating_point())
    zero = run("zero")  # a zero head is at chance before its first step: nothing to validate there
    assert zero["best_epoch"] >= 1 and zero["best_val_auc"] == pytest.approx(0.5)


def test_history_holds_val_auc_only_for_the_epochs_that_were_validated(cxr_config, tmp_path: Path) -> None:
    cfg = cxr_config(limit=64)
    optim = OptimConfig(max_epochs=2, batch_size=16, optimizer="adamw", learning_rate=3e-4)
    metrics = _cxr_finetune(cfg, tmp_path, optim, RuntimeConfig(log_every=0, val_evaluations=1))
    history = json.loads((tmp_path / "history.json").read_text())
    assert history["epoch"] == [1, 2] and history["val_auc"][0] is None  # one validation, after epoch 2
    assert history["val_auc"][1] == pytest.approx(metrics["best_val_auc"])


@pytest.mark.parametrize("cache_decoded", [True, False])
def test_the_same_finetune_twice_gives_the_same_weights(cxr_config, tmp_path: Path, cache_decoded: bool) -> None:
    """Run-to-run stability: the stage seeds itself and its augmentations, so the same settings give bit-identical
    results on CPU, also when the transform objects are reused (a sweep's runs share them)."""
    cfg = cxr_config(limit=64)

    def run(folder: str) -> dict:
        optim = OptimConfig(max_epochs=2, batch_size=16, optimizer="adamw", learning_rate=3e-4, head_init="probe")
        return _cxr_finetune(
            cfg, tmp_path / folder, optim, RuntimeConfig(log_every=0, seed=3, cache_decoded=cache_decoded)
        )

    first, second = run("a"), run("b")
    assert first["best_val_auc"] == second["best_val_auc"]
    a, b = (torch.load(r["classifier"], weights_only=True) for r in (first, second))
    assert all(torch.equal(a[k], b[k]) for k in a)
