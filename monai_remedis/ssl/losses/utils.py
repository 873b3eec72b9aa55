"""Helpers shared by the loss modules."""

from __future__ import annotations

import torch


def full_precision(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float32 when it is half/bfloat16 (autocast outputs); float32/float64 inputs are kept as they are.

    Example:
        >>> import torch
        >>> full_precision(torch.ones(2, dtype=torch.bfloat16)).dtype, full_precision(torch.ones(2).double()).dtype
        (torch.float32, torch.float64)
    """
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
