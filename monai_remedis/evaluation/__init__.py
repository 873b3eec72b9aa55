"""Evaluation: classification metrics, bootstrap intervals and data-efficiency statistics."""

from __future__ import annotations

from monai_remedis.evaluation.statistics import (
    BootstrapCI,
    accuracy_score,
    auc_score,
    binary_auc,
    bootstrap_ci,
    classification_metrics,
    expected_calibration_error,
    label_reduction_factor,
    paired_bootstrap_difference,
    summarise_sweep,
)

__all__ = [
    "BootstrapCI",
    "accuracy_score",
    "auc_score",
    "binary_auc",
    "bootstrap_ci",
    "classification_metrics",
    "expected_calibration_error",
    "label_reduction_factor",
    "paired_bootstrap_difference",
    "summarise_sweep",
]
