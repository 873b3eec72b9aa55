"""A one-run fine-tune sweep on real PneumoniaMNIST, run as a process the interruption test kills.

Usage: ``python sweep_worker.py OUT_DIR PNEUMONIA_NPZ EPOCHS``.
"""

from __future__ import annotations

import sys

from monai.transforms import Compose, EnsureTyped, ScaleIntensityRanged

from monai_remedis.data import EnsureImaged, medmnist_datalist
from monai_remedis.stages import EvaluateStage


def main(out: str, npz: str, epochs: int) -> None:
    transform = Compose(
        [
            EnsureImaged("image"),
            ScaleIntensityRanged("image", 0, 255, 0.0, 1.0, clip=True),
            EnsureTyped("image", track_meta=False),
        ]
    )
    EvaluateStage(
        backbone="bit_resnet18",
        in_channels=1,
        num_classes=2,
        output_dir=out,
        test_transform=transform,
        sweep_mode="finetune",
        sweep_inits={"baseline": None},
        sweep_train_datalist=medmnist_datalist(npz, "train", limit=256),
        sweep_val_datalist=medmnist_datalist(npz, "val", limit=32),
        sweep_test_datalist=medmnist_datalist(npz, "test", limit=32),
        sweep_train_transform=transform,
        fractions=[1.0],
        seeds=[0],
        n_boot=0,
        device="cpu",
        console=False,
        finetune_options={"max_epochs": epochs, "batch_size": 32, "log_every": 0},
    ).run()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
