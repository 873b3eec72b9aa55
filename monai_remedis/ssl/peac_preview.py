"""A picture of one PEAC training pair: the two grid-matched crops, their matched cells and a similarity heat map.

Written once at the start of a run (``<run_dir>/peac_correspondence.png``) so a user can check that the crops share a
grid and that the cells paired by the loss show the same anatomy.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402


def _display(image: torch.Tensor) -> np.ndarray:
    """``(C, H, W)`` -> an ``(H, W)`` or ``(H, W, 3)`` array scaled to [0, 1] for ``imshow``."""
    array = image.detach().float().cpu().numpy()
    array = (array - array.min()) / max(float(array.max() - array.min()), 1e-8)
    return array[0] if array.shape[0] == 1 else np.moveaxis(array[:3], 0, -1)


def _match_index_map(mask: torch.Tensor, cells: int) -> np.ndarray:
    """``(cells, cells)`` map holding each overlapping cell's match index ``k`` (NaN elsewhere)."""
    index = np.full(cells * cells, np.nan)
    index[mask.cpu().numpy().astype(bool)] = np.arange(int(mask.sum()))
    return index.reshape(cells, cells)


def correspondence_figure(
    view0: torch.Tensor,
    view1: torch.Tensor,
    mask0: torch.Tensor,
    mask1: torch.Tensor,
    cell_size: int,
    similarity: torch.Tensor | None = None,
    query: int | None = None,
) -> plt.Figure:
    """Figure: both crops with their matched cells coloured by match index (same colour = same cell), and optionally
    the similarity of crop 0's ``query``-th matched cell to every cell of crop 1 (the true match boxed).

    Args:
        view0: ``(C, H, W)`` crop 0.
        view1: ``(C, H, W)`` crop 1.
        mask0: ``(N,)`` bool overlap mask of crop 0 (raster order, ``N = cells**2``).
        mask1: ``(N,)`` bool overlap mask of crop 1.
        cell_size: cell side in pixels.
        similarity: ``(N,)`` similarity of the query cell to each cell of crop 1.
        query: the match index of the query cell (default: the middle one).
    """
    cells = int(round(mask0.numel() ** 0.5))
    extent = (0, cells * cell_size, cells * cell_size, 0)
    panels = 3 if similarity is not None else 2
    fig, axes = plt.subplots(1, panels, figsize=(4 * panels, 4.2))
    matched = int(mask0.sum())
    query = matched // 2 if query is None else query
    for ax, view, mask, name in ((axes[0], view0, mask0, "crop 0"), (axes[1], view1, mask1, "crop 1")):
        ax.imshow(_display(view), cmap="gray", extent=extent)
        ax.imshow(_match_index_map(mask, cells), cmap="turbo", alpha=0.35, extent=extent, vmin=0, vmax=max(1, matched))
        if matched:
            row, col = divmod(int(torch.nonzero(mask.cpu())[query]), cells)
            ax.add_patch(
                Rectangle((col * cell_size, row * cell_size), cell_size, cell_size, fill=False, ec="red", lw=2)
            )
        ax.set_title(f"{name}: {matched} of {mask.numel()} cells matched")
        ax.axis("off")
    if similarity is not None:
        heat = axes[2].imshow(similarity.detach().float().cpu().reshape(cells, cells).numpy(), cmap="magma")
        if matched:
            row, col = divmod(int(torch.nonzero(mask1.cpu())[query]), cells)
            axes[2].add_patch(Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, ec="cyan", lw=2))
        axes[2].set_title("cosine sim. of crop 0's red cell to crop 1\n(teacher features; cyan = true match)")
        axes[2].axis("off")
        fig.colorbar(heat, ax=axes[2], fraction=0.046)
    fig.tight_layout()
    return fig


def write_correspondence_png(path: str | Path, *args, **kwargs) -> Path:
    """Save :func:`correspondence_figure` (same arguments) to ``path``; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = correspondence_figure(*args, **kwargs)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
