"""The online kNN monitor measures how well backbone features separate real labelled images."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from ignite.engine import Engine

from monai_remedis.data import medmnist_datalist
from monai_remedis.engines.knn_monitor import KNNMonitor, knn_predict


class _Flatten(torch.nn.Module):
    """Raw pixels as features: a 'backbone' whose kNN quality on PneumoniaMNIST is known to be well above chance."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


def _scale(item):
    return {"image": torch.as_tensor(item["image"]).float() / 255.0}


def test_knn_predict_matches_a_brute_force_weighted_vote():
    torch.manual_seed(0)
    bank, labels, queries = torch.randn(50, 8), torch.randint(0, 3, (50,)), torch.randn(7, 8)
    scores = knn_predict(bank, labels, queries, 3, k=5, t=0.1)
    for q in range(7):
        sim = torch.nn.functional.cosine_similarity(queries[q : q + 1], bank)
        top = sim.topk(5).indices
        votes = torch.zeros(3)
        for i in top:
            votes[labels[i]] += torch.exp(sim[i] / 0.1)
        torch.testing.assert_close(scores[q], votes / votes.sum(), rtol=1e-4, atol=1e-6)


def test_monitor_runs_before_training_and_every_epoch_on_real_xrays(pneumonia_npz: Path):
    bank = medmnist_datalist(pneumonia_npz, "train", limit=300)
    queries = medmnist_datalist(pneumonia_npz, "val", limit=120)
    backbone = _Flatten().train()
    monitor = KNNMonitor(backbone, bank, queries, _scale, num_classes=2, every=2)
    engine = Engine(lambda e, b: None)
    monitor.attach(engine)
    engine.run(range(2), max_epochs=4)
    assert [r["epoch"] for r in monitor.results] == [0.0, 2.0, 4.0]
    assert engine.state.metrics["knn_auc"] > 0.8  # pixels separate pneumonia from normal well above chance
    assert backbone.training  # the backbone's mode is restored


def test_monitor_sees_permuted_labels_as_chance(pneumonia_npz: Path):
    bank = medmnist_datalist(pneumonia_npz, "train", limit=300)
    queries = medmnist_datalist(pneumonia_npz, "val", limit=120)
    aucs = []
    for seed in range(8):  # labels unrelated to the images: the mean over permutations sits at chance
        permuted = torch.randperm(len(bank), generator=torch.Generator().manual_seed(seed)).tolist()
        shuffled = [dict(it, label=bank[j]["label"]) for it, j in zip(bank, permuted, strict=True)]
        aucs.append(KNNMonitor(_Flatten(), shuffled, queries, _scale, num_classes=2).evaluate()["knn_auc"])
    assert abs(sum(aucs) / len(aucs) - 0.5) < 0.08


def test_monitor_refuses_an_empty_bank():
    with pytest.raises(ValueError, match="non-empty"):
        KNNMonitor(_Flatten(), [], [{"image": torch.zeros(1, 2, 2), "label": 0}], _scale, 2)
