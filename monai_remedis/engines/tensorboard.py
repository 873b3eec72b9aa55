"""TensorBoard event files of a stage run (``<run_dir>/tensorboard``) through MONAI's ``TensorBoardStatsHandler``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ignite.engine import Engine, Events

logger = logging.getLogger("monai_remedis")
TENSORBOARD_DIR = "tensorboard"


def tensorboard_handler(run_dir: Path, enabled: bool = True) -> Any | None:
    """MONAI's ``TensorBoardStatsHandler`` writing ``run_dir/tensorboard`` (loss per iteration, metrics per epoch).

    Uses ``torch.utils.tensorboard`` when the ``tensorboard`` package is installed, else ``tensorboardX`` (a
    dependency: small, pure Python). Returns None (with a log line) when neither imports or ``enabled`` is false.
    """
    if not enabled:
        return None
    writer_cls = _summary_writer_class()
    if writer_cls is None:
        logger.info("TensorBoard logging off: install tensorboardX (or tensorboard) for %s", run_dir / TENSORBOARD_DIR)
        return None
    return _ClosingTensorBoard(writer_cls(log_dir=str(run_dir / TENSORBOARD_DIR)))


def _summary_writer_class() -> Any | None:
    try:
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter
    except ImportError:
        pass
    try:
        from tensorboardX import SummaryWriter

        return SummaryWriter
    except ImportError:
        return None


class _ClosingTensorBoard:
    """A ``TensorBoardStatsHandler`` on a writer this stage owns: flushed every epoch, closed when training ends."""

    def __init__(self, writer: Any) -> None:
        from monai.handlers import TensorBoardStatsHandler

        from monai_remedis.engines.handlers import scalar_output

        self.writer = writer
        self.handler = TensorBoardStatsHandler(summary_writer=writer, output_transform=scalar_output, tag_name="loss")

    def attach(self, engine: Engine) -> None:
        self.handler.attach(engine)
        engine.add_event_handler(Events.EPOCH_COMPLETED, lambda _: self.writer.flush())
        engine.add_event_handler(Events.COMPLETED, lambda _: self.writer.close())
