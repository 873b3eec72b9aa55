"""Linear-probe fast path: logistic head, L2 selection on validation, feature cache (on real BreastMNIST pixels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from monai.transforms import Compose, ScaleIntensityRanged

from monai_remedis.data import EnsureImaged, medmnist_datalist
from monai_remedis.evaluation.linear_probe import (
    FeatureCache,
    datalist_fingerprint,
    extract_features,
    file_fingerprint,
    fit_logistic_regression,
    single_thread,
    train_linear_probe,
)
from monai_remedis.evaluation.statistics import auc_score


class Pixels(nn.Module):
    """A 'backbone' whose features are the flattened pixels: a linear probe on it is logistic regression."""

    feature_dim = 28 * 28
    spatial_dims = 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


def _transform(a_max: float = 255.0) -> Compose:
    return Compose([EnsureImaged(keys="image"), ScaleIntensityRanged("image", 0, a_max, 0.0, 1.0, clip=True)])


@pytest.fixture(scope="module")
def breast(data_dir: Path) -> dict[str, list[dict]]:
    npz = data_dir / "medmnist_breast" / "breastmnist.npz"
    return {s: medmnist_datalist(npz, s) for s in ("train", "val", "test")}


def _blobs(n: int, seed: int, shift: float = 2.0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    x = torch.randn(n, 16, generator=g)
    x[:, :3] += shift * nn.functional.one_hot(y, 3).float()
    return x, y


def test_logistic_regression_separates_classes_and_is_deterministic() -> None:
    x, y = _blobs(300, 0)
    w1, b1 = fit_logistic_regression(x, y, 3, l2=1e-3)
    w2, b2 = fit_logistic_regression(x, y, 3, l2=1e-3)
    assert torch.equal(w1, w2) and torch.equal(b1, b2)
    xt, yt = _blobs(300, 1)
    probs = torch.softmax(xt @ w1 + b1, dim=1).numpy()
    assert auc_score(probs, yt.numpy()) > 0.9


def test_stronger_penalty_gives_smaller_weights() -> None:
    x, y = _blobs(200, 0)
    weak, _ = fit_logistic_regression(x, y, 3, l2=1e-4)
    strong, _ = fit_logistic_regression(x, y, 3, l2=1.0)
    assert strong.norm() < 0.5 * weak.norm()


def test_penalty_is_chosen_by_validation_auc_with_ties_to_the_stronger_one() -> None:
    x, y = _blobs(40, 0, shift=1.0)
    val = _blobs(200, 1, shift=1.0)
    grid = (1e-4, 1e-2, 1.0, 100.0)
    probe = train_linear_probe(x, y, 3, val=val, l2_grid=grid)
    assert set(probe.val_aucs) == {f"{v:g}" for v in grid}
    best = max(probe.val_aucs.values())
    assert probe.val_auc == pytest.approx(best)
    tied = [float(k) for k, v in probe.val_aucs.items() if v == best]
    assert probe.l2 == max(tied)


def test_without_validation_the_middle_of_the_grid_is_used() -> None:
    x, y = _blobs(50, 0)
    probe = train_linear_probe(x, y, 3, l2_grid=(1e-3, 1e-1, 10.0))
    assert probe.l2 == 1e-1 and probe.val_auc is None


def test_standardisation_uses_the_pool_not_the_subset() -> None:
    x, y = _blobs(100, 0)
    pool = x + 5.0
    probe = train_linear_probe(x[:10], y[:10], 3, standardise=pool, l2_grid=(1.0,))
    assert torch.allclose(probe.mean, pool.mean(dim=0))


def test_single_thread_restores_the_thread_count() -> None:
    before = torch.get_num_threads()
    with single_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_probe_on_real_breastmnist_pixels_beats_chance(breast) -> None:
    transform = _transform()
    train = extract_features(Pixels(), breast["train"], transform)
    val = extract_features(Pixels(), breast["val"], transform)
    test = extract_features(Pixels(), breast["test"], transform)
    assert train.features.shape == (546, 784) and train.labels.tolist() == [d["label"] for d in breast["train"]]
    probe = train_linear_probe(train.features, train.labels, 2, val=(val.features, val.labels))
    assert auc_score(probe.predict_proba(test.features), test.labels.numpy()) > 0.7


def test_feature_cache_hits_and_misses(breast, tmp_path: Path) -> None:
    items = breast["val"][:12]
    calls = []

    def factory() -> nn.Module:
        calls.append(1)
        return Pixels()

    cache = FeatureCache(tmp_path)
    first = cache.load_or_extract("pixels/val", factory, items, _transform(), {"weights": "none"})
    again = cache.load_or_extract("pixels/val", factory, items, _transform(), {"weights": "none"})
    assert len(calls) == 1 and cache.hits == 1 and torch.equal(first.features, again.features)
    assert first.ids == [d["id"] for d in items]
    cache.load_or_extract("pixels/val", factory, items, _transform(a_max=128.0), {"weights": "none"})
    relabelled = [dict(items[0], label=1 - items[0]["label"]), *items[1:]]
    cache.load_or_extract("pixels/val", factory, relabelled, _transform(), {"weights": "none"})
    cache.load_or_extract("pixels/val", factory, items, _transform(), {"weights": "other"})
    assert len(calls) == 4 and cache.misses == 4
    assert len(list(tmp_path.glob("pixels/val-*.pt"))) == 4


def test_fingerprints_depend_on_content(breast, tmp_path: Path) -> None:
    items = breast["val"][:5]
    assert datalist_fingerprint(items) == datalist_fingerprint([dict(d) for d in items])
    changed = [dict(items[0], image=np.flip(items[0]["image"], -1).copy()), *items[1:]]
    assert datalist_fingerprint(items) != datalist_fingerprint(changed)
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    torch.save({"w": torch.zeros(3)}, a)
    torch.save({"w": torch.ones(3)}, b)
    assert file_fingerprint(a) != file_fingerprint(b) and file_fingerprint(None) == "none"
