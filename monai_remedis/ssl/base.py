"""The contract every self-supervised strategy fulfils."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn as nn


def view_key(index: int) -> str:
    """Batch key of the ``index``-th augmented view (``view_0``, ``view_1``, ...)."""
    return f"view_{index}"


class SSLStrategy(nn.Module):
    """Base class of self-supervised strategies.

    A strategy wraps a backbone (the encoder that later stages transfer), declares how many augmented views
    it needs per image, and turns a batch of views into a loss. The SSL engine calls :meth:`views` on each batch,
    the module itself (:meth:`forward`, through the DDP wrapper) and :meth:`after_step`; :meth:`training_step` is
    the same loss in one call, for tests and notebooks. Everything method-specific lives in the subclass.

    Subclasses set :attr:`num_views` and implement :meth:`forward`.

    Args:
        backbone: ``nn.Module`` mapping ``(B, C, *spatial)`` to ``(B, feature_dim)``.
    """

    num_views: ClassVar[int] = 2
    """How many augmented views of each image the data pipeline must provide."""

    needs_feature_maps: ClassVar[bool] = False
    """True when the strategy reads the backbone's stage or patch feature maps (an encoder-decoder, patch matching),
    not only its pooled features: it then needs a timm backbone (``bit_*``, ``vit_*``) or a MONAI ResNet."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    @property
    def encoder(self) -> nn.Module:
        """The network whose weights are transferred to fine-tuning."""
        return self.backbone

    @classmethod
    def data_transform(
        cls, load_transform: Callable, view_transform: Callable, strategy_kwargs: Mapping[str, Any]
    ) -> Callable | None:
        """The SSL data pipeline this strategy needs, or None for the default one.

        The default (None) is the bundle's ``ssl_transform``: ``load_transform`` then ``num_views`` independent
        ``view_transform`` augmentations (:class:`monai_remedis.data.MultiViewd`). A strategy whose batches hold
        something else (a restoration target, grid-matched crops with their patch correspondence) overrides this
        and returns a dict transform built from the bundle's two transforms, so no bundle needs a per-strategy
        overlay. It runs on raw datalist items; its deterministic head is decoded once like any other pipeline.

        Args:
            load_transform: the bundle's loading and intensity normalisation (``load_transform``).
            view_transform: the bundle's augmentation of one view (``ssl_view_transform``).
            strategy_kwargs: the options the strategy is built with (``strategy_kwargs``).
        """
        return None

    def views(self, batch: Mapping[str, Any]) -> list[torch.Tensor]:
        """Pick the views out of a collated batch (keys ``view_0`` ... ``view_{num_views-1}``)."""
        try:
            return [batch[view_key(i)] for i in range(self.num_views)]
        except KeyError as exc:
            raise KeyError(
                f"{type(self).__name__} needs {self.num_views} views; batch has keys {sorted(batch)}. "
                "Is the bundle's SSL transform producing view_0..view_N (monai_remedis.data.MultiViewd)?"
            ) from exc

    def forward(self, views: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
        """Compute ``{"loss": scalar, ...logs}`` from a list of view tensors."""
        raise NotImplementedError

    def training_step(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """Loss and logs for one batch; the default picks the views and calls :meth:`forward`."""
        return self(self.views(batch))

    def attach_handlers(self, engine: Any, run_dir: Path) -> None:
        """Hook: attach strategy-specific Ignite handlers (e.g. previews) to the SSL engine; rank 0 only."""

    @torch.no_grad()
    def after_step(self, progress: float) -> None:
        """Hook after each optimiser step (momentum/EMA updates); ``progress`` runs from 0 to 1 over training."""

    def transferable_state_dict(self) -> dict[str, torch.Tensor]:
        """State dict of :attr:`encoder`, the artefact the SSL stage hands to fine-tuning."""
        return self.encoder.state_dict()
