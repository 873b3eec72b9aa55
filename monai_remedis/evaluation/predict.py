"""Run a classifier over a datalist with MONAI's ``SupervisedEvaluator`` and collect probabilities."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from ignite.engine import Events
from monai.data import DataLoader, Dataset, list_data_collate
from monai.engines import SupervisedEvaluator


def predict(
    model: nn.Module,
    datalist: Sequence[dict[str, Any]],
    transform: Callable,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    num_workers: int = 0,
    amp: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Softmax probabilities ``(N, K)`` and integer labels ``(N,)`` of ``model`` on ``datalist``, in datalist order.

    Raises:
        ValueError: when the datalist is empty or an item has no ``label``.
    """
    if not datalist:
        raise ValueError("predict: the datalist is empty.")
    missing = next((i for i, item in enumerate(datalist) if "label" not in item), None)
    if missing is not None:
        raise ValueError(f"predict: item {missing} ({datalist[missing].get('id', '?')}) has no 'label'.")
    loader = DataLoader(
        Dataset(list(datalist), transform=transform),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=list_data_collate,
    )
    evaluator = SupervisedEvaluator(
        device=torch.device(device),
        val_data_loader=loader,
        network=model.to(device),
        decollate=False,
        amp=amp,
        amp_kwargs={"dtype": torch.bfloat16} if amp else None,
    )
    probs: list[np.ndarray] = []
    labels: list[np.ndarray] = []

    @evaluator.on(Events.ITERATION_COMPLETED)
    def _collect(engine: SupervisedEvaluator) -> None:
        out = engine.state.output
        probs.append(torch.softmax(out["pred"].float(), dim=1).cpu().numpy())
        labels.append(out["label"].cpu().numpy().reshape(-1))

    evaluator.run()
    return np.concatenate(probs), np.concatenate(labels).astype(np.int64)
