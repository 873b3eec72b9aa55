"""MICLe's data side: the second view comes from another image of the same patient, else from the same image."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser

from monai_remedis.configs import bundle_config_files, bundle_dir
from monai_remedis.data.multi_instance import MultiInstanceViewsd


def _item(value: float, patient: str | None, ident: str | None = None) -> dict:
    item = {"image": np.full((1, 4, 4), value, np.float32)}
    if patient is not None:
        item["patient_id"] = patient
    if ident is not None:
        item["id"] = ident
    return item


def _identity(d: dict) -> dict:
    return d


def _source(view: object) -> float:
    return float(np.asarray(view).max())


def test_second_view_comes_from_another_image_of_the_patient() -> None:
    datalist = [_item(1, "a", "1"), _item(2, "a", "2"), _item(3, "a", "3"), _item(4, "b", "4")]
    pair = MultiInstanceViewsd("image", datalist, view_transform=_identity).set_random_state(seed=0)
    partners = set()
    for _ in range(30):
        out = pair(datalist[0])
        assert _source(out["view_0"]) == 1 and out["multi_instance"] == 1 and "image" not in out
        partners.add(_source(out["view_1"]))
    assert partners == {2.0, 3.0}  # never itself, never another patient, both others drawn


@pytest.mark.parametrize(
    "item, datalist",
    [
        (_item(5, None, "5"), [_item(5, None, "5"), _item(6, None, "6")]),  # no patient_id
        (_item(7, "solo", "7"), [_item(7, "solo", "7"), _item(8, "other", "8")]),  # a single image
    ],
)
def test_falls_back_to_two_views_of_one_image(item: dict, datalist: list[dict]) -> None:
    out = MultiInstanceViewsd("image", datalist, view_transform=_identity)(item)
    assert _source(out["view_0"]) == _source(out["view_1"]) == _source(item["image"])
    assert out["multi_instance"] == 0


def test_images_identified_by_path_or_object_without_ids() -> None:
    by_path = [{"image": "/x/a.png", "patient_id": 1}, {"image": "/x/b.png", "patient_id": 1}]
    pair = MultiInstanceViewsd("image", by_path, view_transform=_identity)
    assert pair.partners({"image": "/x/a.png", "patient_id": 1}) == [by_path[1]]
    by_object = [_item(1, "p"), _item(2, "p")]
    pair = MultiInstanceViewsd("image", by_object, view_transform=_identity)
    assert pair.partners(by_object[1]) == [by_object[0]]


def test_pairing_is_reproducible_with_a_seed() -> None:
    datalist = [_item(v, "p", str(v)) for v in range(6)]

    def draws(seed: int) -> list[float]:
        pair = MultiInstanceViewsd("image", datalist, view_transform=_identity).set_random_state(seed=seed)
        return [_source(pair(datalist[0])["view_1"]) for _ in range(10)]

    assert draws(3) == draws(3)


def test_bundle_overlay_enables_micle_and_trains(tmp_path: Path) -> None:
    """common + ssl + micle.yaml: strategy 'micle' with patient pairs drawn from the training datalist."""
    parser = ConfigParser()
    parser.read_config(bundle_config_files(bundle_dir("cxr"), "ssl", ["micle.yaml"]))
    real = parser.get_parsed_content("datalist#train", instantiate=True)  # PneumoniaMNIST, no patient_id
    parser["datalist"]["train"] = [dict(real[i], patient_id=f"p{i // 2}") for i in range(16)]  # 2 images/patient
    parser.update(
        {
            "output_dir": str(tmp_path),
            "ssl_init": None,
            "batch_size": 8,
            "ssl_epochs": 1,
            "ssl_optimizer": "adamw",
            "ssl_learning_rate": 1e-3,
            "log_every": 0,
        }
    )
    assert parser.get_parsed_content("strategy") == "micle"
    transform = parser.get_parsed_content("ssl_transform")
    assert isinstance(transform, MultiInstanceViewsd)
    out = transform(parser["datalist"]["train"][0])
    assert out["multi_instance"] == 1 and out["view_0"].shape == out["view_1"].shape == torch.Size([1, 28, 28])
    result = parser.get_parsed_content("ssl").run()
    history = json.loads(Path(result["history"]).read_text())
    assert len(history["loss"]) == 1 and np.isfinite(history["loss"][0]) and Path(result["backbone"]).is_file()
