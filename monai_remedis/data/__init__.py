"""Datalists, splits, readers and dictionary transforms for monai-remedis.

The datalist API is :mod:`monai_remedis.data.builders` (sources, splits and pixel checks, JSON in and out); the
names below are the ones a bundle config or a user script needs. Dataset-specific adapters (APTOS, mini-MIAS) live
in :mod:`monai_remedis.apps`.
"""

from __future__ import annotations

from monai_remedis.data.builders import (
    checked_splits,
    dicom_folder_datalist,
    folder_datalist,
    load_datalist,
    medmnist_datalist,
    natural_image_npz_datalist,
    npz_splits,
    split_datalist,
    table_datalist,
    write_datalist,
)
from monai_remedis.data.color import Grayscaled, RandColorJitterd, RandGrayscaled
from monai_remedis.data.fractions import label_fraction
from monai_remedis.data.multi_instance import MultiInstanceDataset
from monai_remedis.data.readers import MedicalDicomReader, MedicalImageReader, TiffReader, check_readable, read_image
from monai_remedis.data.stain import RandHEDJitterd
from monai_remedis.data.transforms import EnsureImaged, MultiViewd

__all__ = [
    "EnsureImaged",
    "Grayscaled",
    "MedicalDicomReader",
    "MedicalImageReader",
    "MultiInstanceDataset",
    "MultiViewd",
    "RandColorJitterd",
    "RandGrayscaled",
    "RandHEDJitterd",
    "TiffReader",
    "check_readable",
    "checked_splits",
    "dicom_folder_datalist",
    "folder_datalist",
    "label_fraction",
    "load_datalist",
    "medmnist_datalist",
    "natural_image_npz_datalist",
    "npz_splits",
    "read_image",
    "split_datalist",
    "table_datalist",
    "write_datalist",
]
