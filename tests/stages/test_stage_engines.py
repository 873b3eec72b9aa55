"""The stages as MONAI train workflows: ``ConfigWorkflow.check_properties`` finds every train id, the engines built
from config are the ones that run (``train#trainer#max_epochs``, handlers from config), ``--tracking mlflow``
records params, per-epoch metrics and artefacts of every stage, each stage writes TensorBoard events with its loss,
and the SSL and evaluate stages write the plots users expect."""

from __future__ import annotations

import importlib.util
import json
import struct
import sys
from pathlib import Path
from typing import Any

import pytest
from monai.bundle import ConfigWorkflow

from monai_remedis.configs import bundle_config_files, bundle_dir, known_bundles
from monai_remedis.engines.tensorboard import TENSORBOARD_DIR

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bundles"))
from bundle_test_utils import TINY  # noqa: E402

# Tiny real runs: two epochs of one step each on a dozen PneumoniaMNIST images per split.
SMALL = {**TINY, "max_epochs": 2, "ssl_epochs": 2, "finetune_init": "$None", "ssl_init": "$None", "log_every": 0}
HAS_MLFLOW = importlib.util.find_spec("mlflow") is not None


def _workflow(
    bundle: str, stage: str, out: Path, overlays: list[str] | None = None, tracking: str | None = None, **overrides: Any
) -> ConfigWorkflow:
    """``ConfigWorkflow`` of a bundle stage as ``python -m monai.bundle run`` builds it (a train workflow)."""
    folder = bundle_dir(bundle)
    workflow = ConfigWorkflow(
        config_file=bundle_config_files(folder, stage, overlays),
        meta_file=str(folder / "configs" / "metadata.json"),
        workflow_type="train",
        tracking=tracking,
        **{"output_dir": str(out), **overrides},
    )
    workflow.initialize()
    return workflow


@pytest.fixture(scope="module")
def tracked_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SSL, then a fine-tune from its backbone, then evaluation, with ``--tracking mlflow`` when mlflow imports."""
    out = tmp_path_factory.mktemp("tracked")
    tracking = {"tracking_uri": f"sqlite:///{out / 'mlruns.db'}", "experiment_name": "obs"} if HAS_MLFLOW else {}
    for stage in ("ssl", "finetune"):
        overrides = {**SMALL, **tracking, "finetune_init": "@ssl_checkpoint"}
        workflow = _workflow("cxr", stage, out, tracking="mlflow" if HAS_MLFLOW else None, **overrides)
        workflow.run()
        workflow.finalize()
    _workflow("cxr", "evaluate", out, **{**SMALL, "sweep_inits": "${}"}).run()
    return out


@pytest.mark.parametrize("bundle", known_bundles())
def test_finetune_config_has_every_monai_train_property(bundle: str, tmp_path: Path) -> None:
    workflow = _workflow(bundle, "finetune", tmp_path, **{**SMALL, "train#trainer#max_epochs": 4})
    assert workflow.check_properties() == []
    trainer = workflow.trainer
    assert trainer.state.max_epochs == 4  # train#trainer#max_epochs is the epochs of the engine that runs
    assert workflow.train_dataset is trainer.data_loader.dataset
    assert workflow.evaluator is workflow.parser.get_parsed_content("finetune").engines.evaluator is not None
    assert not (tmp_path / "finetune" / "fingerprint.json").exists()  # building claims and writes nothing


def test_finetune_backbone_lr_scale_reaches_the_optimizer_that_runs(tmp_path: Path) -> None:
    workflow = _workflow("cxr", "finetune", tmp_path, **{**SMALL, "finetune_backbone_lr_scale": 0.1})
    model = workflow.trainer.network
    initial_lr = {id(p): g["initial_lr"] for g in workflow.trainer.optimizer.param_groups for p in g["params"]}
    assert initial_lr[id(model.head[-1].weight)] == pytest.approx(3e-4)
    backbone_lrs = [initial_lr[id(p)] for p in model.backbone.parameters()]
    assert backbone_lrs == pytest.approx([3e-5] * len(backbone_lrs))


@pytest.mark.parametrize("stage", ["ssl", "pretrain"])
def test_ssl_and_pretrain_configs_expose_the_same_train_ids(stage: str, tmp_path: Path) -> None:
    workflow = _workflow("cxr", stage, tmp_path, **{**SMALL, "train#trainer#max_epochs": 3})
    assert workflow.check_properties() == []
    assert workflow.trainer.state.max_epochs == 3


@pytest.mark.skipif(not HAS_MLFLOW, reason="mlflow (the 'tracking' extra) is not installed")
def test_mlflow_tracking_records_params_epoch_metrics_and_artefacts(tracked_run: Path) -> None:
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{tracked_run / 'mlruns.db'}")
    experiment = client.get_experiment_by_name("obs")
    runs = client.search_runs([experiment.experiment_id], order_by=["start_time ASC"])
    assert len(runs) == 2  # one run per stage
    for run, stage in zip(runs, ("ssl", "finetune"), strict=True):
        assert run.data.params["max_epochs"] == "2", stage
        assert [m.step for m in client.get_metric_history(run.info.run_id, "epoch_loss")] == [1, 2], stage
        artefacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert "history.json" in artefacts and any(a.startswith("config_") for a in artefacts), artefacts
    ssl, finetune = (r.info.run_id for r in runs)
    assert [m.step for m in client.get_metric_history(ssl, "knn_accuracy")] == [1, 2]
    assert {"ssl_curves.png", "augmented_views.png"} <= {a.path for a in client.list_artifacts(ssl)}
    assert len(client.get_metric_history(finetune, "val_auc")) >= 2  # the fine-tune's validation, every epoch


def _scalar_tags(folder: Path) -> set[str]:
    """Scalar tags in the TensorBoard event files of ``folder`` (TFRecord framing, parsed with tensorboardX)."""
    from tensorboardX.proto.event_pb2 import Event

    tags = set()
    for path in folder.glob("events.out.tfevents.*"):
        data, offset = path.read_bytes(), 0
        while offset < len(data):
            (length,) = struct.unpack("<Q", data[offset : offset + 8])
            event = Event.FromString(data[offset + 12 : offset + 12 + length])
            tags.update(v.tag for v in event.summary.value)
            offset += 12 + length + 4
    return tags


def test_each_stage_writes_tensorboard_events_with_its_loss(tracked_run: Path) -> None:
    pytest.importorskip("tensorboardX")
    for stage in ("ssl", "finetune"):
        assert {"loss", "epoch_loss"} <= _scalar_tags(tracked_run / stage / TENSORBOARD_DIR), stage
    assert "val_auc" in _scalar_tags(tracked_run / "finetune" / TENSORBOARD_DIR)
    history = json.loads((tracked_run / "finetune" / "history.json").read_text())
    assert "epoch_loss" not in history and len(history["loss"]) == 2  # published to handlers, not recorded twice


def test_ssl_run_plots_its_curves_views_and_knn_monitor(tracked_run: Path) -> None:
    ssl = tracked_run / "ssl"
    for name in ("ssl_curves.png", "augmented_views.png"):
        assert (ssl / "plots" / name).stat().st_size > 1000, name
    history = json.loads((ssl / "history.json").read_text())
    assert len(history["knn_accuracy"]) == 2 and all(0.0 <= a <= 1.0 for a in history["knn_accuracy"])
    assert len(history["lr"]) == 2
    metrics = json.loads((ssl / "metrics.json").read_text())
    assert 0.0 <= metrics["knn_auc"] <= 1.0


def test_evaluation_report_shows_roc_reliability_and_embedding_map(tracked_run: Path) -> None:
    out = tracked_run / "evaluate"
    report = (out / "report.md").read_text()
    for name in ("roc_test_in-distribution.png", "reliability_test_in-distribution.png", "embedding_map.png"):
        assert (out / "figures" / name).stat().st_size > 1000, name
        assert f"figures/{name}" in report


def test_handler_from_config_is_attached_to_the_trainer_that_runs(tmp_path: Path) -> None:
    log_dir = tmp_path / "user_log"
    handler = {"_target_": "LogfileHandler", "output_dir": str(log_dir)}
    overrides = {**SMALL, "max_epochs": 1, "train#handlers": [handler]}
    _workflow("cxr", "finetune", tmp_path / "run", **overrides).run()
    assert "Epoch[1] Complete" in (log_dir / "log.txt").read_text()  # the user's handler saw the run


def test_overlay_appends_a_handler_with_the_merge_key(tmp_path: Path) -> None:
    overlay = tmp_path / "my_handlers.yaml"
    overlay.write_text(f"+train#handlers:\n  - _target_: LogfileHandler\n    output_dir: {tmp_path / 'log'}\n")
    workflow = _workflow("cxr", "finetune", tmp_path / "run", overlays=[str(overlay)], **SMALL)
    assert [h["_target_"] for h in workflow.parser["train#handlers"]] == ["LogfileHandler"]
    assert workflow.check_properties() == []


@pytest.mark.skipif(not HAS_MLFLOW, reason="mlflow (the 'tracking' extra) is not installed")
@pytest.mark.parametrize("bundle", [b for b in known_bundles() if b != "cxr"])
def test_every_bundle_finetune_is_tracked_and_writes_tensorboard_events(bundle: str, tmp_path: Path) -> None:
    """The other bundles (cxr is the module fixture above): ``--tracking mlflow`` records the fine-tune's epochs and
    its TensorBoard events hold the loss."""
    import mlflow

    # One database name per bundle: pytest reuses a passed test's folder name, and mlflow keeps one SQLAlchemy engine
    # per URI in the process, so a second ``mlruns.db`` at the same path would be written through a stale engine.
    uri = f"sqlite:///{tmp_path / f'mlruns_{bundle}.db'}"
    workflow = _workflow(
        bundle, "finetune", tmp_path, tracking="mlflow", **{**SMALL, "tracking_uri": uri, "experiment_name": bundle}
    )
    workflow.run()
    workflow.finalize()
    client = mlflow.MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name(bundle).experiment_id])
    assert [m.step for m in client.get_metric_history(run.info.run_id, "epoch_loss")] == [1, 2]
    assert {"loss", "epoch_loss"} <= _scalar_tags(tmp_path / "finetune" / TENSORBOARD_DIR)
