"""Datalist builders and the ``datalist`` CLI on real data: folder, CSV, DICOM walk and MedMNIST npz sources,
patient-level splits, and the cross-split duplicate check (refuse naming both entries, or drop)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from monai_remedis.cli import main
from monai_remedis.data import EnsureImaged, load_datalist
from monai_remedis.data.builders import (
    checked_splits,
    dicom_folder_datalist,
    encode_labels,
    export_npz_splits,
    folder_datalist,
    limit_per_label,
    npz_splits,
    patient_id_function,
    resolve_duplicates,
    split_datalist,
    table_datalist,
)
from monai_remedis.data.patient_split import check_patient_disjoint


@pytest.fixture(scope="module")
def mias(data_dir: Path) -> Path:
    return data_dir / "mini_mias_abnormal"


def _ids(splits: dict[str, list[dict]]) -> dict[str, list[str]]:
    return {name: [item["id"] for item in items] for name, items in splits.items()}


# ---- splits ---------------------------------------------------------------------------------------------------------


def test_mini_mias_split_is_patient_level_stratified_and_seeded(mias: Path) -> None:
    items, names = folder_datalist(mias / "images_512", patient_from="mini-mias")
    assert names == ["benign", "malignant"] and len(items) == 115
    splits = split_datalist(items, val=0.2, test=0.2, seed=0)
    check_patient_disjoint(splits)
    assert sum(len(s) for s in splits.values()) == 115
    for split in splits.values():
        assert {item["label"] for item in split} == {0, 1}
    reordered = split_datalist(list(reversed(items)), 0.2, 0.2, seed=0)
    assert {k: set(v) for k, v in _ids(reordered).items()} == {k: set(v) for k, v in _ids(splits).items()}
    assert _ids(split_datalist(items, 0.2, 0.2, seed=1)) != _ids(splits)


def test_items_without_patient_ids_get_an_item_level_stratified_split() -> None:
    items = [{"image": f"{i}.png", "label": i % 2, "id": str(i)} for i in range(100)]
    splits = split_datalist(items, val=0.1, test=0.2)
    assert {k: len(v) for k, v in splits.items()} == {"training": 70, "validation": 10, "test": 20}
    assert all(sum(item["label"] for item in s) == len(s) // 2 for s in splits.values())
    assert all(set(item) == {"image", "label", "id"} for s in splits.values() for item in s)


def test_only_some_items_with_a_patient_id_is_refused_by_name() -> None:
    items = [{"image": "a.png", "id": "a", "patient_id": "p1"}, {"image": "b.png", "id": "b"}]
    with pytest.raises(ValueError, match=r"item 1 \(b\) has no 'patient_id'"):
        split_datalist(items)
    with pytest.raises(ValueError, match="val and test"):
        split_datalist(items, val=0.6, test=0.5)


def test_patient_id_from_a_regular_expression(data_dir: Path) -> None:
    slide = patient_id_function(r"CRC-Prim-HE-\d+")
    assert slide("x/1A11_CRC-Prim-HE-07_022.tif_Row_601_Col_151.tif") == "CRC-Prim-HE-07"
    assert patient_id_function(r"case(\d+)_")("case12_left.png") == "12"
    with pytest.raises(ValueError, match="does not match"):
        slide("no-slide-here.tif")


def test_limit_draws_round_robin_across_labels_in_original_order(mias: Path) -> None:
    items, _ = folder_datalist(mias / "images_512")  # 63 benign files, then 52 malignant
    assert {item["label"] for item in items[:10]} == {0}
    limited = limit_per_label(items, 7)
    assert [item["label"] for item in limited] == [0, 0, 0, 0, 1, 1, 1]
    assert [item["id"] for item in limited] == [i["id"] for i in items[:4] + items[63:66]]
    assert limit_per_label(items, None) == items and limit_per_label(items[:3], 10) == items[:3]


# ---- labels and CSV -------------------------------------------------------------------------------------------------


def test_class_name_labels_are_encoded_in_given_or_sorted_order() -> None:
    items = [{"label": "malignant"}, {"label": "benign"}, {"label": " benign "}]
    encoded, names = encode_labels(items)
    assert names == ["benign", "malignant"] and [i["label"] for i in encoded] == [1, 0, 0]
    encoded, names = encode_labels(items, ["malignant", "benign"])
    assert [i["label"] for i in encoded] == [0, 1, 1]
    assert encode_labels([{"label": "3"}, {"label": 1}]) == ([{"label": 3}, {"label": 1}], None)
    with pytest.raises(ValueError, match="'normal' not in"):
        encode_labels([{"label": "normal", "id": "x"}], ["benign", "malignant"])
    with pytest.raises(ValueError, match=r"item 0 \(x\) has no 'label'"):
        encode_labels([{"id": "x"}])


def test_ham10000_csv_with_lesion_ids_as_patients(data_dir: Path) -> None:
    root = data_dir / "ham10000_subset"
    items, names = table_datalist(
        root / "labels.csv", "image_id", "label", base_dir=root / "images", suffix=".jpg", patient_column="lesion_id"
    )
    assert len(items) == 1487 and names is None
    assert items[0]["patient_id"].startswith("HAM_") and Path(items[0]["image"]).is_file()
    assert sorted({item["label"] for item in items}) == list(range(7))


def test_csv_with_class_names_and_a_missing_column(tmp_path: Path, mias: Path) -> None:
    table = tmp_path / "mias.csv"
    with open(mias / "labels.csv") as src, open(table, "w", newline="") as dst:
        writer = csv.writer(dst)
        writer.writerow(["image", "label"])
        for row in list(csv.DictReader(src))[:6]:
            writer.writerow([f"{mias}/images_512/{row['label']}/{row['ref']}.png", row["label"]])
    items, names = table_datalist(table, patient_column=None, site_column=None, class_names=["benign", "malignant"])
    assert names == ["benign", "malignant"] and {i["label"] for i in items} <= {0, 1}
    with pytest.raises(KeyError, match="no column 'grade'"):
        table_datalist(table, label_column="grade")


def _mias_rows(mias: Path, n: int) -> list[dict[str, str]]:
    with open(mias / "labels.csv") as src:
        return list(csv.DictReader(src))[:n]


def test_csv_image_column_defaults_to_image_else_path(tmp_path: Path, mias: Path, capsys) -> None:
    """The issue's CSV layout (path, label, patient_id, site) works without --image-column."""
    table = tmp_path / "t.csv"
    with open(table, "w", newline="") as dst:
        writer = csv.writer(dst)
        writer.writerow(["path", "label", "patient_id", "site"])
        for i, row in enumerate(_mias_rows(mias, 20)):
            writer.writerow([f"images_512/{row['label']}/{row['ref']}.png", row["label"], f"p{i // 2}", "uk"])
    out = tmp_path / "t.json"
    assert main(["datalist", "csv", str(table), "-o", str(out), "--base-dir", str(mias), "--test", "0.2"]) == 0
    splits = {k: load_datalist(out, k) for k in ("training", "validation", "test")}
    assert sum(len(v) for v in splits.values()) == 20 and all(Path(i["image"]).is_file() for i in splits["test"])
    assert splits["training"][0]["site"] == "uk"
    check_patient_disjoint(splits)
    table.write_text("file,label\na.png,0\n")
    assert main(["datalist", "csv", str(table), "-o", str(tmp_path / "x.json")]) == 1
    assert "no image column ('image' or 'path'" in (err := capsys.readouterr().err) and "file, label" in err
    items, _ = table_datalist(table, image_column="file", patient_column=None, site_column=None)
    assert items[0]["id"] == "a.png"


def test_flat_folder_with_the_class_in_the_file_name(mias: Path) -> None:
    """mini-MIAS originals: original_pgm/mdb001_benign.pgm, no class subfolders."""
    items, names = folder_datalist(
        mias / "original_pgm", ["benign", "malignant"], patient_from="mini-mias", label_from="_(benign|malignant)"
    )
    assert names == ["benign", "malignant"]
    assert [(i["id"], i["label"], i["patient_id"]) for i in items] == [
        ("mdb001_benign.pgm", 0, "mdb001-002"),
        ("mdb023_malignant.pgm", 1, "mdb023-024"),
    ]
    with pytest.raises(ValueError, match="label pattern .* does not match .*mdb001_benign.pgm"):
        folder_datalist(mias / "original_pgm", label_from="_(normal)")
    with pytest.raises(FileNotFoundError, match="class folders"):
        folder_datalist(mias / "original_pgm")  # no subfolders: say where the labels come from


# ---- duplicates -----------------------------------------------------------------------------------------------------


def test_pneumoniamnist_duplicates_are_refused_naming_both_entries_or_dropped_from_validation(
    pneumonia_npz: Path,
) -> None:
    splits = npz_splits(pneumonia_npz)
    with pytest.raises(ValueError, match=r"8 image\(s\) appear in more than one split") as err:
        resolve_duplicates(splits)
    both = "validation[61] (pneumoniamnist/val/61) has the same pixels as training[2041] (pneumoniamnist/train/2041)"
    assert both in str(err.value)
    kept, removed = resolve_duplicates(splits, "drop")
    assert {k: len(v) for k, v in kept.items()} == {"training": 4708, "validation": 516, "test": 624}
    assert len(removed) == 8 and all(d.split == "validation" for d in removed)
    assert list(kept) == ["training", "validation", "test"]


def test_a_test_image_is_never_dropped(data_dir: Path) -> None:
    splits = npz_splits(data_dir / "medmnist_breast" / "breastmnist.npz")
    kept, removed = resolve_duplicates(splits, "drop")
    assert [str(d) for d in removed] == ["training[115] (breastmnist/train/115) has the same pixels as test[76] "
                                         "(breastmnist/test/76)"]  # fmt: skip
    assert len(kept["test"]) == 156 and len(kept["training"]) == 545
    assert resolve_duplicates(splits, "ignore")[1] == []


def test_a_copied_file_in_two_splits_is_refused_by_path(tmp_path: Path, mias: Path) -> None:
    source = mias / "images_512" / "benign" / "mdb001.png"
    shutil.copy(source, tmp_path / "renamed_copy.png")
    splits = {
        "training": [{"image": str(source), "label": 0}],
        "test": [{"image": str(tmp_path / "renamed_copy.png"), "label": 1}],
    }
    with pytest.raises(ValueError) as err:
        resolve_duplicates(splits)
    assert str(source) in str(err.value) and "renamed_copy.png" in str(err.value)
    assert checked_splits(splits, limit=1, on_duplicate="drop") == {"training": [], "test": splits["test"]}


def test_drop_validation_drops_validation_copies_and_refuses_a_train_test_leak(pneumonia_npz: Path) -> None:
    splits = {"train": [], "val": [], "test": []}
    for name, items in zip(splits, npz_splits(pneumonia_npz).values(), strict=True):
        splits[name] = items
    kept = checked_splits(splits, on_duplicate="drop_validation")
    assert {k: len(v) for k, v in kept.items()} == {"train": 4708, "val": 516, "test": 624}
    leaky = {**splits, "train": [*splits["train"], splits["test"][5]]}
    with pytest.raises(ValueError, match="1 image") as err:
        checked_splits(leaky, on_duplicate="drop_validation")
    both = "train[4708] (pneumoniamnist/test/5) has the same pixels as test[5] (pneumoniamnist/test/5)"
    assert both in str(err.value)


def test_identical_images_with_two_labels_in_one_split_are_refused_or_all_dropped(mias: Path) -> None:
    items, _ = folder_datalist(mias / "images_512", patient_from="mini-mias")
    splits = split_datalist(items, val=0.2, test=0.2)
    with pytest.raises(ValueError, match="1 image.* under different labels") as err:
        checked_splits(splits)
    assert "(benign/mdb144.png, label 0)" in str(err.value) and "(malignant/mdb144.png, label 1)" in str(err.value)
    kept = checked_splits(splits, on_label_conflict="drop")
    ids = [item["id"] for split in kept.values() for item in split]
    assert len(ids) == 113 and not any("mdb144" in i for i in ids)  # 115 files, 114 distinct images, 1 ambiguous
    same = [{"image": np.zeros((1, 2, 2)), "label": 0, "id": "a"}, {"image": np.zeros((1, 2, 2)), "label": 0}]
    assert checked_splits({"train": same}) == {"train": same}  # same label: a plain within-split copy is kept
    two = [same[0], {**same[1], "label": 1}]
    assert checked_splits({"train": two}, on_label_conflict="ignore") == {"train": two}


# ---- DICOM ----------------------------------------------------------------------------------------------------------


def test_dicom_walk_reads_headers_filters_and_skips_non_dicom(data_dir: Path) -> None:
    items, names = dicom_folder_datalist(data_dir / "dicom_samples")
    ids = {item["id"] for item in items}
    assert names is None and len(items) == 9 and "LICENSE_pydicom.txt" not in ids
    assert {i["modality"] for i in items} == {"CT", "MR", "CR", "US"}
    chest = next(i for i in items if i["id"] == "RG1_UNCI.dcm")
    assert chest["patient_id"] == "9RG1" and chest["site"] == "Philips Medical Systems Hamburg"
    grayscale, _ = dicom_folder_datalist(data_dir / "dicom_samples", grayscale_only=True, single_frame_only=True)
    assert {i["id"] for i in grayscale} == ids - {"US1_UNCI.dcm", "emri_small.dcm"}
    radiographs, _ = dicom_folder_datalist(data_dir / "dicom_samples", modalities=["cr"])
    assert {i["id"] for i in radiographs} == {"RG1_UNCI.dcm", "RG3_J2KI.dcm"}


def test_dicom_labels_from_csv_by_file_name_or_uid(data_dir: Path, tmp_path: Path) -> None:
    import pydicom

    table = tmp_path / "labels.csv"
    table.write_text("image,label\nRG1_UNCI.dcm,chest\nRG3_J2KI.dcm,extremity\n")
    root = data_dir / "dicom_samples"
    with pytest.raises(ValueError, match="7 DICOM image"):
        dicom_folder_datalist(root, table, match_on="name")
    items, names = dicom_folder_datalist(root, table, match_on="name", missing_label="drop")
    assert names == ["chest", "extremity"] and {(i["id"], i["label"]) for i in items} == {
        ("RG1_UNCI.dcm", 0),
        ("RG3_J2KI.dcm", 1),
    }
    kept, _ = dicom_folder_datalist(root, table, match_on="name", missing_label="keep")
    assert len(kept) == 9 and sum("label" in i for i in kept) == 2
    uid = str(pydicom.dcmread(root / "CT_small.dcm", stop_before_pixels=True).SOPInstanceUID)
    table.write_text(f"uid,diagnosis\n{uid},1\n")
    items, names = dicom_folder_datalist(
        root, table, key_column="uid", label_column="diagnosis", match_on="SOPInstanceUID", missing_label="drop"
    )
    assert [(i["id"], i["label"]) for i in items] == [("CT_small.dcm", 1)] and names is None
    with pytest.raises(ValueError, match="match_on"):
        dicom_folder_datalist(root, table, match_on="NotAKeyword")


# ---- npz ------------------------------------------------------------------------------------------------------------


def test_npz_spatial_dims_are_inferred_and_exports_read_back_through_the_medical_reader(
    data_dir: Path, tmp_path: Path
) -> None:
    retina = npz_splits(data_dir / "medmnist_retina" / "retinamnist.npz")
    adrenal = npz_splits(data_dir / "medmnist_adrenal3d" / "adrenalmnist3d.npz")
    assert retina["training"][0]["image"].shape == (3, 28, 28)
    assert adrenal["training"][0]["image"].shape == (1, 28, 28, 28)
    small = {"training": retina["training"][:2] + adrenal["training"][:1]}
    exported = export_npz_splits(small, tmp_path)["training"]
    assert [Path(i["image"]).name for i in exported] == ["0.png", "1.png", "0.nii.gz"]
    assert exported[0]["label"] == retina["training"][0]["label"]
    load = EnsureImaged("image")
    rgb = load(exported[0])["image"].numpy()  # arrays and files are both (C, x, y): columns first
    np.testing.assert_array_equal(rgb, retina["training"][0]["image"])
    with np.load(data_dir / "medmnist_retina" / "retinamnist.npz") as npz:
        np.testing.assert_array_equal(rgb.transpose(2, 1, 0), npz["train_images"][0])  # (rows, cols, RGB)
    volume = load(exported[2])["image"].numpy()
    np.testing.assert_array_equal(volume, adrenal["training"][0]["image"])


# ---- CLI ------------------------------------------------------------------------------------------------------------


def test_cli_refuses_a_duplicate_across_splits_naming_both_entries(data_dir: Path, tmp_path: Path, capsys) -> None:
    npz = str(data_dir / "medmnist_breast" / "breastmnist.npz")
    out = tmp_path / "breast.json"
    assert main(["datalist", "npz", npz, "-o", str(out), "--export-dir", str(tmp_path / "png")]) == 1
    message = capsys.readouterr().err
    assert "training[115] (breastmnist/train/115)" in message and "test[76] (breastmnist/test/76)" in message
    assert not out.exists()
    argv = ["datalist", "npz", npz, "-o", str(out), "--export-dir", str(tmp_path / "png"), "--drop-duplicates"]
    assert main(argv) == 0
    written = json.loads(out.read_text())
    assert (written["num_training"], written["num_validation"], written["num_test"]) == (545, 78, 156)
    assert written["dropped_duplicates"] == [
        "training[115] (breastmnist/train/115) has the same pixels as test[76] (breastmnist/test/76)"
    ]
    test_items = load_datalist(out, "test")
    assert len(test_items) == 156 and Path(test_items[0]["image"]).is_file()


def test_cli_folder_source_with_patient_ids_writes_a_decathlon_json(mias: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "mias.json"
    argv = ["datalist", "folder", str(mias / "images_512"), "-o", str(out), "--patient-from", "mini-mias"]
    assert main([*argv, "--val", "0.2", "--test", "0.2", "--seed", "3"]) == 0
    assert "training" in capsys.readouterr().out
    written = json.loads(out.read_text())
    assert written["labels"] == {"0": "benign", "1": "malignant"}
    splits = {k: load_datalist(out, k) for k in ("training", "validation", "test")}
    check_patient_disjoint(splits)
    assert sum(len(v) for v in splits.values()) == 115


def test_cli_errors_are_reported_without_a_traceback(tmp_path: Path, data_dir: Path, capsys) -> None:
    assert main(["datalist", "folder", str(tmp_path / "missing"), "-o", str(tmp_path / "x.json")]) == 1
    assert "not found" in capsys.readouterr().err
    npz = str(data_dir / "medmnist_breast" / "breastmnist.npz")
    with pytest.raises(SystemExit, match="--export-dir"):
        main(["datalist", "npz", npz, "-o", str(tmp_path / "x.json")])
    with pytest.raises(SystemExit, match="own train/val/test splits"):
        main(["datalist", "npz", npz, "-o", str(tmp_path / "x.json"), "--val", "0.2", "--export-dir", "e"])
