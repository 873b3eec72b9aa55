"""DDP equivalence on CPU: 2 ranks x B under torchrun (gloo) == one process on the concatenated 2B batch.

What is proven, for SimCLR, MoCo v2, BYOL, RELIC and Barlow Twins, built as registered strategies around a tiny
normalisation-free backbone with the BatchNorm layers of their heads replaced by Identity (torch's SyncBatchNorm
does not run on CPU, and per-rank BatchNorm statistics are by design not those of the global batch):

* through the real stack (``idist.auto_model`` -> DDP, :class:`SSLTrainer`, ``after_step``), over two SGD steps:
  the loss logged by the trainer, every parameter gradient after DDP's all-reduce, and the final state of the whole
  strategy (online and momentum networks, MoCo's queue and pointer) equal the single-process ones;
* at loss level, on fixed embeddings with ``requires_grad``: NT-Xent, RELIC and Barlow Twins gather across ranks
  with gradient flow, so the mean of the per-rank losses is the global loss and each rank's gradient divided by
  the world size (DDP's averaging) is the single-process gradient of its rows.

Not proven here: SyncBatchNorm itself (CUDA only; the SSL stage converts heads to it on GPUs), NCCL, and more
than one node.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ssl_ddp_worker as worker  # noqa: E402

pytestmark = pytest.mark.ddp
WORKER = Path(worker.__file__)
ATOL, RTOL = 1e-10, 1e-8  # float64 throughout


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    out = tmp_path_factory.mktemp("ddp")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(WORKER)]
    proc = subprocess.run([*cmd, "--out", str(out)], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(2)]


@pytest.mark.parametrize("name", worker.STRATEGIES)
def test_strategy_steps_match_single_process(ranks: list[dict], name: str) -> None:
    reference = worker.train(name)
    for rank in ranks:
        got = rank["train"][name]
        assert got["losses"] == pytest.approx(reference["losses"], rel=RTOL, abs=ATOL)
        assert got["grads"].keys() == reference["grads"].keys() and got["grads"]
        for key, grad in reference["grads"].items():
            torch.testing.assert_close(got["grads"][key], grad, atol=ATOL, rtol=RTOL, msg=f"{name} grad {key}")
        for key, value in reference["state"].items():
            torch.testing.assert_close(got["state"][key], value, atol=ATOL, rtol=RTOL, msg=f"{name} state {key}")


def test_moco_queue_holds_keys_of_both_ranks(ranks: list[dict]) -> None:
    """After two steps of 8 global keys, a 12-slot queue wrapped around and every rank holds the same queue."""
    for rank in ranks:
        assert int(rank["train"]["moco_v2"]["state"]["queue_ptr"]) == (2 * worker.GLOBAL_BATCH) % 12
    torch.testing.assert_close(
        ranks[0]["train"]["moco_v2"]["state"]["queue"], ranks[1]["train"]["moco_v2"]["state"]["queue"]
    )


@pytest.mark.parametrize("name", sorted(worker.LOSSES))
def test_gathered_losses_match_single_process(ranks: list[dict], name: str) -> None:
    reference = worker.loss_on_embeddings(name)
    world = len(ranks)
    mean_loss = sum(r["loss"][name]["loss"] for r in ranks) / world
    torch.testing.assert_close(mean_loss, reference["loss"], atol=ATOL, rtol=RTOL)
    for view in ("grad_0", "grad_1"):
        averaged = torch.cat([r["loss"][name][view] for r in ranks]) / world
        torch.testing.assert_close(averaged, reference[view], atol=ATOL, rtol=RTOL)
