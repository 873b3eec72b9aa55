"""DDP equivalence worker: run under ``torchrun --nproc_per_node=2`` by ``test_ssl_ddp.py``.

Each rank trains on its half of a fixed global batch through the real stack (``idist.auto_model`` -> DDP on
gloo, :class:`SSLTrainer`, ``after_step``) and evaluates the gathered losses on its half of fixed embeddings; it
saves what it saw so the test can compare it with one process on the whole batch. The same functions compute
that single-process reference.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import ignite.distributed as idist
import torch
from ignite.engine import Events
from monai.engines.utils import IterationEvents

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ssl_test_utils import build_strategy, make_views  # noqa: E402

from monai_remedis.engines.runtime import ensure_distributed  # noqa: E402
from monai_remedis.engines.ssl_trainer import SSLTrainer  # noqa: E402
from monai_remedis.ssl.losses import BarlowTwinsLoss, NTXentLoss, RelicLoss  # noqa: E402

STRATEGIES = ("simclr", "moco_v2", "byol", "relic", "barlow_twins")
LOSSES = {
    "ntxent": lambda: NTXentLoss(temperature=0.1),
    "relic": lambda: RelicLoss(temperature=0.1, alpha=1.0),
    "barlow_twins": lambda: BarlowTwinsLoss(lambda_offdiag=5e-3),
}
GLOBAL_BATCH = 8
STEPS = 2


def global_batches() -> list[dict[str, torch.Tensor]]:
    """``STEPS`` batches of ``GLOBAL_BATCH`` two-view samples, identical on every rank."""
    batches = []
    for step in range(STEPS):
        v0, v1 = make_views(GLOBAL_BATCH, seed=100 + step)
        batches.append({"view_0": v0.double(), "view_1": v1.double()})
    return batches


def shard(batch: dict[str, torch.Tensor], rank: int, world: int) -> dict[str, torch.Tensor]:
    """This rank's contiguous slice of a global batch (rank order = concatenation order)."""
    size = GLOBAL_BATCH // world
    return {k: v[rank * size : (rank + 1) * size] for k, v in batch.items()}


def train(name: str, rank: int = 0, world: int = 1) -> dict[str, Any]:
    """Two SGD steps of strategy ``name`` (BatchNorm stripped, float64) through DDP + SSLTrainer; what they produced."""
    strategy = build_strategy(name, batchnorm=False).double()  # float64: equality up to rounding, not float32 noise
    network = idist.auto_model(strategy)  # DDP on gloo when world > 1, the module itself otherwise
    params = [p for p in strategy.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=0.5)
    loader = [shard(b, rank, world) for b in global_batches()]
    trainer = SSLTrainer("cpu", max_epochs=1, train_data_loader=loader, network=network, optimizer=optimizer)
    record: dict[str, Any] = {"losses": [], "grads": {}}

    @trainer.on(IterationEvents.BACKWARD_COMPLETED)
    def _grads(engine: SSLTrainer) -> None:  # after DDP's all-reduce, before the optimizer step
        if engine.state.iteration == 1:
            record["grads"] = {n: p.grad.detach().clone() for n, p in strategy.named_parameters() if p.grad is not None}

    @trainer.on(Events.ITERATION_COMPLETED)
    def _loss(engine: SSLTrainer) -> None:
        record["losses"].append(engine.state.output["loss"])

    trainer.run()
    record["state"] = {k: v.detach().clone() for k, v in strategy.state_dict().items()}
    return record


def embeddings(seed: int = 7) -> tuple[torch.Tensor, ...]:
    """Fixed global float64 embeddings ``(GLOBAL_BATCH, 6)`` of two views."""
    gen = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(GLOBAL_BATCH, 6, generator=gen, dtype=torch.float64) for _ in range(2))


def loss_on_embeddings(name: str, rank: int = 0, world: int = 1) -> dict[str, torch.Tensor]:
    """Loss ``name`` on this rank's slice of :func:`embeddings`, and its gradient w.r.t. that slice."""
    z0, z1 = embeddings()
    size = GLOBAL_BATCH // world
    z0 = z0[rank * size : (rank + 1) * size].clone().requires_grad_(True)
    z1 = z1[rank * size : (rank + 1) * size].clone().requires_grad_(True)
    loss = LOSSES[name]()(z0, z1)
    loss.backward()
    return {"loss": loss.detach(), "grad_0": z0.grad, "grad_1": z1.grad}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    out = Path(parser.parse_args().out)
    torch.set_num_threads(1)
    ensure_distributed()
    rank, world = idist.get_rank(), idist.get_world_size()
    assert world == 2 and idist.backend() == "gloo", (world, idist.backend())
    results = {
        "world": world,
        "train": {name: train(name, rank, world) for name in STRATEGIES},
        "loss": {name: loss_on_embeddings(name, rank, world) for name in LOSSES},
    }
    torch.save(results, out / f"rank{rank}.pt")
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
