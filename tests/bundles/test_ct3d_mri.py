"""The ct3d MRI overlay: SSL on random 3D crops of the real brain MRI volumes, percentile-scaled, any strategy."""

from __future__ import annotations

import torch

from monai_remedis.ssl.factory import strategy_data_transform


def test_mri_overlay_feeds_percentile_scaled_random_crops_to_every_strategy(bundle_config) -> None:
    cfg = bundle_config("ct3d", "ssl", "mri", mri_crops_per_volume=2)
    items = cfg.get_parsed_content("ssl_datalist")
    assert len(items) == 8 and len({d["image"] for d in items}) == 4
    assert cfg.get_parsed_content("checked_datalist")["train"][0]["image"].shape == (1, 28, 28, 28)  # AdrenalMNIST

    load = cfg.get_parsed_content("ssl#load_transform")
    load.set_random_state(0)
    crops = [load(dict(item))["image"] for item in items]
    for crop in crops:
        assert crop.shape == (1, 32, 32, 16) and crop.dtype == torch.float32
        assert float(crop.min()) >= 0.0 and float(crop.max()) <= 1.0
    assert items[0] == items[4] and not torch.equal(crops[0], crops[4])  # a fresh crop each time

    contrastive = cfg.get_parsed_content("ssl#transform")
    contrastive.set_random_state(0)
    views = contrastive(dict(items[0]))
    assert views["view_0"].shape == views["view_1"].shape == (1, 28, 28, 28)  # the bundle's views, resized

    genesis = strategy_data_transform("genesis", load, cfg.get_parsed_content("ssl#view_transform"), {})
    genesis.set_random_state(0)
    batch = genesis(dict(items[0]))
    assert batch["image"].shape == batch["view_0"].shape == (1, 32, 32, 16)
    assert not torch.equal(batch["image"], batch["view_0"])
