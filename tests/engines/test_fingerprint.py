"""Transform digests: a run's image pipeline is identified by what it does, without moving any random stream."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from monai.transforms import Compose, RandAdjustContrastd, RandFlipd, RandGaussianNoised, ScaleIntensityd

from monai_remedis.engines.fingerprint import fingerprint_changes, make_fingerprint, transform_digest


def _items(n: int = 3) -> list[dict]:
    rng = np.random.default_rng(0)
    return [{"image": rng.random((1, 16, 16)).astype(np.float32), "label": i % 2, "id": f"x{i}"} for i in range(n)]


def _augment(noise_std: float = 0.1, gamma: tuple[float, float] = (0.7, 1.4)) -> Compose:
    return Compose(
        [
            ScaleIntensityd("image"),
            RandFlipd("image", prob=0.5, spatial_axis=0),
            RandGaussianNoised("image", prob=1.0, std=noise_std),
            RandAdjustContrastd("image", prob=1.0, gamma=gamma),
        ]
    )


@pytest.mark.parametrize(
    "changed", [_augment(noise_std=0.2), _augment(gamma=(0.9, 1.1)), Compose([ScaleIntensityd("image")])]
)
def test_a_different_pipeline_has_a_different_digest(changed: Compose) -> None:
    assert transform_digest(_augment(), _items()) == transform_digest(_augment(), _items())  # built twice: same
    assert transform_digest(changed, _items()) != transform_digest(_augment(), _items())


def test_a_used_transform_has_the_digest_of_a_fresh_one() -> None:
    """Stages share transform objects; a sweep's later runs must not see a different pipeline."""
    used = _augment()
    for item in _items(5):
        used(item)
    assert transform_digest(used, _items()) == transform_digest(_augment(), _items())


def test_the_digest_leaves_every_random_stream_where_it_was() -> None:
    """Computing a fingerprint must not change the run it describes."""
    a, b = _augment(), _augment()
    a.set_random_state(seed=3)
    b.set_random_state(seed=3)
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    transform_digest(a, _items())
    after = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    assert after == (random.random(), np.random.rand(), torch.rand(1).item())
    item = _items(1)[0]
    assert np.array_equal(np.asarray(a(dict(item))["image"]), np.asarray(b(dict(item))["image"]))


def test_a_stale_fingerprint_names_the_changed_transform() -> None:
    old = make_fingerprint("finetune", {}, transforms={"train": (_augment(), _items()), "val": (None, None)})
    new = make_fingerprint("finetune", {}, transforms={"train": (_augment(0.3), _items()), "val": (None, None)})
    changes = fingerprint_changes(old, new)
    assert len(changes) == 1 and changes[0].startswith("transforms.train: ")


def test_a_transform_that_cannot_run_is_described_not_raised() -> None:
    """The stage's own loading reports a broken item; the fingerprint must not fail first with a vaguer error."""
    digest = transform_digest(_augment(), [{"image": "missing.png"}])
    assert digest == "Compose (failed: RuntimeError)" or digest.startswith("Compose (failed:")
