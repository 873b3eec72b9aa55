"""The app inside the real monailabel package, in process: infer, label, train, infer again, next image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.monailabel
pytest.importorskip("monailabel", reason="monailabel not installed: run with the app's venv (docs/monailabel.md)")

CXR_CLASSES = ["normal", "pneumonia"]


def label_images(datastore, truth: dict[str, int], ids: list[str], tmp_path: Path) -> None:
    """Save a ``final`` class label for ``ids`` the way a client does (a JSON label file + label info)."""
    from remedis_label.labels import LABEL_TAG, write_label_file

    for image_id in ids:
        name = CXR_CLASSES[truth[image_id]]
        label = write_label_file(tmp_path / f"{image_id}.json", name)
        datastore.save_label(image_id, str(label), LABEL_TAG, {"label": name})


def test_infer_train_publish_and_select_on_real_cxr(
    tmp_path: Path, app_copy: Path, cxr_encoder: Path, cxr_studies: tuple[Path, dict[str, int]]
) -> None:
    from monailabel.interfaces.utils.app import app_instance, clear_cache

    studies, truth = cxr_studies
    conf = {"models": "cxr", "cxr_encoder": str(cxr_encoder), "model_dir": str(tmp_path / "model")}
    clear_cache()
    app = app_instance(str(app_copy), str(studies), conf)
    info = app.info()
    assert info["models"]["cxr"]["type"] == "classification"
    assert info["models"]["cxr"]["labels"] == {"normal": 0, "pneumonia": 1}
    assert {"cxr_coverage", "cxr_uncertainty"} <= set(info["strategies"])

    image = sorted(truth)[0]
    before = app.infer({"model": "cxr", "image": image, "embedding": True})["params"]
    assert before["trained"] is False and set(before["probabilities"]) == set(CXR_CLASSES)
    assert before["probabilities"]["pneumonia"] == pytest.approx(0.5, abs=1e-6) and len(before["embedding"]) == 512

    datastore = app.datastore()
    label_images(datastore, truth, sorted(truth)[1:9], tmp_path)
    stats = app.train({"model": "cxr", "max_epochs": 1, "min_steps": 4})
    assert stats["num_labels"] == 8 and set(stats["class_counts"]) == set(CXR_CLASSES)
    assert Path(stats["published"]).is_file() and app.info()["train_stats"]["cxr"]["num_labels"] == 8

    after = app.infer({"model": "cxr", "image": image})["params"]
    assert after["trained"] is True and after["weights"] == stats["published"]
    assert after["probabilities"]["pneumonia"] != pytest.approx(0.5, abs=1e-4)
    assert sum(after["probabilities"].values()) == pytest.approx(1.0)

    for strategy, method in (("cxr_coverage", "coverage"), ("cxr_uncertainty", "uncertainty")):
        pick = app.next_sample({"strategy": strategy, "count": 5})
        unlabelled = set(datastore.get_unlabeled_images())
        assert pick["method"] == method and pick["id"] in unlabelled
        assert len(pick["ranking"]) == 5 and {r["id"] for r in pick["ranking"]} <= unlabelled


def test_train_refuses_labels_of_one_class(
    tmp_path: Path, app_copy: Path, cxr_encoder: Path, cxr_studies: tuple[Path, dict[str, int]]
) -> None:
    from monailabel.interfaces.utils.app import app_instance, clear_cache

    studies, truth = cxr_studies
    conf = {"models": "cxr", "cxr_encoder": str(cxr_encoder), "model_dir": str(tmp_path / "model")}
    clear_cache()
    app = app_instance(str(app_copy), str(studies), conf)
    normals = [i for i in sorted(truth) if truth[i] == 0][:3]
    label_images(app.datastore(), truth, normals, tmp_path)
    with pytest.raises(ValueError, match="at least two classes"):
        app.train({"model": "cxr", "max_epochs": 1})


def test_fundus_grades_from_channel_def_train_and_rank(
    tmp_path: Path, app_copy: Path, fundus_encoder: Path, fundus_studies: tuple[Path, dict[str, int]]
) -> None:
    from monailabel.interfaces.utils.app import app_instance, clear_cache
    from remedis_label.labels import LABEL_TAG, write_label_file

    studies, truth = fundus_studies
    conf = {"models": "fundus", "fundus_encoder": str(fundus_encoder), "model_dir": str(tmp_path / "model")}
    clear_cache()
    app = app_instance(str(app_copy), str(studies), conf)
    grades = ["no DR", "mild", "moderate", "severe", "proliferative"]
    assert app.info()["models"]["fundus"]["labels"] == {g: i for i, g in enumerate(grades)}
    for image_id in sorted(truth)[:6]:
        label = write_label_file(tmp_path / f"{image_id}.json", str(truth[image_id]))  # an index works too
        app.datastore().save_label(image_id, str(label), LABEL_TAG, {})
    stats = app.train({"model": "fundus", "max_epochs": 1, "min_steps": 2})
    assert stats["num_labels"] == 6 and sum(stats["class_counts"].values()) == 6
    result = app.infer({"model": "fundus", "image": sorted(truth)[-1], "embedding": True})["params"]
    assert result["trained"] is True and list(result["probabilities"]) == grades
    assert sum(result["probabilities"].values()) == pytest.approx(1.0) and len(result["embedding"]) == 512
    pick = app.next_sample({"strategy": "fundus_uncertainty", "count": 4})
    assert pick["method"] == "uncertainty" and pick["id"] in sorted(truth)[6:]


def test_dicom_files_in_the_datastore(
    tmp_path: Path, app_copy: Path, cxr_encoder: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Radiographs stored as DICOM (MONOCHROME2 and JPEG 2000) once the datastore lists ``*.dcm``."""
    from monailabel.config import settings
    from monailabel.interfaces.utils.app import app_instance, clear_cache

    monkeypatch.setattr(settings, "MONAI_LABEL_DATASTORE_FILE_EXT", ["*.dcm", "*.png"])
    studies = tmp_path / "dicom_studies"
    studies.mkdir()
    for name in ("RG1_UNCI.dcm", "RG3_J2KI.dcm", "MR_small.dcm"):
        (studies / name).symlink_to(data_dir / "dicom_samples" / name)
    conf = {"models": "cxr", "cxr_encoder": str(cxr_encoder), "model_dir": str(tmp_path / "model")}
    clear_cache()
    app = app_instance(str(app_copy), str(studies), conf)
    assert sorted(app.datastore().list_images()) == ["MR_small", "RG1_UNCI", "RG3_J2KI"]
    result = app.infer({"model": "cxr", "image": "RG3_J2KI", "embedding": True})["params"]
    assert set(result["probabilities"]) == set(CXR_CLASSES) and len(result["embedding"]) == 512
    embeddings = app.runtimes["cxr"].embeddings([app.datastore().get_image_uri(i) for i in ("RG1_UNCI", "RG3_J2KI")])
    assert not np.allclose(embeddings[0], embeddings[1])
    assert app.next_sample({"strategy": "cxr_coverage", "count": 3})["id"] in {"MR_small", "RG1_UNCI", "RG3_J2KI"}
