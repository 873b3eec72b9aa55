"""MoCo v2: momentum key encoder, a queue of negatives, InfoNCE at temperature 0.2.

References:
    He et al., "Momentum Contrast for Unsupervised Visual Representation Learning", CVPR 2020.
    Chen et al., "Improved Baselines with Momentum Contrastive Learning" (MoCo v2), arXiv:2003.04297, 2020.
    REMEDIS (Azizi et al., Nat. Biomed. Eng. 2023) names MoCo among the contrastive methods it builds on.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from monai_remedis.ssl.base import SSLStrategy
from monai_remedis.ssl.collapse import collapse_logs
from monai_remedis.ssl.distributed import gather_no_grad
from monai_remedis.ssl.heads import projection_head
from monai_remedis.ssl.losses.moco import MoCoLoss
from monai_remedis.ssl.losses.utils import full_precision
from monai_remedis.ssl.momentum import ema_update, frozen_copy


class MoCoV2(SSLStrategy):
    """MoCo v2 strategy.

    ``view_0`` is encoded by the online network (backbone + MLP head) into queries, ``view_1`` by the momentum
    network into keys. Each query is contrasted with its key against ``queue_size`` keys of earlier batches.
    After every optimiser step (:meth:`after_step`) the momentum network moves towards the online one and the
    batch's keys (gathered from every rank under DDP, in rank order) replace the oldest entries of the queue.

    BiT backbones use GroupNorm and the MoCo v2 head has no BatchNorm, so no "shuffle BN" is needed; with a
    BatchNorm backbone the key encoder could leak batch statistics (MoCo's shuffle-BN is not implemented).

    Short runs from a random or weak init collapse easily, and this comes from MoCo's design, not from a bug.
    Measured on PneumoniaMNIST with ``bit_resnet18``:

    * the pooled GroupNorm features of a random BiT share one dominant direction (mean pairwise cosine about 0.8;
      a cheap stage-1 backbone, about 0.98), and the MoCo v2 head has no BatchNorm to remove it, so queries and
      keys start in a narrow cone (normalised spread about 0.4, where healthy is about 1);
    * only the queries get gradients. The negatives are keys from a momentum encoder that, at momentum 0.99-0.999,
      stays close to the initial network for hundreds of steps. Every query is pushed away from the same narrow set
      of negatives (at first the random initial queue, which gives a pure alignment gradient), so all queries move
      the same way: with AdamW at 1e-3 the online encoder collapses within 3 steps (feature spread 0.5 -> 0.03).
      SimCLR avoids this because its negatives are online embeddings that the gradient spreads apart, and its
      BatchNorm head removes the common direction;
    * once collapsed, the loss sits near ``log(1 + K)``. It can still drop a little below that without any
      learning, because keys from the drifting momentum encoder differ from the older ones in the queue. So a
      loss below chance does not prove that MoCo learned: check ``embedding_std`` / ``collapse_score`` as well.

    What works on a CPU budget: learning rate 3e-4, momentum 0.99, a queue smaller than the number of images minus
    one batch, and about 100 steps. Then the loss falls from 4.70 to 4.03-4.17 (chance 4.86 for K = 128) while
    ``embedding_std`` rises (``tests/ssl/test_ssl_bundle.py::test_moco_loss_falls_once_its_queue_is_real``).
    Keep ``queue_size`` below the number of training images. Otherwise the queue holds stale keys of each query's
    own image, which act as false negatives, and the SSL stage warns about it. The default of 65536 is for
    ImageNet-sized data, while PneumoniaMNIST has 4708 training images.

    Args:
        backbone: encoder with ``feature_dim``.
        temperature: InfoNCE temperature (MoCo v2: 0.2).
        queue_size: number of queued negative keys (MoCo: 65536).
        momentum: EMA momentum of the key encoder (MoCo: 0.999).
        projection_dim: output dimension of the MLP head (128).
        hidden_dim: hidden width of the head (default: the backbone's feature dimension, as MoCo v2's 2048-2048-128).
        gather_distributed: enqueue the keys of every rank under DDP (same queue everywhere, as MoCo).

    Example:
        >>> import torch
        >>> from monai_remedis.backbones import create_backbone
        >>> model = MoCoV2(create_backbone("bit_resnet18", in_channels=1), queue_size=64)
        >>> out = model([torch.randn(4, 1, 32, 32), torch.randn(4, 1, 32, 32)])
        >>> out["loss"].backward()
        >>> model.after_step(progress=0.1)  # after optimizer.step(): momentum update and enqueue
    """

    num_views = 2

    def __init__(
        self,
        backbone: nn.Module,
        temperature: float = 0.2,
        queue_size: int = 65536,
        momentum: float = 0.999,
        projection_dim: int = 128,
        hidden_dim: int | None = None,
        gather_distributed: bool = True,
    ) -> None:
        super().__init__(backbone)
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}.")
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {momentum}.")
        feature_dim = int(backbone.feature_dim)
        self.projector = projection_head(
            feature_dim, hidden_dim or feature_dim, projection_dim, num_layers=2, last_bn=False, batch_norm=False
        )
        self.momentum_backbone = frozen_copy(backbone)
        self.momentum_projector = frozen_copy(self.projector)
        self.register_buffer("queue", F.normalize(torch.randn(queue_size, projection_dim), dim=1))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))
        self.criterion = MoCoLoss(temperature=temperature)
        self.momentum = momentum
        self.gather_distributed = gather_distributed
        self._pending_keys: torch.Tensor | None = None

    def forward(self, views: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
        """InfoNCE of queries (``view_0``) against keys (``view_1``) and the queue; keys wait for :meth:`after_step`."""
        x_q, x_k = views
        q = self.projector(self.backbone(x_q))
        with torch.no_grad():
            k = F.normalize(full_precision(self.momentum_projector(self.momentum_backbone(x_k))), dim=1)
        loss = self.criterion(q, k, self.queue)
        if self.training:
            self._pending_keys = k
        return {"loss": loss, **collapse_logs(q)}

    @property
    def queue_size(self) -> int:
        """Number of queued negative keys (the SSL stage warns when it exceeds the number of training images)."""
        return int(self.queue.shape[0])

    @torch.no_grad()
    def after_step(self, progress: float) -> None:
        """Momentum update of the key encoder, then enqueue the last batch's keys (from every rank)."""
        ema_update(self.momentum_backbone, self.backbone, self.momentum)
        ema_update(self.momentum_projector, self.projector, self.momentum)
        if self._pending_keys is not None:
            keys = gather_no_grad(self._pending_keys) if self.gather_distributed else self._pending_keys
            self.enqueue(keys)
            self._pending_keys = None

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Write ``keys`` over the oldest queue entries (a ring buffer; batch sizes need not divide the queue)."""
        size = self.queue.shape[0]
        keys = keys[-size:].to(self.queue.dtype)
        idx = (self.queue_ptr + torch.arange(keys.shape[0], device=self.queue.device)) % size
        self.queue[idx] = keys
        self.queue_ptr.copy_((self.queue_ptr + keys.shape[0]) % size)
