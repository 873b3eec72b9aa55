"""Ark's omni-model: one backbone and projector shared by many datasets, one linear head per dataset.

Reference:
    Ma et al., "Foundation Ark: Accruing and Reusing Knowledge for Superior and Robust Performance", MICCAI 2023.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn as nn


class OmniModel(nn.Module):
    """``backbone -> projector -> heads[name]``: the student (or teacher) of Ark.

    Each labelled dataset owns a linear "omni-head" with its own classes; a forward pass runs only the head it
    names, so the heads of other datasets take no part in the loss and receive no gradient.

    Args:
        backbone: module mapping images to ``(B, backbone.feature_dim)``.
        heads: ``{dataset name: number of classes}``, in a fixed order.
        projector_dim: width of the linear projector after the backbone; ``None`` uses no projector (the heads
            then sit on the backbone features, as a plain classifier does).

    Example:
        >>> import torch, torch.nn as nn
        >>> class Tiny(nn.Module):
        ...     feature_dim = 4
        ...     def forward(self, x): return x.flatten(1)[:, :4]
        >>> model = OmniModel(Tiny(), {"a": 2, "b": 3}, projector_dim=8)
        >>> features, logits = model(torch.zeros(5, 1, 2, 2), "b")
        >>> tuple(features.shape), tuple(logits.shape)
        ((5, 8), (5, 3))
    """

    def __init__(self, backbone: nn.Module, heads: Mapping[str, int], projector_dim: int | None = 512) -> None:
        super().__init__()
        if not heads:
            raise ValueError("OmniModel needs at least one head ({dataset name: number of classes}).")
        bad = {name: n for name, n in heads.items() if int(n) < 1}
        if bad:
            raise ValueError(f"every head needs at least one class, got {bad}.")
        self.backbone = backbone
        feature_dim = int(backbone.feature_dim)
        self.projector: nn.Module = nn.Linear(feature_dim, projector_dim) if projector_dim else nn.Identity()
        self.embedding_dim = int(projector_dim or feature_dim)
        self.heads = nn.ModuleDict({name: nn.Linear(self.embedding_dim, int(n)) for name, n in heads.items()})

    @property
    def head_names(self) -> list[str]:
        """Dataset names in head order."""
        return list(self.heads)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Projected features ``(B, embedding_dim)``: what the consistency loss compares."""
        return self.projector(self.backbone(x))

    def forward(self, x: torch.Tensor, head: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(features, logits of head)`` for a batch of one dataset.

        Raises:
            KeyError: naming the known heads when ``head`` is unknown.
        """
        if head not in self.heads:
            raise KeyError(f"no omni-head '{head}'. Known heads: {', '.join(self.heads)}.")
        features = self.features(x)
        return features, self.heads[head](features)

    def head_network(self, head: str) -> nn.Module:
        """``backbone -> projector -> heads[head]`` as one module mapping images to logits (for evaluation)."""
        return _HeadView(self, head)


class _HeadView(nn.Module):
    """The omni-model seen through one head: ``x -> logits``."""

    def __init__(self, model: OmniModel, head: str) -> None:
        super().__init__()
        self.model = model
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x, self.head)[1]
