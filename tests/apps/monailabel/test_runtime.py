"""The app's model holder and fine-tune adapter on real chest X-ray PNGs (runs without monailabel)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from remedis_label.configs import get_modality, settings_from_conf
from remedis_label.finetune import FinetuneJob, run_finetune
from remedis_label.runtime import BundleRuntime


def _runtime(tmp_path: Path, encoder: Path) -> BundleRuntime:
    (settings,) = settings_from_conf(
        tmp_path / "app", {"models": "cxr", "cxr_encoder": str(encoder), "model_dir": str(tmp_path / "model")}
    )
    return BundleRuntime(settings)


def test_conf_names_unknown_bundles(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="cxr, fundus"):
        settings_from_conf(tmp_path, {"models": "cxr,knee"})
    assert get_modality("fundus").checked


def test_encoder_only_serves_uniform_probabilities_and_real_embeddings(
    tmp_path: Path, cxr_encoder: Path, cxr_studies: tuple[Path, dict[str, int]]
) -> None:
    folder, _ = cxr_studies
    images = sorted(str(p) for p in folder.glob("*.png"))[:4]
    runtime = _runtime(tmp_path, cxr_encoder)
    model = runtime.model()
    assert not model.trained and model.class_names == ["normal", "pneumonia"]
    np.testing.assert_allclose(runtime.probabilities(images), 0.5, atol=1e-6)
    features = runtime.embeddings(images)
    assert features.shape == (4, 512) and np.isfinite(features).all() and features.std(axis=0).max() > 0


def test_finetune_publishes_a_classifier_the_runtime_serves_next(
    tmp_path: Path, cxr_encoder: Path, cxr_studies: tuple[Path, dict[str, int]]
) -> None:
    folder, labels = cxr_studies
    items = [{"image": str(folder / f"{i}.png"), "label": y, "id": i} for i, y in labels.items()]
    runtime = _runtime(tmp_path, cxr_encoder)
    before = runtime.embeddings([items[0]["image"]])
    result = run_finetune(
        FinetuneJob("cxr", items, tmp_path / "run", cxr_encoder, max_epochs=1, min_steps=2, device="cpu")
    )
    runtime.publish(result["classifier"])
    model = runtime.model()
    assert model.trained and model.weights == runtime.published
    probs = runtime.probabilities([it["image"] for it in items])
    assert probs.shape == (24, 2) and not np.allclose(probs, 0.5)  # a trained head moved off uniform
    assert not np.allclose(runtime.embeddings([items[0]["image"]]), before)  # cache dropped with the old model
