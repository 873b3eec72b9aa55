"""Datalists, splits and dictionary transforms for monai-remedis."""

from __future__ import annotations

from monai_remedis.data.datalists import (
    csv_datalist,
    image_folder_datalist,
    load_datalist,
    medmnist_datalist,
    natural_image_npz_datalist,
    save_datalist,
)
from monai_remedis.data.fractions import label_fraction
from monai_remedis.data.transforms import EnsureImaged, MultiViewd

__all__ = [
    "EnsureImaged",
    "MultiViewd",
    "csv_datalist",
    "image_folder_datalist",
    "label_fraction",
    "load_datalist",
    "medmnist_datalist",
    "natural_image_npz_datalist",
    "save_datalist",
]
