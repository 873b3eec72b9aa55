"""Loader collation of ragged datalists (real DICOM headers give items with different optional keys)."""

from __future__ import annotations

import pytest
import torch
from monai.data import Dataset

from monai_remedis.engines.runtime import collate_items, make_loader


def test_items_with_and_without_a_site_collate_into_one_batch():
    items = [
        {"image": torch.zeros(1, 4, 4), "id": "a.dcm", "site": "UNC"},
        {"image": torch.ones(1, 4, 4), "id": "b.dcm"},
    ]
    batch = collate_items(items)
    assert batch["image"].shape == (2, 1, 4, 4)
    assert batch["id"] == ["a.dcm", "b.dcm"]
    assert batch["site"] == ["UNC", None]


def test_uniform_items_collate_as_monai_does():
    items = [{"image": torch.full((1, 2, 2), float(i)), "label": i} for i in range(3)]
    batch = collate_items(items)
    assert torch.equal(batch["label"], torch.tensor([0, 1, 2]))
    assert batch["image"][2].max().item() == 2.0


def test_the_stage_loader_batches_a_ragged_datalist():
    items = [{"image": torch.zeros(1, 2, 2), **({"site": "s"} if i % 2 else {})} for i in range(4)]
    batch = next(iter(make_loader(Dataset(items), batch_size=4, shuffle=False)))
    assert batch["site"] == [None, "s", None, "s"]


def test_a_dataset_smaller_than_one_full_batch_names_both_keys():
    """``--limit 64`` with the default batch 128 used to fail inside the SSL stage's loader without saying what to
    set; the error names ``batch_size`` and ``limit`` and a batch size that fits."""
    items = [{"image": torch.zeros(1, 2, 2)} for _ in range(6)]
    with pytest.raises(ValueError, match=r"6 items \(after `limit`\).*batch_size=8.*--batch_size 4\) or raise `limit`"):
        make_loader(Dataset(items), batch_size=8, shuffle=True, drop_last=True)
    assert len(make_loader(Dataset(items), batch_size=4, shuffle=True, drop_last=True)) == 1
    assert len(make_loader(Dataset(items), batch_size=8, shuffle=False)) == 1  # no drop_last: one short batch
