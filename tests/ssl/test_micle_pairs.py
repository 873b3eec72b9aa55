"""MICLe's data side: the second view comes from another image of the same patient, else from the same image;
each image is decoded once however many times it is drawn."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser
from monai.transforms import Compose, Lambdad

from monai_remedis.configs import bundle_config_files, bundle_dir
from monai_remedis.data import MultiInstanceDataset
from monai_remedis.data.multi_instance import ItemViews


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
    pairs = MultiInstanceDataset(datalist, view_transform=_identity).set_random_state(seed=0)
    partners = set()
    for _ in range(30):
        out = pairs[0]
        assert _source(out["view_0"]) == 1 and out["multi_instance"] == 1 and "image" not in out
        partners.add(_source(out["view_1"]))
    assert partners == {2.0, 3.0}  # never itself, never another patient, both others drawn


@pytest.mark.parametrize(
    "datalist",
    [
        [_item(5, None, "5"), _item(6, None, "6")],  # no patient_id
        [_item(7, "solo", "7"), _item(8, "other", "8")],  # a single image
    ],
)
def test_falls_back_to_two_views_of_one_image(datalist: list[dict]) -> None:
    out = MultiInstanceDataset(datalist, view_transform=_identity)[0]
    assert _source(out["view_0"]) == _source(out["view_1"]) == _source(datalist[0]["image"])
    assert out["multi_instance"] == 0


def test_images_identified_by_path_or_object_without_ids() -> None:
    by_path = [{"image": "/x/a.png", "patient_id": 1}, {"image": "/x/b.png", "patient_id": 1}]
    assert MultiInstanceDataset(by_path, view_transform=_identity).partners(0) == [1]
    same_file_twice = [*by_path, {"image": "/x/a.png", "patient_id": 1}]
    assert MultiInstanceDataset(same_file_twice, view_transform=_identity).partners(0) == [1]  # never its own copy
    by_object = [_item(1, "p"), _item(2, "p")]
    assert MultiInstanceDataset(by_object, view_transform=_identity).partners(1) == [0]


def test_pairing_is_reproducible_with_a_seed() -> None:
    datalist = [_item(v, "p", str(v)) for v in range(6)]

    def draws(seed: int) -> list[float]:
        pairs = MultiInstanceDataset(datalist, view_transform=_identity).set_random_state(seed=seed)
        return [_source(pairs[0]["view_1"]) for _ in range(10)]

    assert draws(3) == draws(3)


def test_each_image_is_decoded_once(pneumonia_npz: Path) -> None:
    """The load transform's deterministic head runs once per image, at construction; draws only augment."""
    from monai_remedis.data import medmnist_datalist

    items = [dict(item, patient_id=f"p{i // 3}") for i, item in enumerate(medmnist_datalist(pneumonia_npz, limit=9))]
    decoded = []
    load = Compose([Lambdad("image", lambda x: decoded.append(1) or torch.as_tensor(x, dtype=torch.float32) / 255)])
    pairs = MultiInstanceDataset(items, view_transform=_identity, load_transform=load).set_random_state(seed=0)
    views = [pairs[i % len(items)] for i in range(45)]
    assert len(decoded) == len(items)
    assert all(v["multi_instance"] == 1 and v["view_0"].shape == (1, 28, 28) for v in views)
    assert float(views[0]["view_0"].max()) <= 1.0  # the decoded (scaled) image, not the raw one


def test_item_transform_serves_the_datasets_draws_for_raw_items() -> None:
    datalist = [_item(1, "a", "1"), _item(2, "a", "2")]
    views = MultiInstanceDataset(datalist, view_transform=_identity).item_transform()
    assert isinstance(views, ItemViews)
    assert _source(views(dict(datalist[1]))["view_1"]) == 1.0
    with pytest.raises(KeyError, match="not in the MultiInstanceDataset"):
        views(_item(9, "a", "9"))


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
    dataset = parser.get_parsed_content("micle_dataset")
    assert isinstance(dataset, MultiInstanceDataset) and len(dataset) == 16
    out = dataset[0]
    assert out["multi_instance"] == 1 and out["view_0"].shape == out["view_1"].shape == torch.Size([1, 28, 28])
    result = parser.get_parsed_content("ssl").run()
    history = json.loads(Path(result["history"]).read_text())
    assert len(history["loss"]) == 1 and np.isfinite(history["loss"][0]) and Path(result["backbone"]).is_file()
