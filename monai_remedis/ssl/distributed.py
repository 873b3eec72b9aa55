"""Cross-rank gathering for contrastive losses (negatives from every GPU, as SimCLR/MoCo do)."""

from __future__ import annotations

import torch
import torch.distributed as dist


def world_size() -> int:
    """Number of processes in the default group (1 when not distributed)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """This process's rank in the default group (0 when not distributed)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from all ranks along dim 0, keeping gradient flow to every rank's input.

    Uses torch's autograd-aware all-gather (``_functional_collectives.all_gather_single``, which torch 2.14
    recommends over the deprecated ``torch.distributed.nn.functional.all_gather``, used as a fallback). Its
    backward sums the gradients every rank computes for a chunk and hands the sum to the chunk's owner, so with
    DDP's gradient averaging the loss on R ranks of B samples has the gradients of the loss on one batch of R*B.
    Works with gloo (CPU) and NCCL; every rank must pass a tensor of the same shape.
    """
    if world_size() == 1:
        return x
    try:
        from torch.distributed._functional_collectives import all_gather_single
    except ImportError:  # pragma: no cover - older torch
        from torch.distributed.nn.functional import all_gather

        return torch.cat(all_gather(x), dim=0)
    return all_gather_single(x.contiguous(), 0, dist.group.WORLD)


@torch.no_grad()
def gather_no_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from all ranks along dim 0 without gradients (queues, momentum keys)."""
    if world_size() == 1:
        return x
    out = [torch.empty_like(x) for _ in range(world_size())]
    dist.all_gather(out, x.contiguous())
    return torch.cat(out, dim=0)
