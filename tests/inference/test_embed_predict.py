"""``monai-remedis embed`` / ``predict`` on folders of real unlabelled images (PNG and DICOM)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from monai_remedis.backbones import create_backbone
from monai_remedis.cli import main
from monai_remedis.configs import bundle_parser
from monai_remedis.data import medmnist_datalist
from monai_remedis.evaluation.linear_probe import extract_features
from monai_remedis.inference import embed, image_items, load_bundle_model
from monai_remedis.models.classifier import Classifier

GRAYSCALE_2D_DICOM = ("CT_small.dcm", "MR_small.dcm", "RG1_UNCI.dcm", "RG3_J2KI.dcm", "MR2_UNCI.dcm")


def _link_images(source: Path, names: list[str], folder: Path) -> Path:
    """A folder of links to real images (nothing copied), as a user's folder of new images."""
    folder.mkdir(parents=True)
    for name in names:
        (folder / name).symlink_to(source / name)
    return folder


@pytest.fixture
def cxr_backbone(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    path = tmp_path / "backbone.pt"
    torch.save(create_backbone(bundle_parser("cxr")["backbone"], in_channels=1).state_dict(), path)
    return path


@pytest.fixture
def cxr_classifier(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    model = Classifier(create_backbone(bundle_parser("cxr")["backbone"], in_channels=1), 2)
    torch.nn.init.normal_(model.head[-1].weight, std=0.5)
    path = tmp_path / "classifier.pt"
    torch.save(model.state_dict(), path)
    return path


def test_embed_a_folder_of_real_dicoms(data_dir: Path, cxr_backbone: Path, tmp_path: Path):
    folder = _link_images(data_dir / "dicom_samples", list(GRAYSCALE_2D_DICOM), tmp_path / "new_images")
    out = tmp_path / "emb.npz"
    assert main(["embed", "cxr", "--weights", str(cxr_backbone), "--images", str(folder), "-o", str(out)]) == 0
    saved = np.load(out)
    assert saved["features"].shape == (len(GRAYSCALE_2D_DICOM), 512)
    assert sorted(saved["ids"].tolist()) == sorted(GRAYSCALE_2D_DICOM)
    assert np.isfinite(saved["features"]).all() and "labels" not in saved
    assert np.unique(saved["features"].round(5), axis=0).shape[0] == len(GRAYSCALE_2D_DICOM)  # images differ


def test_predict_a_folder_of_real_pngs_writes_class_probabilities(data_dir: Path, tmp_path: Path):
    torch.manual_seed(0)
    model = Classifier(create_backbone(bundle_parser("fundus")["backbone"], in_channels=3), 5)
    torch.nn.init.normal_(model.head[-1].weight, std=0.5)
    weights = tmp_path / "classifier.pt"
    torch.save(model.state_dict(), weights)
    pngs = sorted(p.name for p in (data_dir / "aptos2019_dr" / "images_128").glob("*.png"))[:6]
    folder = _link_images(data_dir / "aptos2019_dr" / "images_128", pngs, tmp_path / "fundus")
    out = tmp_path / "pred.csv"
    assert main(["predict", "fundus", "--weights", str(weights), "--images", str(folder), "-o", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["id"] for r in rows] == pngs
    prob_columns = [c for c in rows[0] if c.startswith("p_")]
    assert len(prob_columns) == 5  # the classes of the fundus bundle's metadata channel_def
    for row in rows:
        probs = np.array([float(row[c]) for c in prob_columns])
        assert probs.sum() == pytest.approx(1.0, abs=1e-5)
        assert row["prediction"] == prob_columns[int(probs.argmax())][2:]


def test_predict_csv_columns_are_the_bundles_class_names(data_dir: Path, cxr_classifier: Path, tmp_path: Path):
    folder = _link_images(data_dir / "dicom_samples", ["RG1_UNCI.dcm"], tmp_path / "one")
    out = tmp_path / "pred.csv"
    assert main(["predict", "cxr", "--weights", str(cxr_classifier), "--images", str(folder), "-o", str(out)]) == 0
    header = out.read_text().splitlines()[0].split(",")
    assert header == ["id", "image", "prediction", "p_normal", "p_pneumonia"]


def test_predict_refuses_a_backbone_without_head(cxr_backbone: Path, data_dir: Path, tmp_path: Path, capsys):
    folder = _link_images(data_dir / "dicom_samples", ["RG1_UNCI.dcm"], tmp_path / "one")
    code = main(["predict", "cxr", "--weights", str(cxr_backbone), "--images", str(folder), "-o", str(tmp_path / "p")])
    assert code == 1
    assert "classifier.pt" in capsys.readouterr().err.strip().splitlines()[-1]


def test_embed_names_a_missing_folder(cxr_backbone: Path, tmp_path: Path, capsys):
    missing = tmp_path / "nowhere"
    assert main(["embed", "cxr", "--weights", str(cxr_backbone), "--images", str(missing)]) == 1
    assert str(missing) in capsys.readouterr().err


def test_embeddings_reproduce_the_frozen_probe(pneumonia_npz: Path, cxr_backbone: Path):
    """The features ``embed`` gives on unlabelled items are the linear probe's, so the probe AUC is the same."""
    model = load_bundle_model("cxr", cxr_backbone)
    splits = {s: medmnist_datalist(pneumonia_npz, s, limit=200) for s in ("train", "test")}
    ours = {
        s: embed(model.backbone, [{"image": it["image"]} for it in items], model.transform)
        for s, items in splits.items()
    }
    probe = {s: extract_features(model.backbone, items, model.transform) for s, items in splits.items()}
    aucs = []
    for features in (ours, {s: f.features.numpy() for s, f in probe.items()}):
        labels = {s: np.array([int(it["label"]) for it in items]) for s, items in splits.items()}
        clf = LogisticRegression(max_iter=2000).fit(features["train"], labels["train"])
        aucs.append(roc_auc_score(labels["test"], clf.predict_proba(features["test"])[:, 1]))
    np.testing.assert_allclose(ours["test"], probe["test"].features.numpy(), rtol=1e-5, atol=1e-6)
    assert aucs[0] == pytest.approx(aucs[1], abs=1e-9) and aucs[0] > 0.5


def test_image_items_reads_a_csv_and_a_datalist(tmp_path: Path, data_dir: Path):
    (tmp_path / "list.csv").write_text("path,site\na.png,x\n/abs/b.png,y\n")
    items = image_items(tmp_path / "list.csv")
    assert (
        items[0]["image"] == str(tmp_path / "a.png") and items[1]["image"] == "/abs/b.png" and items[1]["site"] == "y"
    )
    (tmp_path / "dl.json").write_text('{"training": [{"image": "a.png", "label": 1}], "test": [{"image": "c.png"}]}')
    assert [it["image"] for it in image_items(tmp_path / "dl.json", "test")] == [str(tmp_path / "c.png")]
    assert len(image_items(tmp_path / "dl.json")) == 2
    with pytest.raises(KeyError, match="validation"):
        image_items(tmp_path / "dl.json", "validation")
