"""A one-run fine-tune sweep on real PneumoniaMNIST, run as a process the interruption test kills.

Usage: ``python sweep_worker.py OUT_DIR PNEUMONIA_NPZ EPOCHS``.
"""

from __future__ import annotations

import sys

from monai.transforms import Compose, EnsureTyped, ScaleIntensityRanged

from monai_remedis.data import EnsureImaged, medmnist_datalist
from monai_remedis.stages import (
    EvaluateStage,
    ModelSpec,
    OptimConfig,
    ReportConfig,
    RuntimeConfig,
    SweepConfig,
    SweepData,
)


def main(out: str, npz: str, epochs: int) -> None:
    transform = Compose(
        [
            EnsureImaged("image"),
            ScaleIntensityRanged("image", 0, 255, 0.0, 1.0, clip=True),
            EnsureTyped("image", track_meta=False),
        ]
    )
    EvaluateStage(
        model=ModelSpec("bit_resnet18", in_channels=1, num_classes=2),
        output_dir=out,
        test_transform=transform,
        test_datalist=medmnist_datalist(npz, "test", limit=32),
        sweep=SweepConfig(
            inits={"baseline": None},
            fractions=[1.0],
            seeds=[0],
            mode="finetune",
            optim=OptimConfig(max_epochs=epochs, batch_size=32),
        ),
        sweep_data=SweepData(
            train=medmnist_datalist(npz, "train", limit=256),
            val=medmnist_datalist(npz, "val", limit=32),
            train_transform=transform,
        ),
        report=ReportConfig(n_boot=0, console=False),
        runtime=RuntimeConfig(device="cpu", log_every=0),
    ).run()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
