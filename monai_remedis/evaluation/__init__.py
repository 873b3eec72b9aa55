"""Evaluation: classification metrics, bootstrap intervals, data-efficiency statistics, the linear-probe fast path,
the model-selection guard and the report."""

from __future__ import annotations

from monai_remedis.evaluation.guard import SelectionLeakError, check_selection_data, tag_split
from monai_remedis.evaluation.linear_probe import (
    FeatureCache,
    FeatureSet,
    LinearProbe,
    extract_features,
    train_linear_probe,
)
from monai_remedis.evaluation.statistics import (
    BootstrapCI,
    accuracy_score,
    auc_score,
    binary_auc,
    bootstrap_ci,
    classification_metrics,
    expected_calibration_error,
    label_reduction_factor,
    paired_seed_bootstrap_difference,
    summarise_sweep,
)

__all__ = [
    "BootstrapCI",
    "FeatureCache",
    "FeatureSet",
    "LinearProbe",
    "SelectionLeakError",
    "accuracy_score",
    "auc_score",
    "binary_auc",
    "bootstrap_ci",
    "check_selection_data",
    "classification_metrics",
    "expected_calibration_error",
    "extract_features",
    "label_reduction_factor",
    "paired_seed_bootstrap_difference",
    "summarise_sweep",
    "tag_split",
    "train_linear_probe",
]
