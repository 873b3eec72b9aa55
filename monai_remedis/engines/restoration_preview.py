"""Per-epoch PNG of a restorative SSL run: original, distorted input and the network's restoration."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from ignite.engine import Engine, Events

__all__ = ["RestorationPreview", "middle_slice"]


def middle_slice(image: torch.Tensor) -> torch.Tensor:
    """The 2D picture of a ``(C, *spatial)`` image: first channel, middle slice of the last axis when 3D."""
    picture = image[0].detach().float().cpu()
    return picture[..., picture.shape[-1] // 2] if picture.ndim == 3 else picture


class RestorationPreview:
    """Save ``<output_dir>/epoch_NNN.png`` after each epoch: input / distorted / restored.

    The first sample of the first batch is kept (its target and distorted input) and restored with the current
    network at the end of every epoch, so the pictures of successive epochs are comparable.

    Args:
        restore: maps a distorted batch ``(1, C, *spatial)`` to its restoration (called under ``no_grad``).
        output_dir: folder of the PNG files.
        target_key: batch key of the original image.
        input_key: batch key of the distorted input.
        network: module switched to eval mode while restoring (and back).
    """

    def __init__(
        self,
        restore: Callable[[torch.Tensor], torch.Tensor],
        output_dir: str | Path,
        network: torch.nn.Module,
        target_key: str = "image",
        input_key: str = "view_0",
    ) -> None:
        self.restore = restore
        self.output_dir = Path(output_dir)
        self.network = network
        self.target_key = target_key
        self.input_key = input_key
        self.sample: tuple[torch.Tensor, torch.Tensor] | None = None

    def attach(self, engine: Engine) -> None:
        """Keep a sample at the first iteration, save a PNG at each epoch end."""
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._keep_sample)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self.save)

    def _keep_sample(self, engine: Engine) -> None:
        if self.sample is None:
            batch = engine.state.batch
            self.sample = (batch[self.target_key][:1].detach().clone(), batch[self.input_key][:1].detach().clone())

    def save(self, engine: Engine) -> Path | None:
        """Restore the kept sample and write ``epoch_NNN.png``; returns its path."""
        if self.sample is None:
            return None
        target, distorted = self.sample
        was_training = self.network.training
        self.network.eval()
        device = next(self.network.parameters()).device
        try:
            with torch.no_grad():
                restored = self.restore(distorted.to(device))
        finally:
            self.network.train(was_training)
        return self._plot(target[0], distorted[0], restored[0], engine.state.epoch)

    def _plot(self, target: torch.Tensor, distorted: torch.Tensor, restored: torch.Tensor, epoch: int) -> Path:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        self.output_dir.mkdir(parents=True, exist_ok=True)
        path = self.output_dir / f"epoch_{epoch:03d}.png"
        fig, axes = plt.subplots(1, 3, figsize=(7.5, 2.8), dpi=100)
        for ax, picture, title in zip(
            axes, (target, distorted, restored), ("input", "distorted", "restored"), strict=True
        ):
            origin = "lower" if picture.ndim == 4 else "upper"  # volumes as radiological views, 2D as stored
            ax.imshow(middle_slice(picture).T.numpy(), cmap="gray", vmin=0.0, vmax=1.0, origin=origin)
            ax.set_title(title, fontsize=9)
            ax.axis("off")
        fig.suptitle(f"epoch {epoch}", fontsize=9)
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)
        return path
