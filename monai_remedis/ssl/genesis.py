"""Models Genesis: an encoder-decoder restores the original image from four distortions; the encoder transfers.

The encoder is the bundle's backbone (BiT ResNetV2 in 2D, MONAI ResNet in 3D); a U-Net decoder with skip
connections from every encoder stage (:class:`~monai_remedis.models.skip_decoder.SkipDecoder`) predicts the image
through a sigmoid, and the loss is the mean squared error to the original. Batches hold ``image`` (the target)
and ``view_0`` (the distorted input), built by :meth:`Genesis.data_transform` from the bundle's load transform
(:func:`monai_remedis.data.genesis.genesis_pipeline`), so ``--strategy genesis`` works from any bundle. The paper
trains with SGD (lr 1, momentum 0.9): ``--ssl_optimizer sgd --ssl_learning_rate 1.0`` (not tuned here).

Reference: Zhou et al., "Models Genesis", Medical Image Analysis 67 (2021) 101840.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F
from ignite.engine import Engine

from monai_remedis.data.genesis import genesis_pipeline
from monai_remedis.engines.restoration_preview import RestorationPreview
from monai_remedis.models.skip_decoder import SkipDecoder, encoder_features, feature_channels, input_channels
from monai_remedis.ssl.base import SSLStrategy, view_key

TARGET_KEY = "image"
"""Batch key of the restoration target (the original image)."""


class Genesis(SSLStrategy):
    """Models Genesis strategy.

    Args:
        backbone: encoder with stage features (timm ``forward_intermediates`` or MONAI ``ResNet``) and
            ``spatial_dims``.
        decoder_channels: widths of the decoder merges, shallow to deep (default: half the encoder's, 16 to 128).
        distortion: probabilities of the distortions (fields of
            :class:`~monai_remedis.data.genesis.GenesisDistortion`); read by :meth:`data_transform`.

    Example:
        >>> import torch
        >>> from monai_remedis.backbones import create_backbone
        >>> model = Genesis(create_backbone("bit_resnet18", in_channels=1))
        >>> x = torch.rand(2, 1, 32, 32)
        >>> model([x, x])["loss"].backward()
    """

    num_views: ClassVar[int] = 1
    needs_feature_maps = True

    def __init__(
        self,
        backbone: nn.Module,
        decoder_channels: Sequence[int] | None = None,
        distortion: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(backbone)
        self.spatial_dims = int(backbone.spatial_dims)
        channels = input_channels(backbone)
        skips = feature_channels(backbone, self.spatial_dims, channels)
        self.decoder = SkipDecoder(self.spatial_dims, skips, channels, decoder_channels)
        self.distortion = dict(distortion or {})

    @classmethod
    def data_transform(
        cls, load_transform: Callable, view_transform: Callable, strategy_kwargs: Mapping[str, Any]
    ) -> Callable:
        """``load_transform`` then the Genesis distortions: ``image`` = target, ``view_0`` = distorted input.

        The bundle's contrastive ``view_transform`` is not used: the four distortions are Genesis's views.
        """
        return genesis_pipeline(load_transform, strategy_kwargs.get("distortion"))

    def views(self, batch: Mapping[str, Any]) -> list[torch.Tensor]:
        """``[distorted input, target]`` from a batch with ``view_0`` and ``image``."""
        try:
            return [batch[view_key(0)], batch[TARGET_KEY]]
        except KeyError as exc:
            raise KeyError(
                f"Genesis needs '{view_key(0)}' (distorted input) and '{TARGET_KEY}' (target); batch has keys "
                f"{sorted(batch)}. Build the data with Genesis.data_transform (monai_remedis.data.genesis)."
            ) from exc

    def restore(self, x: torch.Tensor) -> torch.Tensor:
        """The network's restoration of ``x`` in ``[0, 1]``, same shape as ``x``."""
        return torch.sigmoid(self.decoder(encoder_features(self.backbone, x), x.shape[2:]))

    def forward(self, views: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
        """MSE between the restoration of the distorted input and the original (``views = [input, target]``)."""
        distorted, target = views
        restored = self.restore(distorted)
        loss = F.mse_loss(restored.float(), target.float())
        with torch.no_grad():
            identity = F.mse_loss(distorted.float(), target.float())
        return {"loss": loss, "distortion_mse": identity}

    def attach_handlers(self, engine: Engine, run_dir: Path) -> None:
        """Save a reconstruction preview per epoch in ``<run_dir>/previews``."""
        RestorationPreview(self.restore, Path(run_dir) / "previews", network=self).attach(engine)
