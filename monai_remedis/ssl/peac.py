"""PEAC: global and local (grid-matched patch) embedding consistency with an EMA teacher.

Reference: Zhou et al., "Learning Anatomically Consistent Embedding for Chest Radiography" (PEAC), BMVC 2023. Images
taken with one protocol share anatomy, so two crops of one image on a fixed grid (:mod:`monai_remedis.data.grid_views`)
have cell-to-cell correspondences. A student network is trained so that (i) its global embedding of each crop matches
the EMA teacher's embedding of the other crop and (ii) its embedding of every overlapping cell matches the teacher's
embedding of the same cell seen in the other crop. The teacher's momentum rises from 0.999 to 1 on a cosine schedule.

Differences from the paper, stated:
    * The paper avoids collapse with its extra PatchOrder/restoration (POPAR) terms; without them, a BYOL predictor on
      the student (``predictor=True``, the default) keeps student and teacher from agreeing on a constant.
    * The consistency is BYOL's normalised MSE (``2 - 2 cos``) for both terms (the paper: MSE of L2-normalised global
      embeddings, plain MSE of local ones).
    * Of the POPAR terms, ``patch_order`` is implemented: with probability ``order_prob`` the cells of the student's
      crop 0 are shuffled and a linear head predicts each cell's original position from its embedding; the shuffled
      student cells are put back in order before the local term (the paper drops shuffled samples from it).
      ``restoration`` (Genesis-style pixel restoration) is not implemented: setting it raises ``NotImplementedError``.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from monai.transforms import Compose

from monai_remedis.backbones.dense import dense_features, to_cell_grid
from monai_remedis.data.grid_views import MASK_KEY, GridMatchedViewsd, GridSpec, intensity_only, permute_cells
from monai_remedis.ssl.base import SSLStrategy, view_key
from monai_remedis.ssl.collapse import collapse_logs
from monai_remedis.ssl.heads import projection_head
from monai_remedis.ssl.losses.byol import BYOLLoss
from monai_remedis.ssl.momentum import cosine_momentum, ema_update, frozen_copy

logger = logging.getLogger("monai_remedis")

GRID_KWARGS = ("image_size", "cell_size", "crop_cells", "max_offset", "jitter")
"""Strategy kwargs that shape the grid-matched views (:class:`~monai_remedis.data.grid_views.GridSpec`)."""


def matched_consistency(
    student: torch.Tensor, teacher: torch.Tensor, mask_student: torch.Tensor, mask_teacher: torch.Tensor
) -> torch.Tensor:
    """Mean ``2 - 2 cos`` between the student's and the teacher's embeddings of the same cells (overlap only).

    Args:
        student: ``(B, N, D)`` cell embeddings of one crop.
        teacher: ``(B, N, D)`` cell embeddings of the other crop (no gradient flows into it).
        mask_student: ``(B, N)`` bool, the student crop's overlapping cells.
        mask_teacher: ``(B, N)`` bool, the teacher crop's overlapping cells; row ``b`` has as many True entries as
            ``mask_student[b]`` and, in raster order, the ``k``-th ones are the same cell.

    Raises:
        ValueError: when the masks pair different numbers of cells.

    Example:
        >>> import torch
        >>> s = torch.randn(1, 4, 8)
        >>> mask = torch.tensor([[True, True, False, False]])
        >>> round(matched_consistency(s, s, mask, mask).item(), 5)
        0.0
    """
    if not torch.equal(mask_student.sum(dim=1), mask_teacher.sum(dim=1)):
        raise ValueError("the overlap masks of the two crops pair different numbers of cells.")
    if not mask_student.any():
        return student.sum() * 0.0
    return BYOLLoss()(student[mask_student], teacher[mask_teacher])


class PEAC(SSLStrategy):
    """PEAC strategy: global + matched-patch consistency between a student and its EMA teacher.

    The batch holds two grid-matched crops and their overlap masks; :meth:`data_transform` builds them from the
    bundle's load transform and the intensity part of its view augmentation, so ``--strategy peac`` works from any 2D
    bundle. Patch embeddings are the backbone's dense features resampled onto the crop's cells
    (:func:`~monai_remedis.backbones.dense.to_cell_grid`): exact for a ViT whose patch is the cell (``vit_*_p4`` with
    the default 4 px cells), approximate for a ResNet whose stride (32) exceeds the cell.

    Args:
        backbone: a timm-style encoder with ``feature_dim`` and ``forward_features`` (BiT ResNetV2 or a ViT).
        projection_dim: output size of the global and local projectors.
        hidden_dim: hidden width of projectors and predictors.
        predictor: BYOL predictor on the student's projections (see the module notes).
        base_momentum: teacher EMA momentum at the start (PEAC: 0.999).
        final_momentum: teacher EMA momentum at the end of training (1.0).
        global_weight: weight of the global consistency term.
        local_weight: weight of the matched-patch consistency term.
        image_size: grid image side in px (:class:`~monai_remedis.data.grid_views.GridSpec`).
        cell_size: cell side in px.
        crop_cells: crop side in cells.
        max_offset: largest crop offset in cells (None: all that fit).
        jitter: random sub-cell shift of the grid.
        patch_order: add the POPAR patch-order term (meaningful when one feature cell is one grid cell: a ViT).
        order_prob: probability that a sample's crop 0 is shuffled for the student (POPAR: 0.5).
        order_weight: weight of the patch-order cross-entropy.
        restoration: the POPAR/Genesis restoration term (not implemented).

    Example:
        >>> import torch
        >>> from monai_remedis.backbones import create_backbone
        >>> model = PEAC(create_backbone("vit_mini_p4", in_channels=1), hidden_dim=64, projection_dim=32)
        >>> x0, x1 = torch.randn(4, 1, 28, 28), torch.randn(4, 1, 28, 28)
        >>> mask = torch.ones(4, 49, dtype=torch.bool)
        >>> out = model([x0, x1, mask, mask])
        >>> out["loss"].backward()
        >>> model.after_step(progress=0.5)
    """

    num_views = 2
    needs_feature_maps = True

    def __init__(
        self,
        backbone: nn.Module,
        projection_dim: int = 256,
        hidden_dim: int = 1024,
        predictor: bool = True,
        base_momentum: float = 0.999,
        final_momentum: float = 1.0,
        global_weight: float = 1.0,
        local_weight: float = 1.0,
        image_size: int = 40,
        cell_size: int = 4,
        crop_cells: int = 7,
        max_offset: int | None = None,
        jitter: bool = True,
        patch_order: bool = False,
        order_prob: float = 0.5,
        order_weight: float = 1.0,
        restoration: bool = False,
    ) -> None:
        super().__init__(backbone)
        if restoration:
            raise NotImplementedError(
                "PEAC's restoration (POPAR/Genesis) term is not implemented; leave restoration false."
            )
        if not 0.0 <= base_momentum <= final_momentum <= 1.0:
            raise ValueError(f"need 0 <= base_momentum <= final_momentum <= 1, got {base_momentum}, {final_momentum}.")
        self.grid = GridSpec(image_size, cell_size, crop_cells, max_offset, jitter)
        patch = getattr(backbone, "patch_size", None)
        if patch and self.grid.crop_size % int(patch):
            raise ValueError(
                f"crops of {self.grid.crop_size} px are not a whole number of the backbone's {patch} px patches; "
                f"use cell_size {patch} (or a multiple of it)."
            )
        feature_dim = int(backbone.feature_dim)
        self.projector = projection_head(feature_dim, hidden_dim, projection_dim, num_layers=2, last_bn=False)
        self.local_projector = projection_head(feature_dim, hidden_dim, projection_dim, num_layers=2, last_bn=False)
        self.predictor: nn.Module = nn.Identity()
        self.local_predictor: nn.Module = nn.Identity()
        if predictor:
            self.predictor = projection_head(projection_dim, hidden_dim, projection_dim, num_layers=2, last_bn=False)
            self.local_predictor = projection_head(
                projection_dim, hidden_dim, projection_dim, num_layers=2, last_bn=False
            )
        self.teacher_backbone = frozen_copy(backbone)
        self.teacher_projector = frozen_copy(self.projector)
        self.teacher_local_projector = frozen_copy(self.local_projector)
        self.criterion = BYOLLoss()
        self.base_momentum = base_momentum
        self.final_momentum = final_momentum
        self.momentum = base_momentum
        self.global_weight = global_weight
        self.local_weight = local_weight
        self.order_head = nn.Linear(feature_dim, crop_cells**2) if patch_order else None
        self.order_prob = order_prob
        self.order_weight = order_weight

    @classmethod
    def data_transform(
        cls, load_transform: Callable, view_transform: Callable, strategy_kwargs: Mapping[str, Any]
    ) -> Callable:
        """The bundle's load transform, then two grid-matched crops, each augmented by the view policy's intensity
        transforms (its geometric ones are dropped: :func:`~monai_remedis.data.grid_views.intensity_only`)."""
        defaults = {k: v.default for k, v in inspect.signature(cls.__init__).parameters.items() if k in GRID_KWARGS}
        spec = GridSpec(**{k: strategy_kwargs.get(k, defaults[k]) for k in GRID_KWARGS})
        grid_views = GridMatchedViewsd("image", spec, view_transform=intensity_only(view_transform))
        return Compose([load_transform, grid_views])

    def views(self, batch: Mapping[str, Any]) -> list[torch.Tensor]:
        """The two crops followed by their overlap masks (so the engine moves all four to the device)."""
        keys = [view_key(0), view_key(1), MASK_KEY.format(0), MASK_KEY.format(1)]
        missing = [k for k in keys if k not in batch]
        if missing:
            raise KeyError(
                f"PEAC needs {keys} in the batch; missing {missing} (batch keys {sorted(batch)}). Build the data with "
                "PEAC.data_transform (the SSL stage does when the bundle passes load_transform and view_transform)."
            )
        return [batch[k] for k in keys]

    def _embed(self, x: torch.Tensor, teacher: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Global ``(B, P)`` and cell ``(B, N, P)`` projections and the cell features ``(B, N, D)``, ``N`` the
        crop's cells, of the student or the teacher."""
        backbone, projector, local_projector = (
            (self.teacher_backbone, self.teacher_projector, self.teacher_local_projector)
            if teacher
            else (self.backbone, self.projector, self.local_projector)
        )
        pooled, dense = dense_features(backbone, x)
        cells = to_cell_grid(dense, self.grid.crop_cells).flatten(2).transpose(1, 2)  # (B, N, D)
        z_global = projector(pooled)
        z_local = local_projector(cells.flatten(0, 1)).view(cells.shape[0], cells.shape[1], -1)
        if not teacher:
            z_global = self.predictor(z_global)
            z_local = self.local_predictor(z_local.flatten(0, 1)).view(z_local.shape)
        return z_global, z_local, cells

    def _draw_order(self, batch: int, device: torch.device) -> torch.Tensor:
        """``(B, N)`` cell permutations: random for a fraction ``order_prob`` of the samples, identity otherwise."""
        cells = self.grid.crop_cells**2
        perm = torch.rand(batch, cells, device=device).argsort(dim=1)
        keep = torch.rand(batch, device=device) >= self.order_prob
        perm[keep] = torch.arange(cells, device=device)
        return perm

    def forward(self, views: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
        """Loss and logs from ``[crop_0, crop_1, mask_0, mask_1]`` (without masks: the crops coincide)."""
        x0, x1 = views[0], views[1]
        batch = x0.shape[0]
        if len(views) >= 4:
            mask0, mask1 = views[2].bool(), views[3].bool()
        else:
            mask0 = mask1 = torch.ones(batch, self.grid.crop_cells**2, dtype=torch.bool, device=x0.device)
        x = torch.cat([x0, x1], dim=0)
        perm = self._draw_order(batch, x0.device) if self.order_head is not None else None
        student_x = x if perm is None else torch.cat([permute_cells(x0, perm, self.grid.cell_size), x1], dim=0)
        p_global, p_local, cells = self._embed(student_x, teacher=False)
        logs: dict[str, torch.Tensor] = {}
        order_loss = x0.new_zeros(())
        if perm is not None:  # the order head names each shuffled cell's origin; then the cells go back in order
            logits = self.order_head(cells[:batch])
            order_loss = F.cross_entropy(logits.flatten(0, 1).float(), perm.flatten())
            inverse = perm.argsort(dim=1)[..., None].expand(-1, -1, p_local.shape[-1])
            p_local = torch.cat([p_local[:batch].gather(1, inverse), p_local[batch:]], dim=0)
            logs["loss_order"] = order_loss.detach()
        with torch.no_grad():
            t_global, t_local, _ = self._embed(x, teacher=True)
        global_loss = self.criterion(p_global[:batch], t_global[batch:]) + self.criterion(
            p_global[batch:], t_global[:batch]
        )
        local_loss = matched_consistency(p_local[:batch], t_local[batch:], mask0, mask1) + matched_consistency(
            p_local[batch:], t_local[:batch], mask1, mask0
        )
        loss = self.global_weight * global_loss + self.local_weight * local_loss + self.order_weight * order_loss
        return {
            **logs,
            "loss": loss,
            "loss_global": global_loss.detach(),
            "loss_local": local_loss.detach(),
            "matched_cells": mask0.sum(dim=1).float().mean(),
            "target_momentum": torch.tensor(self.momentum, device=loss.device),
            **collapse_logs(p_global[:batch]),
        }

    def attach_handlers(self, engine: Any, run_dir: Path) -> None:
        """Write the correspondence heat map of the first pair when training starts (:meth:`write_preview`)."""
        from ignite.engine import Events

        engine.add_event_handler(Events.ITERATION_STARTED(once=1), lambda e: self.write_preview(e.state.batch, run_dir))

    @torch.no_grad()
    def write_preview(self, batch: Mapping[str, Any], run_dir: Path) -> Path:
        """``<run_dir>/peac_correspondence.png``: the first pair's crops, matched cells and the teacher's similarity of
        crop 0's middle matched cell to every cell of crop 1 (:mod:`monai_remedis.ssl.peac_preview`)."""
        from monai_remedis.ssl.peac_preview import write_correspondence_png

        view0, view1, mask0, mask1 = (v[:1] for v in self.views(batch))
        device = next(self.teacher_backbone.parameters()).device
        cells = []
        for view in (view0, view1):
            dense = dense_features(self.teacher_backbone, view.to(device).float())[1]
            cells.append(F.normalize(to_cell_grid(dense, self.grid.crop_cells).flatten(2)[0], dim=0))  # (D, N)
        mask0, mask1 = mask0[0].bool(), mask1[0].bool()
        similarity = None
        if mask0.any():
            query_cell = int(torch.nonzero(mask0)[int(mask0.sum()) // 2])
            similarity = cells[0][:, query_cell] @ cells[1]
        path = write_correspondence_png(
            Path(run_dir) / "peac_correspondence.png", view0[0], view1[0], mask0, mask1, self.grid.cell_size, similarity
        )
        logger.info("PEAC: wrote the correspondence of the first pair to %s", path)
        return path

    @torch.no_grad()
    def after_step(self, progress: float) -> None:
        """EMA update of the teacher (backbone and both projectors) with the cosine-scheduled momentum."""
        self.momentum = cosine_momentum(progress, self.base_momentum, self.final_momentum)
        ema_update(self.teacher_backbone, self.backbone, self.momentum)
        ema_update(self.teacher_projector, self.projector, self.momentum)
        ema_update(self.teacher_local_projector, self.local_projector, self.momentum)
