"""The bad-input corpus: real files from the shared data plus corruptions made here, each with its documented outcome.

Every case either refuses with a message naming the file, item or key (``raises``), or handles the input correctly
(``handled``). Nothing exits silently with a wrong result. Cases marked "defect N" reproduce the silent defects of
issue 13 and failed before the fix.
"""

from __future__ import annotations

import csv
import logging
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import tifffile
import torch
from PIL import Image

from monai_remedis.backbones import create_backbone, load_backbone_weights
from monai_remedis.backbones.weights import WeightsLoadError
from monai_remedis.cli import main as cli_main
from monai_remedis.config_check import (
    OverrideValueError,
    UnknownOverrideError,
    check_bundle_argv,
    check_override_values,
    merged_config,
)
from monai_remedis.configs import bundle_config_files, bundle_dir
from monai_remedis.data import EnsureImaged, medmnist_datalist, table_datalist
from monai_remedis.data.paths import PROJECT_ROOT
from monai_remedis.data.validation import InvalidInputError, check_splits

MIAS_PNG = "mini_mias_abnormal/images_512/benign/mdb001.png"
HAM_JPG = "ham10000_subset/images/ISIC_0024320.jpg"
NIFTI = "nifti_samples/anatomical.nii"
DICOM = "dicom_samples/CT_small.dcm"
PNEUMONIA = "medmnist_pneumonia/pneumoniamnist.npz"


def _load(path: Path | str, **kwargs: object) -> torch.Tensor:
    return EnsureImaged("image", **kwargs)({"image": str(path), "id": "case"})["image"]


# ---- images ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, corrupt",
    [
        ("truncated PNG", lambda src, dst: dst.write_bytes(src.read_bytes()[: src.stat().st_size // 3])),
        ("zero-byte PNG", lambda src, dst: dst.write_bytes(b"")),
        ("CSV renamed to .png (wrong type)", lambda src, dst: dst.write_text("ref,label\nmdb001,benign\n")),
    ],
)
def test_unreadable_image_files_are_refused_naming_the_file(data_dir: Path, tmp_path: Path, kind, corrupt) -> None:
    bad = tmp_path / "bad.png"
    corrupt(data_dir / MIAS_PNG, bad)
    with pytest.raises(RuntimeError, match=str(bad)):
        _load(bad)


def test_missing_image_file_is_refused_naming_the_item(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="item case"):
        _load(tmp_path / "absent.png")


def test_dicom_without_pixel_data_is_refused_naming_the_file(data_dir: Path, tmp_path: Path) -> None:
    ds = pydicom.dcmread(data_dir / DICOM)
    del ds.PixelData
    ds.save_as(tmp_path / "no_pixels.dcm")
    with pytest.raises(RuntimeError, match="no_pixels.dcm.*(no 'Pixel Data'|PixelData|pixel data)"):
        _load(tmp_path / "no_pixels.dcm")


def test_nan_voxel_in_nifti_is_refused_naming_the_file(data_dir: Path, tmp_path: Path) -> None:
    """Defect 8: one NaN voxel made the loss NaN and exported a NaN classifier."""
    img = nib.load(data_dir / NIFTI)
    volume = np.asarray(img.dataobj).astype(np.float32)
    volume[10, 10, 10] = np.nan
    nib.save(nib.Nifti1Image(volume, img.affine), tmp_path / "nan.nii.gz")
    with pytest.raises(InvalidInputError, match=r"nan\.nii\.gz' has 1 NaN/Inf"):
        _load(tmp_path / "nan.nii.gz")


def test_inf_in_an_in_memory_image_is_refused_naming_the_item(data_dir: Path) -> None:
    item = medmnist_datalist(data_dir / PNEUMONIA, "train", limit=1)[0]
    image = item["image"].astype(np.float32)
    image[0, 3, 3] = np.inf
    with pytest.raises(InvalidInputError, match=f"item {item['id']}"):
        EnsureImaged("image")({**item, "image": image})


def test_big_endian_nifti_loads(data_dir: Path) -> None:
    """The shared ``anatomical.nii`` is stored big-endian; torch refused it ('byte order') before."""
    volume = _load(data_dir / NIFTI, spatial_dims=3)
    assert volume.shape == (1, 33, 41, 25)
    assert float(volume.max()) == float(np.asarray(nib.load(data_dir / NIFTI).dataobj).max())


@pytest.mark.parametrize("fmt", ["png", "tif"])
def test_16bit_images_give_the_same_inputs_as_8bit(data_dir: Path, tmp_path: Path, fmt: str) -> None:
    """Defect 3: 16-bit PNGs went 99.4% white through the bundles' ScaleIntensityRanged(0, 255, clip=True)."""
    from monai.bundle import ConfigParser

    eight = np.asarray(Image.open(data_dir / MIAS_PNG))
    sixteen = tmp_path / f"mdb001_16.{fmt}"
    if fmt == "png":
        Image.fromarray(eight.astype(np.uint16) * 257).save(sixteen)
    else:
        tifffile.imwrite(sixteen, eight.astype(np.uint16) * 257)
    parser = ConfigParser()
    parser.read_config(bundle_config_files(bundle_dir("cxr"), "finetune"))
    parser["image_size"] = [64, 64]
    load = parser.get_parsed_content("load_transform")
    from_8 = load({"image": str(data_dir / MIAS_PNG)})["image"]
    from_16 = load({"image": str(sixteen)})["image"]
    assert float((from_16 >= 1.0).float().mean()) < 0.05  # not saturated
    assert torch.allclose(from_16, from_8, atol=1e-3)


def test_values_beyond_16_bits_in_a_tiff_are_refused(data_dir: Path, tmp_path: Path) -> None:
    eight = np.asarray(Image.open(data_dir / MIAS_PNG))
    tifffile.imwrite(tmp_path / "wide.tif", eight.astype(np.uint32) * 70000)
    with pytest.raises(InvalidInputError, match=r"wide\.tif' holds values up to .* beyond 16 bits"):
        _load(tmp_path / "wide.tif")


def test_rgb_image_for_a_grayscale_bundle_is_refused(data_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"ISIC_0024320\.jpg.*shape \(3, 224, 224\)"):
        _load(data_dir / HAM_JPG, channels=1)


def test_volume_for_a_2d_bundle_is_refused(data_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"anatomical\.nii.*spatial axes"):
        _load(data_dir / NIFTI, spatial_dims=2)


# ---- labels and CSVs -------------------------------------------------------------------------------------------


def _ham_csv(data_dir: Path, tmp_path: Path, edit: dict[int, str], rows: int = 12) -> Path:
    with open(data_dir / "ham10000_subset" / "labels.csv", newline="") as f:
        table = list(csv.DictReader(f))[:rows]
    for i, label in edit.items():
        table[i]["label"] = label
    path = tmp_path / "labels.csv"
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    return path


def _table(path: Path, data_dir: Path) -> tuple[list, list | None]:
    return table_datalist(
        path,
        "image_id",
        "label",
        base_dir=data_dir / "ham10000_subset" / "images",
        suffix=".jpg",
        patient_column="lesion_id",
    )


def test_csv_label_1_0_among_integers_is_refused_not_a_new_class(data_dir: Path, tmp_path: Path) -> None:
    """Defect 6: one '1.0' among integer labels became class 2, then failed as a bare IndexError."""
    items, names = _table(_ham_csv(data_dir, tmp_path, {}), data_dir)
    assert names is None and all(isinstance(i["label"], int) for i in items)  # the clean CSV still works
    with pytest.raises(InvalidInputError, match=r"item 4 \(.*ISIC.*\): label '1\.0' is a non-integer number among"):
        _table(_ham_csv(data_dir, tmp_path, {4: "1.0"}), data_dir)


def test_csv_class_name_among_integers_is_refused(data_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"item 2 .*label 'nv' is a name among integer labels"):
        _table(_ham_csv(data_dir, tmp_path, {2: "nv"}), data_dir)


def test_csv_without_the_label_column_is_refused_naming_the_columns(data_dir: Path) -> None:
    with pytest.raises(KeyError, match="no column 'diagnosis'; columns are image_id"):
        table_datalist(data_dir / "ham10000_subset" / "labels.csv", "image_id", "diagnosis")


def test_label_outside_num_classes_is_refused_naming_the_item(data_dir: Path) -> None:
    items = medmnist_datalist(data_dir / PNEUMONIA, "train", limit=16)
    items[5] = {**items[5], "label": 2}
    with pytest.raises(InvalidInputError, match=rf"training item 5 \({items[5]['id']}\): label 2 is outside 0\.\.1"):
        check_splits(items, None, num_classes=2)


def test_one_class_training_set_is_refused(data_dir: Path) -> None:
    """Defect 7a: a one-class training set trained without warning."""
    items = [i for i in medmnist_datalist(data_dir / PNEUMONIA, "train", limit=64) if i["label"] == 1]
    with pytest.raises(InvalidInputError, match="training set has one class only"):
        check_splits(items, None, num_classes=2)


def test_one_class_validation_set_is_refused(data_dir: Path) -> None:
    """Defect 7b: a one-class validation set gave val_auc NaN every epoch and selection kept epoch 1."""
    train = medmnist_datalist(data_dir / PNEUMONIA, "train", limit=64)
    val = [i for i in medmnist_datalist(data_dir / PNEUMONIA, "val", limit=64) if i["label"] == 0]
    with pytest.raises(InvalidInputError, match="validation set has one class only"):
        check_splits(train, val, num_classes=2)


def test_tiny_validation_set_is_warned_about(data_dir: Path, caplog) -> None:
    train = medmnist_datalist(data_dir / PNEUMONIA, "train", limit=64)
    val = medmnist_datalist(data_dir / PNEUMONIA, "val", limit=6)
    with caplog.at_level(logging.WARNING, logger="monai_remedis"):
        check_splits(train, val, num_classes=2)
    assert "too small for a reliable AUC" in caplog.text


def test_one_class_validation_is_refused_by_the_finetune_stage_before_training(data_dir: Path, tmp_path: Path) -> None:
    from monai_remedis.stages import FinetuneStage, OptimConfig

    train = medmnist_datalist(data_dir / PNEUMONIA, "train", limit=32)
    val = [i for i in medmnist_datalist(data_dir / PNEUMONIA, "val", limit=32) if i["label"] == 1]
    stage = FinetuneStage(
        create_backbone("bit_resnet18", in_channels=1),
        2,
        train,
        EnsureImaged("image"),
        tmp_path,
        val_datalist=val,
        val_transform=EnsureImaged("image"),
        optim=OptimConfig(max_epochs=1, batch_size=16),
    )
    with pytest.raises(InvalidInputError, match="validation set has one class only"):
        stage.run()
    assert not (tmp_path / "classifier.pt").exists()


def test_npz_with_a_pickled_object_array_is_refused(tmp_path: Path) -> None:
    np.savez(tmp_path / "evil.npz", train_images=np.array([{"a": 1}], dtype=object), train_labels=np.zeros((1, 1)))
    with pytest.raises(ValueError, match="allow_pickle=False"):
        medmnist_datalist(tmp_path / "evil.npz", "train")


# ---- checkpoints -----------------------------------------------------------------------------------------------


def test_checkpoint_of_another_architecture_is_refused(tmp_path: Path, caplog) -> None:
    """Defect 4: a bit_resnet34 file loaded into bit_resnet18 dropped 48 tensors (10.1M parameters) unreported."""
    torch.save(create_backbone("bit_resnet34", in_channels=1).state_dict(), tmp_path / "r34.pt")
    with pytest.raises(WeightsLoadError, match=r"r34\.pt: 48 tensors \(10,\d{3},\d{3} values\) .*no place"):
        load_backbone_weights(create_backbone("bit_resnet18", in_channels=1), tmp_path / "r34.pt")
    with caplog.at_level(logging.WARNING):
        load_backbone_weights(create_backbone("bit_resnet18", in_channels=1), tmp_path / "r34.pt", strict=False)
    assert caplog.text.count("dropped tensor") == 48


def test_classifier_and_ssl_heads_in_a_checkpoint_are_dropped_quietly(tmp_path: Path) -> None:
    from monai_remedis.models import Classifier

    model = Classifier(create_backbone("bit_resnet18", in_channels=1), 2)
    torch.save({"network": model.state_dict(), "optimizer": {}}, tmp_path / "ckpt.pt")
    target = create_backbone("bit_resnet18", in_channels=1)
    load_backbone_weights(target, tmp_path / "ckpt.pt")
    assert torch.equal(target.stem.conv.weight, model.backbone.stem.conv.weight)


class _Evil:
    def __reduce__(self):  # runs os.system on unpickling
        return (os.system, (f"touch {_Evil.marker}",))

    marker = ""


def test_malicious_pickle_checkpoint_is_refused_and_not_executed(tmp_path: Path) -> None:
    _Evil.marker = str(tmp_path / "pwned")
    torch.save({"state_dict": {"w": torch.zeros(1)}, "payload": _Evil()}, tmp_path / "evil.pt")
    with pytest.raises(WeightsLoadError, match=r"evil\.pt"):
        load_backbone_weights(create_backbone("bit_resnet18", in_channels=1), tmp_path / "evil.pt")
    assert not (tmp_path / "pwned").exists()


def test_truncated_checkpoint_is_refused_naming_the_file(tmp_path: Path) -> None:
    torch.save(create_backbone("bit_resnet18", in_channels=1).state_dict(), tmp_path / "full.pt")
    data = (tmp_path / "full.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsLoadError, match=r"cannot read weights file .*cut\.pt"):
        load_backbone_weights(create_backbone("bit_resnet18", in_channels=1), tmp_path / "cut.pt")


def test_checkpoint_without_a_state_dict_is_refused(tmp_path: Path) -> None:
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(WeightsLoadError, match=r"list\.pt holds no state dict"):
        load_backbone_weights(create_backbone("bit_resnet18", in_channels=1), tmp_path / "list.pt")


# ---- overrides and error reports -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "override, suggestion",
    [
        ("min_step", "--min_steps"),
        ("max_epoch", "--max_epochs"),
        ("finetune_optim#max_epoch", "--finetune_optim#max_epochs"),
    ],
)
def test_misspelt_override_fails_with_did_you_mean(capsys, override: str, suggestion: str) -> None:
    """Defect 5: --min_step 1 / --max_epoch 1 trained 60 epochs (458 s) instead of 1."""
    assert cli_main(["run", "cxr", "finetune", f"--{override}", "1"]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(f"monai-remedis: error: UnknownOverrideError: unknown override --{override}")
    assert f"Did you mean {suggestion}" in last


def test_misspelt_override_is_refused_by_monai_bundle_run_too() -> None:
    files = str(bundle_config_files(bundle_dir("cxr"), "finetune"))
    with pytest.raises(UnknownOverrideError, match="Did you mean --max_epochs"):
        check_bundle_argv(["run", "--config_file", files, "--max_epoch", "1"])
    check_bundle_argv(["run", "--config_file", files, "--max_epochs", "1", "--finetune_optim#batch_size", "8"])
    check_bundle_argv(["run", "--config_file", files, "--ssl_epochs", "1"])  # another stage's key: accepted, unused
    with pytest.raises(UnknownOverrideError, match="Did you mean --ssl_epochs"):
        check_bundle_argv(["run", "--config_file", files, "--ssl_epoch", "1"])


@pytest.mark.parametrize(
    "override, value, expected",
    [
        ("amp", "no", "expected True or False, like its default False"),  # 'no' is a true string
        ("linear_probe", "off", "expected True or False"),
        ("max_epochs", "three", "expected an integer, like its default 3"),
        ("max_epochs", "2.5", "expected an integer"),
        ("ssl_learning_rate", "fast", "expected a number"),
    ],
)
def test_override_of_the_wrong_kind_is_refused_naming_the_key(capsys, override: str, value: str, expected: str) -> None:
    """--amp no passed the string 'no' (true in Python: AMP on); --max_epochs three failed deep in a stage with
    "invalid literal for int()" and no key named."""
    assert cli_main(["run", "cxr", "finetune", f"--{override}", value]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(f"monai-remedis: error: OverrideValueError: --{override} ") and expected in last


def test_override_values_of_the_right_kind_and_expressions_pass() -> None:
    config = merged_config(bundle_config_files(bundle_dir("cxr"), "finetune"))
    check_override_values(
        {
            "amp": True,
            "max_epochs": 2,
            "ssl_learning_rate": 1,  # an integer is a number
            "finetune_backbone_lr_scale": 0.1,
            "batch_size": "$4 * 8",  # expressions are MONAI's to resolve
            "finetune_optim#max_epochs": 5,  # default '@finetune_epochs': not checked
            "output_dir": "runs/x",
            "sweep_seeds": [0, 1],
        },
        config,
    )
    with pytest.raises(OverrideValueError, match=r"--amp 1: expected True or False"):
        check_override_values({"amp": 1}, config)
    with pytest.raises(OverrideValueError, match=r"--max_epochs True: expected an integer"):
        check_override_values({"max_epochs": True}, config)


def test_override_of_the_wrong_kind_is_refused_by_monai_bundle_run_too() -> None:
    files = str(bundle_config_files(bundle_dir("cxr"), "finetune"))
    with pytest.raises(OverrideValueError, match=r"--amp 'false': expected True or False"):
        check_bundle_argv(["run", "--config_file", files, "--amp", "false"])
    check_bundle_argv(["run", "--config_file", files, "--amp", "False", "--max_epochs", "2", "--seed", "3"])


def test_stage_failure_ends_with_the_cause_not_monais_wrapper(tmp_path: Path) -> None:
    """A bad --finetune_init: the last line names the file; the traceback goes to a log file."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "monai_remedis",
            "run",
            "cxr",
            "finetune",
            "--limit",
            "16",
            "--output_dir",
            str(tmp_path),
            "--finetune_init",
            str(tmp_path / "missing.pt"),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "ignore", "TMPDIR": str(tmp_path)},
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == f"monai-remedis: error: FileNotFoundError: weights file not found: {tmp_path / 'missing.pt'}"
    assert "Failed to evaluate" not in lines[-1] and "Traceback" not in result.stderr
    log = next(tmp_path.glob("monai-remedis-error-*.log"))
    assert "Failed to evaluate" in log.read_text()  # the full chained traceback is kept


def test_monai_bundle_run_refuses_a_misspelt_override_and_ends_with_the_cause(tmp_path: Path) -> None:
    files = str(bundle_config_files(bundle_dir("cxr"), "finetune"))
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "TMPDIR": str(tmp_path)}
    command = [sys.executable, "-m", "monai.bundle", "run", "--config_file", files, "--output_dir", str(tmp_path)]
    typo = subprocess.run([*command, "--max_epoch", "1"], capture_output=True, text=True, timeout=300, env=env)
    assert typo.returncode == 1
    assert "Did you mean --max_epochs" in typo.stderr.strip().splitlines()[-1]
    missing = tmp_path / "missing.pt"
    failed = subprocess.run(
        [*command, "--limit", "16", "--finetune_init", str(missing)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    lines = failed.stderr.strip().splitlines()
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert lines[-2] == "monai-remedis: while evaluating '$@finetune.run(@train#trainer)'"
    assert lines[-1] == f"monai-remedis: error: FileNotFoundError: weights file not found: {missing}"


def test_none_override_is_not_dropped_by_monai_bundle() -> None:
    """``--finetune_init None`` (train from scratch) was dropped by monai.bundle's run(), which ignores None kwargs,
    so the stage silently used the default SSL checkpoint."""
    from monai_remedis.cli import _parse_overrides

    assert _parse_overrides(["--finetune_init", "None", "--max_epochs", "2"]) == {
        "finetune_init": "$None",
        "max_epochs": 2,
    }
    assert _parse_overrides(["--ssl_init", "null", "--strategy", "nullable"]) == {
        "ssl_init": "$None",  # null (YAML's spelling) means None too
        "strategy": "nullable",
    }


def test_yaml_booleans_on_the_command_line_are_booleans() -> None:
    """README's ``--tensorboard false`` passed the string 'false', which reads as true: TensorBoard stayed on."""
    from monai_remedis.cli import _parse_overrides

    assert _parse_overrides(["--tensorboard", "false", "--resume", "true", "--amp", "False"]) == {
        "tensorboard": False,
        "resume": True,
        "amp": False,
    }


@pytest.mark.parametrize("value", ["None", "null"])
def test_none_or_null_override_on_monai_bundle_run_is_refused_with_the_form_that_works(value: str) -> None:
    """``python -m monai.bundle run --ssl_init None`` kept the stage-1 init (MONAI drops None) and ``null`` arrived
    as the file name 'null': both are refused before anything runs, naming ``'$None'``."""
    from monai_remedis.config_check import NullOverrideError

    files = str(bundle_config_files(bundle_dir("cxr"), "ssl"))
    with pytest.raises(NullOverrideError, match=rf"--ssl_init {value}: .* write --ssl_init '\$None'"):
        check_bundle_argv(["run", "--config_file", files, "--ssl_init", value, "--max_epochs", "1"])
    check_bundle_argv(["run", "--config_file", files, "--ssl_init", "$None"])  # the expression is accepted
