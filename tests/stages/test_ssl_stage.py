"""Stage 2 on real chest X-rays: the SimCLR loss falls, the backbone is exported, runs resume, and a run that leaves
the representation worse than its init says so."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from monai.utils import set_determinism

from monai_remedis.backbones import create_backbone, load_backbone_weights
from monai_remedis.engines.fingerprint import file_digest
from monai_remedis.engines.ssl_trainer import SSLTrainer
from monai_remedis.stages import OptimConfig, RuntimeConfig, SSLStage

# A gentler view policy than the bundle default so that a dozen steps on 2 CPU cores show learning.
LIGHT_VIEWS = {"crop_area": [0.64, 1.0], "histeq_prob": 0.0, "blur_max_sigma": 0.3}


def _stage(cfg, out: Path, limit: int, max_epochs: int, batch_size: int, resume: bool = False) -> SSLStage:
    parser = cfg(limit=limit, **LIGHT_VIEWS)
    return SSLStage(
        parser.get_parsed_content("datalist#train"),
        parser.get_parsed_content("ssl_transform"),
        create_backbone("bit_resnet18", in_channels=1),
        out,
        optim=OptimConfig(max_epochs, batch_size, "adamw", 1e-3, weight_decay=1e-6, warmup_epochs=0),
        runtime=RuntimeConfig(resume=resume, log_every=0),
    )


def test_simclr_loss_falls_on_real_chest_xrays(cxr_config, tmp_path: Path) -> None:
    result = _stage(cxr_config, tmp_path, limit=384, max_epochs=3, batch_size=64).run()
    history = json.loads(Path(result["history"]).read_text())
    assert history["epoch"] == [1, 2, 3]
    assert history["loss"][-1] < history["loss"][0] - 0.3, history["loss"]
    # no collapse: normalised embeddings keep spreading over the sphere (std ~ 1/sqrt(128) = 0.088)
    assert min(history["embedding_std"]) > 0.05
    # the exported encoder is a plain state dict that the next stage loads
    encoder = load_backbone_weights(create_backbone("bit_resnet18", in_channels=1), result["backbone"])
    assert torch.isfinite(next(encoder.parameters())).all()
    provenance = json.loads((tmp_path / "provenance.json").read_text())
    assert provenance["stage"] == "ssl" and provenance["config"]["strategy_name"] == "simclr"
    assert provenance["config"]["optim"]["max_epochs"] == 3 and provenance["config"]["runtime"]["device"] == "auto"


def test_interrupted_ssl_run_resumes_from_the_saved_epoch(cxr_config, tmp_path: Path, monkeypatch) -> None:
    calls: list[int] = []
    original = SSLTrainer._iteration

    def crash_in_epoch_two(self, engine, batch):
        calls.append(engine.state.epoch)
        if engine.state.epoch == 2:
            raise KeyboardInterrupt("simulated crash")
        return original(self, engine, batch)

    monkeypatch.setattr(SSLTrainer, "_iteration", crash_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        _stage(cxr_config, tmp_path, limit=128, max_epochs=3, batch_size=64).run()
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("*.pt")) == ["checkpoint_1.pt"]
    assert not list((tmp_path / "checkpoints").glob(".*tmp"))  # atomic writes leave no partial files

    calls.clear()
    monkeypatch.setattr(
        SSLTrainer, "_iteration", lambda self, e, b: (calls.append(e.state.epoch), original(self, e, b))[1]
    )
    result = _stage(cxr_config, tmp_path, limit=128, max_epochs=3, batch_size=64, resume=True).run()
    assert calls == [2, 2, 3, 3]  # epoch 1 is not trained again
    assert json.loads(Path(result["history"]).read_text())["epoch"] == [1, 2, 3]
    assert (tmp_path / "checkpoints" / "checkpoint_3.pt").is_file()


def test_empty_datalist_is_refused(cxr_config, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="datalist is empty"):
        SSLStage([], cxr_config().get_parsed_content("ssl_transform"), create_backbone("bit_resnet18"), tmp_path)


def _zero_encoder_after_each_step(original):
    """An SSL step that then wipes the encoder: every image maps to the same features (a ruined representation)."""

    def step(self, engine, batch):
        output = original(self, engine, batch)
        with torch.no_grad():
            for param in self.strategy.encoder.parameters():
                param.zero_()
        return output

    return step


@pytest.mark.parametrize("ruined", [False, True], ids=["unchanged", "ruined"])
def test_ssl_that_worsens_the_probe_is_warned_and_recorded(
    cxr_config, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch, ruined: bool
) -> None:
    parser = cxr_config(limit=128, **LIGHT_VIEWS)
    diagnostics = {
        "train": parser.get_parsed_content("datalist#train"),
        "val": parser.get_parsed_content("datalist#val"),
        "transform": parser.get_parsed_content("eval_transform"),
        "max_items": 128,
    }
    if ruined:
        monkeypatch.setattr(SSLTrainer, "_iteration", _zero_encoder_after_each_step(SSLTrainer._iteration))
    torch.manual_seed(0)
    stage = SSLStage(
        diagnostics["train"],
        parser.get_parsed_content("ssl_transform"),
        create_backbone("bit_resnet18_small", in_channels=1),
        tmp_path,
        # learning rate 0: the unchanged run keeps its init weights exactly, so the two probes agree
        optim=OptimConfig(1, 64, "adamw", 0.0, weight_decay=0.0, warmup_epochs=0),
        runtime=RuntimeConfig(device="cpu", log_every=0),
        diagnostics=diagnostics,
        knn_max_items=0,
    )
    with caplog.at_level(logging.WARNING, logger="monai_remedis"):
        stage.run()
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    change = metrics["representation_change"]
    assert metrics["representation_init"]["probe_val_auc"] == change["probe_val_auc_before"]
    assert metrics["representation"]["probe_val_auc"] == change["probe_val_auc_after"]
    assert change["n_val"] == 128 and change["ci_low"] <= change["change"] <= change["ci_high"]
    assert metrics["backbone_sha256"] == file_digest(tmp_path / "backbone.pt")  # the report's check of the pairing
    warnings = [r.getMessage() for r in caplog.records if "made the representation worse" in r.getMessage()]
    if ruined:
        assert change["probe_val_auc_after"] == pytest.approx(0.5) and change["ci_high"] < 0
        assert len(warnings) == 1 and f"from {change['probe_val_auc_before']:.4f} to 0.5000" in warnings[0]
        assert warnings[0].startswith(metrics["representation_warning"])
        assert "complete collapse" in metrics["collapse_warning"]  # every image now maps to one point
    else:
        assert change["change"] == 0.0 and change["probe_val_auc_before"] > 0.7
        assert warnings == [] and metrics["representation_warning"] is None and metrics["collapse_warning"] is None
        assert metrics["collapse_recovered"] is None


def test_the_init_probe_leaves_training_unchanged(cxr_config, tmp_path: Path) -> None:
    """The same seeded run with and without the representation check exports the same backbone."""
    parser = cxr_config(limit=64, **LIGHT_VIEWS)
    train = parser.get_parsed_content("datalist#train")
    diagnostics = {
        "train": train,
        "val": parser.get_parsed_content("datalist#val"),
        "transform": parser.get_parsed_content("eval_transform"),
        "max_items": 64,
    }
    exported = []
    for name, checked in (("plain", None), ("checked", diagnostics)):
        set_determinism(seed=0)  # the transforms' and the backbone's random state, as a fresh process has it
        stage = SSLStage(
            train,
            parser.get_parsed_content("ssl_transform"),
            create_backbone("bit_resnet18_small", in_channels=1),
            tmp_path / name,
            optim=OptimConfig(1, 32, "adamw", 1e-3, weight_decay=0.0, warmup_epochs=0),
            runtime=RuntimeConfig(device="cpu", log_every=0, seed=0),
            diagnostics=checked,
            knn_max_items=0,
            plots=False,
        )
        exported.append(torch.load(stage.run()["backbone"]))
    assert "representation_change" in json.loads((tmp_path / "checked" / "metrics.json").read_text())
    assert exported[0].keys() == exported[1].keys()
    assert all(torch.equal(exported[0][k], exported[1][k]) for k in exported[0])
