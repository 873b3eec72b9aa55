"""Training handlers: per-epoch averages (Ignite ``Average``) in ``history.json``, trimmed on resume; the best
model kept by Ignite's ``Checkpoint(score_function=...)``; the latest checkpoint found by epoch."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from ignite.engine import Engine, Events
from ignite.handlers import DiskSaver

from monai_remedis.engines.handlers import HistoryRecorder, attach_training_handlers, latest_checkpoint
from monai_remedis.stages.supervised import best_model_saver


def _engine(outputs: list[float]) -> Engine:
    values = iter(outputs)
    return Engine(lambda e, b: {"loss": torch.tensor(next(values)), "image": torch.zeros(2, 3), "lr": 0.1})


def test_history_averages_every_scalar_per_epoch(tmp_path: Path) -> None:
    engine = _engine([1.0, 3.0, 5.0, 9.0])
    history = HistoryRecorder(tmp_path / "history.json")
    history.attach(engine)
    engine.run([0, 1], max_epochs=2)
    saved = json.loads((tmp_path / "history.json").read_text())
    assert saved == {"loss": [2.0, 7.0], "lr": [0.1, 0.1], "epoch": [1, 2]}  # tensors of images are dropped


def test_history_records_null_where_a_metric_was_not_measured(tmp_path: Path) -> None:
    """A validation every second epoch must not show its last value again at the epochs in between."""
    engine = _engine([1.0] * 6)

    @engine.on(Events.EPOCH_STARTED)
    def _forget(e: Engine) -> None:
        e.state.metrics.pop("val_auc", None)

    @engine.on(Events.EPOCH_COMPLETED(every=2))
    def _validate(e: Engine) -> None:
        e.state.metrics["val_auc"] = 0.5 + e.state.epoch / 10

    HistoryRecorder(tmp_path / "history.json").attach(engine)
    engine.run([0, 1], max_epochs=3)
    saved = json.loads((tmp_path / "history.json").read_text())
    assert saved["epoch"] == [1, 2, 3] and saved["val_auc"] == [None, 0.7, None]
    assert len(saved["loss"]) == 3


def test_history_resumes_and_drops_epochs_after_the_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "history.json"
    path.write_text(json.dumps({"loss": [2.0, 7.0, 8.0], "epoch": [1, 2, 3]}))
    engine = _engine([4.0, 6.0])
    history = HistoryRecorder(path, resume=True)

    @engine.on(Events.STARTED)
    def _restore(e: Engine) -> None:  # what the checkpoint loader does: the run continues after epoch 2
        e.state.epoch, e.state.iteration = 2, 4

    history.attach(engine, resumed_epoch=2)
    engine.run([0, 1], max_epochs=3)
    saved = json.loads(path.read_text())
    assert saved["loss"] == [2.0, 7.0, 5.0] and saved["epoch"] == [1, 2, 3]


def test_history_of_an_epoch_is_on_disk_before_its_checkpoint(tmp_path: Path, monkeypatch) -> None:
    """A kill right after ``checkpoint_N.pt`` is written must not lose epoch N from ``history.json``."""
    seen = []

    def save(self: DiskSaver, checkpoint: dict, filename: str, metadata: dict | None = None) -> None:
        seen.append((filename, json.loads((tmp_path / "history.json").read_text())["epoch"]))

    monkeypatch.setattr(DiskSaver, "__call__", save)
    monkeypatch.setattr(DiskSaver, "remove", lambda self, filename: None)
    engine = _engine([1.0, 3.0, 5.0, 9.0])
    history = HistoryRecorder(tmp_path / "history.json")
    to_save = {"model": torch.nn.Linear(1, 1), "trainer": engine}
    attach_training_handlers(engine, tmp_path, to_save, log_every=0, history=history)
    engine.run([0, 1], max_epochs=2)
    assert seen[:2] == [("checkpoint_1.pt", [1]), ("checkpoint_2.pt", [1, 2])]


def test_a_resumed_run_keeps_n_saved_checkpoints(tmp_path: Path) -> None:
    """The saver of a resumed run takes over the checkpoints on disk: two kept, none left behind from before."""

    def train(max_epochs: int, resume: bool) -> Engine:
        engine = Engine(lambda e, b: None)
        attach_training_handlers(engine, tmp_path, {"model": torch.nn.Linear(1, 1), "trainer": engine}, resume=resume)
        engine.run([0, 1], max_epochs=max_epochs)
        return engine

    train(2, resume=False)
    assert train(4, resume=True).state.epoch == 4
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["checkpoint_3.pt", "checkpoint_4.pt"]


def test_best_model_saver_keeps_only_a_strictly_better_model(tmp_path: Path) -> None:
    model = torch.nn.Linear(2, 1)
    trainer = Engine(lambda e, b: None)
    evaluator = Engine(lambda e, b: None)
    saver = best_model_saver(model, tmp_path / "classifier.pt", trainer)
    for epoch, auc in enumerate([0.6, 0.8, 0.8, 0.7], start=1):
        trainer.state.epoch = epoch
        evaluator.state.metrics = {"val_auc": auc}
        with torch.no_grad():
            model.bias.fill_(epoch)
        saver(evaluator)
    assert saver.state_dict()["_saved"] == [(0.8, "epoch=2")]
    assert float(torch.load(tmp_path / "classifier.pt", weights_only=True)["bias"]) == 2.0  # a plain state dict
    resumed = best_model_saver(model, tmp_path / "classifier.pt", trainer)
    resumed.load_state_dict(saver.state_dict())  # the record travels in the resumable checkpoints
    evaluator.state.metrics = {"val_auc": 0.75}
    resumed(evaluator)
    assert resumed.state_dict()["_saved"] == [(0.8, "epoch=2")]


def test_latest_checkpoint_is_the_highest_epoch_not_the_newest_name(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for name in ("checkpoint_9.pt", "checkpoint_10.pt", ".checkpoint_11.pt.tmp", "other_12.pt"):
        (folder / name).write_bytes(b"")
    assert latest_checkpoint(tmp_path) == folder / "checkpoint_10.pt"
    assert latest_checkpoint(tmp_path / "missing") is None


def test_history_publishes_epoch_means_for_later_handlers_without_recording_them_twice(tmp_path: Path) -> None:
    engine = _engine([1.0, 3.0, 5.0, 9.0])
    HistoryRecorder(tmp_path / "history.json", publish=True).attach(engine)
    seen = []
    engine.add_event_handler(Events.EPOCH_COMPLETED, lambda e: seen.append(e.state.metrics["epoch_loss"]))
    engine.run([0, 1], max_epochs=2)
    assert seen == [2.0, 7.0]  # what an MLflow/TensorBoard handler attached after the recorder logs per epoch
    saved = json.loads((tmp_path / "history.json").read_text())
    assert saved == {"loss": [2.0, 7.0], "lr": [0.1, 0.1], "epoch": [1, 2]}


def test_monai_output_form_gives_the_loss_to_monai_handlers() -> None:
    from monai.handlers import from_engine

    from monai_remedis.engines.handlers import scalar_output
    from monai_remedis.stages.engines import as_monai_output

    engine = _engine([0.5])
    engine.add_event_handler(Events.ITERATION_COMPLETED, as_monai_output)
    engine.run([0], max_epochs=1)
    assert from_engine(["loss"], first=True)(engine.state.output) == 0.5  # MONAI's MLFlowHandler default transform
    assert scalar_output(engine.state.output) == {"loss": 0.5, "lr": 0.1}  # the image tensor is dropped
