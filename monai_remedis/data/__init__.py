"""Datalists, splits and dictionary transforms for monai-remedis."""

from __future__ import annotations

from monai_remedis.data.aptos import APTOS_SITE, aptos_datalist, aptos_splits, clean_duplicates
from monai_remedis.data.builders import (
    checked_splits,
    dicom_folder_datalist,
    folder_datalist,
    limit_per_label,
    prepare_splits,
    resolve_duplicates,
    resolve_label_conflicts,
    split_datalist,
    table_datalist,
    write_datalist,
)
from monai_remedis.data.color import RandColorJitterd, RandGrayscaled
from monai_remedis.data.datalists import (
    csv_datalist,
    image_folder_datalist,
    load_datalist,
    medmnist_datalist,
    natural_image_npz_datalist,
    save_datalist,
    to_monai_layout,
)
from monai_remedis.data.duplicates import (
    check_disjoint_splits,
    content_hash,
    drop_cross_split_duplicates,
    find_cross_split_duplicates,
    find_label_conflicts,
)
from monai_remedis.data.fractions import label_fraction
from monai_remedis.data.multi_instance import MultiInstanceViewsd
from monai_remedis.data.patient_split import (
    add_patient_ids,
    check_patient_disjoint,
    mini_mias_patient_id,
    patient_split,
)
from monai_remedis.data.readers import (
    MedicalDicomReader,
    MedicalImageReader,
    TiffReader,
    check_readable,
    load_image_transforms,
    read_dicom_image,
    read_image,
)
from monai_remedis.data.stain import RandHEDJitterd
from monai_remedis.data.transforms import EnsureImaged, MultiViewd

__all__ = [
    "APTOS_SITE",
    "aptos_datalist",
    "aptos_splits",
    "clean_duplicates",
    "EnsureImaged",
    "MedicalDicomReader",
    "MedicalImageReader",
    "MultiInstanceViewsd",
    "MultiViewd",
    "RandColorJitterd",
    "RandGrayscaled",
    "RandHEDJitterd",
    "TiffReader",
    "add_patient_ids",
    "check_disjoint_splits",
    "checked_splits",
    "check_patient_disjoint",
    "check_readable",
    "content_hash",
    "drop_cross_split_duplicates",
    "find_cross_split_duplicates",
    "find_label_conflicts",
    "load_image_transforms",
    "mini_mias_patient_id",
    "patient_split",
    "read_dicom_image",
    "read_image",
    "csv_datalist",
    "dicom_folder_datalist",
    "folder_datalist",
    "limit_per_label",
    "prepare_splits",
    "resolve_duplicates",
    "resolve_label_conflicts",
    "split_datalist",
    "table_datalist",
    "write_datalist",
    "image_folder_datalist",
    "label_fraction",
    "load_datalist",
    "medmnist_datalist",
    "natural_image_npz_datalist",
    "save_datalist",
    "to_monai_layout",
]
