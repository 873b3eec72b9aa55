"""MONAI's own bundle tools on every bundle's inference config (``monai_remedis/configs/inference.yaml``):
``check_properties``, ``verify_net_in_out``, ``ckpt_export`` (TorchScript equal to eager on real images) and the
inference workflow (the probabilities ``monai_remedis.inference`` computes for the same weights)."""

from __future__ import annotations

import ast
import csv
import json
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser, ConfigWorkflow, ckpt_export, download_large_files, verify_net_in_out

from monai_remedis.configs import bundle_config_files, bundle_dir, shared_configs
from monai_remedis.inference import image_items, load_bundle_model, predict_probabilities

BUNDLES = ("cxr", "dermatology", "fundus", "pathology", "mammography", "ct3d")
# Exporting and running every bundle takes ~25 s each: the default lane does it for the 2D and the 3D default, the
# slow lane for the rest (they differ in channels, classes, image size and reader).
EXPORT_PARAMS = [b if b in ("cxr", "ct3d") else pytest.param(b, marks=pytest.mark.slow) for b in BUNDLES]
NUM_IMAGES = 4
GRAYSCALE_DICOMS = ("CT_small.dcm", "MR_small.dcm", "RG1_UNCI.dcm", "MR2_UNCI.dcm")


def _image_folder(bundle: str, data_dir: Path, folder: Path) -> Path:
    """A folder of 4 real images of the bundle's modality, as a user's folder of new images (links, no copies;
    ct3d: AdrenalMNIST3D volumes written as NIfTI, the format a CT datalist holds)."""
    folder.mkdir(parents=True)
    if bundle == "ct3d":
        volumes = np.load(data_dir / "medmnist_adrenal3d" / "adrenalmnist3d.npz")["test_images"][:NUM_IMAGES]
        for i, volume in enumerate(volumes):
            nib.save(nib.Nifti1Image(volume.astype(np.uint8), np.eye(4)), folder / f"volume_{i}.nii.gz")
        return folder
    tiles = data_dir / "crc_he_tiles_tif" / "kather2016_150px"
    sources = {
        "cxr": [data_dir / "dicom_samples" / name for name in GRAYSCALE_DICOMS],
        "dermatology": sorted((data_dir / "ham10000_subset" / "images").glob("*.jpg"))[:NUM_IMAGES],
        "fundus": sorted((data_dir / "aptos2019_dr" / "images_128").glob("*.png"))[:NUM_IMAGES],
        "pathology": [sorted(d.glob("*.tif"))[0] for d in sorted(tiles.iterdir())][:NUM_IMAGES],  # 4 tissue classes
        "mammography": sorted((data_dir / "mini_mias_abnormal" / "images_512").rglob("*.png"))[:NUM_IMAGES],
    }[bundle]
    for source in sources:
        (folder / source.name).symlink_to(source)
    return folder


@dataclass(frozen=True)
class BundleCase:
    """A bundle's inference config list, a folder of its real images and (``exported``) weights under ``root``."""

    name: str
    files: list[str]
    meta_file: str
    root: Path
    images: Path

    @property
    def model_pt(self) -> Path:
        return self.root / "models" / "model.pt"

    @property
    def model_ts(self) -> Path:
        return self.root / "models" / "model.ts"


@pytest.fixture(scope="module", params=EXPORT_PARAMS)
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> BundleCase:
    """Random (untrained) weights for ``network_def`` with a non-zero head and feature statistics of real images,
    saved as ``models/model.pt`` and exported to ``models/model.ts`` by MONAI's ``ckpt_export``."""
    name = request.param
    root = tmp_path_factory.mktemp(name)
    folder = bundle_dir(name)
    bundle = BundleCase(
        name=name,
        files=bundle_config_files(folder, "inference"),
        meta_file=str(folder / "configs" / "metadata.json"),
        root=root,
        images=_image_folder(name, data_dir, root / "new_images"),
    )
    torch.manual_seed(0)
    parser = ConfigParser()
    parser.read_config(bundle.files)
    network = parser.get_parsed_content("network_def")
    torch.nn.init.normal_(network.head[-1].weight, std=0.05)
    network.train()
    with torch.no_grad():
        network(_real_batch(bundle, parser))  # the feature standardiser's running statistics from real images
    bundle.model_pt.parent.mkdir()
    torch.save(network.state_dict(), bundle.model_pt)
    ckpt_export(
        net_id="network_def",
        filepath=str(bundle.model_ts),
        ckpt_file=str(bundle.model_pt),
        meta_file=bundle.meta_file,
        config_file=bundle.files,
    )
    return bundle


@pytest.fixture(scope="module", params=BUNDLES)
def configured(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> BundleCase:
    """A bundle's inference config list and a folder of its real images (no weights)."""
    root = tmp_path_factory.mktemp(f"{request.param}_configs")
    folder = bundle_dir(request.param)
    return BundleCase(
        name=request.param,
        files=bundle_config_files(folder, "inference"),
        meta_file=str(folder / "configs" / "metadata.json"),
        root=root,
        images=_image_folder(request.param, data_dir, root / "new_images"),
    )


def _real_batch(bundle: BundleCase, parser: ConfigParser) -> torch.Tensor:
    transform = parser.get_parsed_content("preprocessing")
    return torch.stack([transform(item)["image"] for item in image_items(bundle.images)])


def _eager(bundle: BundleCase) -> tuple[torch.nn.Module, torch.Tensor]:
    parser = ConfigParser()
    parser.read_config(bundle.files)
    network = parser.get_parsed_content("network_def")
    network.load_state_dict(torch.load(bundle.model_pt, weights_only=True))
    return network.eval(), _real_batch(bundle, parser)


def _workflow(bundle: BundleCase, **overrides: object) -> ConfigWorkflow:
    return ConfigWorkflow(
        config_file=bundle.files,
        meta_file=bundle.meta_file,
        logging_file=str(shared_configs() / "logging.conf"),
        workflow_type="infer",
        images=str(bundle.images),
        output_dir=str(bundle.root),  # the bundle root: models/model.pt is read from it
        device="cpu",
        **overrides,
    )


def test_inference_config_list_is_printed_by_the_cli(capsys: pytest.CaptureFixture) -> None:
    from monai_remedis.cli import main

    assert main(["configs", "cxr", "inference"]) == 0
    files = [Path(f).name for f in ast.literal_eval(capsys.readouterr().out.strip())]
    assert files == ["base.yaml", "common.yaml", "inference.yaml"]


def test_check_properties_lists_what_a_stage_config_lacks() -> None:
    """The check bites: the fine-tune stage's list has no inference ids (MONAI 1.6 raises on the first one)."""
    folder = bundle_dir("cxr")
    workflow = ConfigWorkflow(
        config_file=bundle_config_files(folder, "finetune"),
        meta_file=str(folder / "configs" / "metadata.json"),
        logging_file=str(shared_configs() / "logging.conf"),
        workflow_type="infer",
    )
    workflow.initialize()
    with pytest.raises(KeyError, match="Property 'dataset'"):
        workflow.check_properties()


def test_inference_config_has_every_property_monai_requires(configured: BundleCase) -> None:
    workflow = _workflow(configured)
    workflow.initialize()
    assert workflow.check_properties() == []


def test_verify_net_in_out_passes(configured: BundleCase) -> None:
    verify_net_in_out(net_id="network_def", meta_file=configured.meta_file, config_file=configured.files, device="cpu")


def test_verify_net_in_out_catches_a_head_that_disagrees_with_the_metadata() -> None:
    folder = bundle_dir("cxr")
    with pytest.raises(ValueError, match="output channel number"):
        verify_net_in_out(
            net_id="network_def",
            meta_file=str(folder / "configs" / "metadata.json"),
            config_file=bundle_config_files(folder, "inference"),
            device="cpu",
            num_classes=3,
        )


def test_torchscript_export_equals_eager_on_real_images(exported: BundleCase) -> None:
    extra = {"metadata.json": ""}
    scripted = torch.jit.load(str(exported.model_ts), _extra_files=extra)
    network, batch = _eager(exported)
    with torch.no_grad():
        expected = network(batch)
        torch.testing.assert_close(scripted(batch), expected, atol=1e-5, rtol=0)
    assert expected.std() > 0.01  # the comparison is not between two constant outputs
    classes = json.loads(extra["metadata.json"])["network_data_format"]["outputs"]["pred"]["channel_def"]
    assert len(classes) == expected.shape[1]  # the exported file carries the class names


def test_inference_workflow_writes_the_probabilities_of_the_python_api(exported: BundleCase) -> None:
    workflow = _workflow(exported)
    workflow.initialize()
    workflow.run()
    workflow.finalize()
    with (exported.root / "inference" / "predictions.csv").open() as f:
        rows = list(csv.reader(f))
    items = image_items(exported.images)
    assert [row[0] for row in rows] == [item["id"] for item in items]
    written = np.array([[float(v) for v in row[1:]] for row in rows])
    np.testing.assert_allclose(written.sum(axis=1), 1.0, atol=1e-5)
    model = load_bundle_model(exported.name, exported.model_pt)
    expected = predict_probabilities(model.classifier, items, model.transform)
    np.testing.assert_allclose(written, expected, atol=1e-5)
    assert written.shape == (NUM_IMAGES, len(model.class_names))


@pytest.mark.parametrize("bundle", BUNDLES)
def test_large_files_fetches_a_local_copy_of_the_weights(bundle: str, tmp_path: Path) -> None:
    """The procedure large_files.yml describes, offline: a file:// URL and MONAI's download_large_files."""
    spec = ConfigParser.load_config_file(str(bundle_dir(bundle) / "large_files.yml"))
    assert [entry["path"] for entry in spec["large_files"]] == ["models/model.pt"]
    if bundle != "cxr":
        return  # one bundle exercises the download; the files differ only in their comments
    kept = tmp_path / "shared_drive" / "cxr_model.pt"
    kept.parent.mkdir()
    torch.save({"head.1.weight": torch.ones(2, 3)}, kept)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    spec["large_files"][0]["url"] = kept.as_uri()
    (run_dir / "large_files.yml").write_text(json.dumps(spec))  # JSON is YAML
    download_large_files(bundle_path=str(run_dir))
    assert torch.equal(torch.load(run_dir / "models" / "model.pt")["head.1.weight"], torch.ones(2, 3))
