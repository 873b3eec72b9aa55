"""Reading real DICOM / NIfTI / TIFF / PNG / JPEG / PGM files the way a model should see them."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import tifffile
from monai.data import PILReader
from monai.transforms import LoadImaged
from PIL import Image

from monai_remedis.data.readers import (
    MedicalDicomReader,
    MedicalImageReader,
    TiffReader,
    UnreadableDatalistError,
    UnreadableImageError,
    check_readable,
    load_image_transforms,
    read_dicom_image,
    read_image,
)

DATA = Path(os.environ.get("REMEDIS_DATA", Path(__file__).resolve().parents[2] / ".." / "shared" / "data"))
DICOM = DATA / "dicom_samples"
NIFTI = DATA / "nifti_samples"
TIFF = DATA / "crc_he_tiles_tif"
MIAS = DATA / "mini_mias_abnormal"
HAM = DATA / "ham10000_subset"

# channel-first, x (columns) before y (rows), frames last -- see the readers module docstring
DICOM_SHAPES = {
    "693_UNCI.dcm": (1, 512, 512),
    "CT_small.dcm": (1, 128, 128),
    "MR-SIEMENS-DICOM-WithOverlays.dcm": (1, 484, 484),
    "MR2_UNCI.dcm": (1, 1024, 1024),
    "MR_small.dcm": (1, 64, 64),
    "RG1_UNCI.dcm": (1, 1841, 1955),
    "RG3_J2KI.dcm": (1, 1760, 1760),
    "US1_UNCI.dcm": (3, 640, 480),
    "emri_small.dcm": (1, 64, 64, 10),
}
NIFTI_SHAPES = {  # after EnsureChannelFirst: 4D files have their 4th axis as channels
    "anatomical.nii": (1, 33, 41, 25),
    "functional.nii": (20, 17, 21, 3),
    "example4d.nii.gz": (2, 128, 96, 24),
    "dipy_S0_10slices.nii.gz": (1, 128, 128, 10),
    "dipy_aniso_vox.nii.gz": (1, 58, 58, 24),
}

needs_dicom = pytest.mark.skipif(not DICOM.is_dir(), reason=f"{DICOM} not found (set REMEDIS_DATA)")


@functools.cache
def _dicom(name: str, apply_voi: bool | tuple[float, float] = False, voi_index: int = 0):
    return read_dicom_image(DICOM / name, apply_voi=apply_voi, voi_index=voi_index)


@functools.cache
def _raw(name: str) -> tuple[np.ndarray, pydicom.Dataset]:
    ds = pydicom.dcmread(DICOM / name)
    return ds.pixel_array, ds


def _rows_cols(arr: np.ndarray) -> np.ndarray:
    """Single-channel 2D reader output -> the usual (rows, columns) view."""
    return arr[0].T


def _chest_regions(img: np.ndarray) -> tuple[float, float]:
    """Mean of a central (mediastinum/spine) band and of both lung fields of the RG1 chest radiograph."""
    h, w = img.shape
    rows = slice(h // 3, 2 * h // 3)
    mediastinum = img[rows, w // 2 - w // 20 : w // 2 + w // 20].mean()
    lungs = (img[rows, w // 5 : w // 3].mean() + img[rows, 2 * w // 3 : 4 * w // 5].mean()) / 2
    return float(mediastinum), float(lungs)


# ------------------------------------------------------------------------------------------------ DICOM


@needs_dicom
def test_the_dicom_table_covers_every_sample_file():
    assert sorted(p.name for p in DICOM.glob("*.dcm")) == sorted(DICOM_SHAPES)


@needs_dicom
@pytest.mark.parametrize("name", sorted(DICOM_SHAPES))
def test_every_dicom_sample_reads_as_float32_channel_first(name):
    arr, meta = _dicom(name)
    assert arr.dtype == np.float32
    assert arr.shape == DICOM_SHAPES[name]
    assert np.isfinite(arr).all()
    assert arr.std() > 0  # not a blank decode
    assert meta["filename_or_obj"].endswith(name)


@needs_dicom
def test_monochrome1_chest_is_inverted_so_bone_and_mediastinum_are_bright():
    raw, ds = _raw("RG1_UNCI.dcm")
    assert ds.PhotometricInterpretation == "MONOCHROME1" and ds.BitsStored == 15
    arr, meta = _dicom("RG1_UNCI.dcm")
    img = _rows_cols(arr)
    np.testing.assert_array_equal(img, (2**15 - 1) - raw.astype(np.float32))  # inverted over the 15-bit range
    h, w = img.shape
    mediastinum = img[h // 3 : 2 * h // 3, w // 2 - w // 20 : w // 2 + w // 20].mean()
    lungs = np.mean(
        [img[h // 3 : 2 * h // 3, w // 5 : w // 3].mean(), img[h // 3 : 2 * h // 3, 2 * w // 3 : 4 * w // 5].mean()]
    )
    assert mediastinum > lungs + 3000
    assert meta["inverted"] and meta["photometric_interpretation"] == "MONOCHROME1"


@needs_dicom
def test_monochrome1_stays_inverted_when_voi_is_applied():
    img = _rows_cols(_dicom("RG1_UNCI.dcm", True)[0])
    assert 0.0 <= img.min() and img.max() <= 1.0
    h, w = img.shape
    assert (
        img[h // 3 : 2 * h // 3, w // 2 - w // 20 : w // 2 + w // 20].mean()
        > img[h // 3 : 2 * h // 3, w // 5 : w // 3].mean()
    )


@needs_dicom
def test_jpeg2000_monochrome1_extremity_decodes_and_is_inverted():
    raw, ds = _raw("RG3_J2KI.dcm")
    assert "JPEG 2000" in ds.file_meta.TransferSyntaxUID.name
    img = _rows_cols(_dicom("RG3_J2KI.dcm")[0])
    assert img.shape == (ds.Rows, ds.Columns)
    np.testing.assert_array_equal(img, 1023 - raw.astype(np.float32))  # 10-bit, inverted
    h, w = img.shape
    band = slice(h // 4, h // 2)
    air_beside_leg = img[band, int(0.3 * w) - 10 : int(0.3 * w) + 10].mean()
    tibia = img[band, w // 2 - 10 : w // 2 + 10].mean()
    assert air_beside_leg < 200 and tibia > air_beside_leg + 400


def test_the_jpeg2000_decoder_is_a_declared_dependency():
    """pydicom decodes JPEG 2000 with Pillow's OpenJPEG: Pillow must be a requirement of its own, not arrive by
    chance through matplotlib."""
    from packaging.requirements import Requirement  # pytest's own dependency
    from PIL import features

    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    requirements = [Requirement(r) for r in tomllib.loads(pyproject.read_text())["project"]["dependencies"]]
    pillow = next((r for r in requirements if r.name.lower() == "pillow"), None)
    assert pillow is not None and "10" in str(pillow.specifier), requirements
    assert features.check("jpg_2000")


@needs_dicom
def test_ct_is_in_hounsfield_units():
    raw, ds = _raw("CT_small.dcm")
    img = _rows_cols(_dicom("CT_small.dcm")[0])
    np.testing.assert_array_equal(img, raw * float(ds.RescaleSlope) + float(ds.RescaleIntercept))
    assert -1100 < img[:10, :10].mean() < -700  # air in the corner
    assert -100 < np.median(img[40:90, 40:90]) < 150  # soft tissue


@needs_dicom
def test_ct_with_bitsstored_mismatch_reads_in_hounsfield_units():
    img = _rows_cols(_dicom("693_UNCI.dcm")[0])
    hist, edges = np.histogram(img[img > -2000], bins=np.arange(-1500, 1500, 50))
    assert -1050 <= edges[np.argmax(hist)] <= -950  # the commonest value inside the field of view is air
    assert 0 < np.median(img[200:300, 200:300]) < 80  # brain


@needs_dicom
def test_16_bit_mr_keeps_full_precision_and_rescale():
    raw, ds = _raw("MR2_UNCI.dcm")
    assert ds.BitsAllocated == 16 and float(ds.RescaleSlope) != 1.0
    arr, meta = _dicom("MR2_UNCI.dcm")
    img = _rows_cols(arr)
    np.testing.assert_allclose(img, raw * float(ds.RescaleSlope) + float(ds.RescaleIntercept), rtol=1e-6)
    assert len(np.unique(img)) > 256 and img.max() > 255
    np.testing.assert_allclose(meta["spacing"], [0.195313, 0.195313], rtol=1e-5)  # oblique plane, true pixel size


@needs_dicom
def test_file_window_maps_to_unit_range_like_pydicom():
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    raw, ds = _raw("MR_small.dcm")
    img = _rows_cols(_dicom("MR_small.dcm", True)[0])
    expected = apply_voi_lut(apply_modality_lut(raw, ds), ds)
    y_min, y_max = -(2 ** (ds.BitsStored - 1)), 2 ** (ds.BitsStored - 1) - 1  # pydicom's signed output range
    np.testing.assert_allclose(img, (expected - y_min) / (y_max - y_min), atol=1e-6)
    assert img.min() >= 0 and img.max() == pytest.approx(1.0)


@needs_dicom
def test_voi_index_selects_between_the_files_windows():
    _, ds = _raw("MR-SIEMENS-DICOM-WithOverlays.dcm")
    assert len(ds.WindowCenter) == 2
    first = _dicom("MR-SIEMENS-DICOM-WithOverlays.dcm", True, 0)[0]
    second = _dicom("MR-SIEMENS-DICOM-WithOverlays.dcm", True, 1)[0]
    assert not np.allclose(first, second)
    assert 0 <= first.min() and second.max() <= 1


@needs_dicom
def test_explicit_ct_window_in_hounsfield_units():
    hu = _rows_cols(_dicom("CT_small.dcm")[0])
    win = _rows_cols(_dicom("CT_small.dcm", (40.0, 400.0))[0])
    assert np.all(win[hu <= -160] == 0) and np.all(win[hu >= 240] == 1)
    inside = (hu > -160) & (hu < 240)
    np.testing.assert_allclose(win[inside], (hu[inside] + 160) / 400, atol=1e-6)


@needs_dicom
def test_multiframe_is_read_as_a_volume_with_frames_last():
    raw, _ = _raw("emri_small.dcm")
    arr, meta = _dicom("emri_small.dcm")
    assert raw.shape == (10, 64, 64) and arr.shape == (1, 64, 64, 10)
    for k in (0, 4, 9):
        np.testing.assert_array_equal(arr[0, :, :, k], raw[k].T)
    assert tuple(meta["spatial_shape"]) == (64, 64, 10) and meta["number_of_frames"] == 10


def _rescale_group(slope: float, intercept: float) -> pydicom.Dataset:
    """A functional-group item holding a Pixel Value Transformation macro."""
    transformation = pydicom.Dataset()
    transformation.RescaleSlope, transformation.RescaleIntercept, transformation.RescaleType = slope, intercept, "US"
    group = pydicom.Dataset()
    group.PixelValueTransformationSequence = pydicom.Sequence([transformation])
    return group


@needs_dicom
def test_enhanced_multiframe_rescale_comes_from_the_functional_groups(tmp_path):
    """Enhanced MR/CT keep slope/intercept in the functional groups, where pydicom's apply_modality_lut does not
    look; the reader applies the shared values, and a frame's own values where it has them."""
    plain, _ = _dicom("emri_small.dcm")
    ds = pydicom.dcmread(DICOM / "emri_small.dcm")
    assert "RescaleSlope" not in ds and "SharedFunctionalGroupsSequence" not in ds
    ds.SharedFunctionalGroupsSequence = pydicom.Sequence([_rescale_group(2, -100)])
    ds.save_as(tmp_path / "shared.dcm")
    shared, meta = read_dicom_image(tmp_path / "shared.dcm")
    np.testing.assert_array_equal(shared, 2 * plain - 100)
    assert meta["intensity"].startswith("functional_groups")
    ds.PerFrameFunctionalGroupsSequence = pydicom.Sequence(
        [_rescale_group(3, 5) if k == 4 else pydicom.Dataset() for k in range(10)]
    )
    ds.save_as(tmp_path / "per_frame.dcm")
    per_frame, _ = read_dicom_image(tmp_path / "per_frame.dcm")
    np.testing.assert_array_equal(per_frame[..., 4], 3 * plain[..., 4] + 5)
    np.testing.assert_array_equal(np.delete(per_frame, 4, axis=-1), np.delete(shared, 4, axis=-1))


@needs_dicom
def test_rgb_ultrasound_has_three_channels():
    raw, ds = _raw("US1_UNCI.dcm")
    arr, meta = _dicom("US1_UNCI.dcm")
    assert ds.PhotometricInterpretation == "RGB"
    for c in range(3):
        np.testing.assert_array_equal(arr[c], raw[..., c].T)
    assert not np.array_equal(arr[0], arr[2])  # real colour content, not grey copies
    assert tuple(meta["spatial_shape"]) == (640, 480)


@needs_dicom
def test_mr_with_overlays_reads_pixel_data_only():
    raw, ds = _raw("MR-SIEMENS-DICOM-WithOverlays.dcm")
    assert (0x6000, 0x3000) in ds  # Overlay Data
    arr, meta = _dicom("MR-SIEMENS-DICOM-WithOverlays.dcm")
    np.testing.assert_array_equal(_rows_cols(arr), raw)  # overlay not burnt in
    np.testing.assert_allclose(meta["spacing"], [0.72314, 0.72314], rtol=1e-4)


@needs_dicom
def test_loadimaged_with_the_dicom_reader_matches_read_dicom_image():
    load = LoadImaged(keys="image", reader=MedicalDicomReader(), ensure_channel_first=True)
    for name in ("emri_small.dcm", "US1_UNCI.dcm", "MR_small.dcm"):
        out = load({"image": str(DICOM / name)})["image"]
        np.testing.assert_array_equal(out.numpy(), _dicom(name)[0])


@needs_dicom
def test_corrupt_dicom_errors_name_the_file(tmp_path):
    not_dicom = tmp_path / "garbage.dcm"
    not_dicom.write_bytes(b"\x00" * 64 + b"not a dicom file")
    with pytest.raises(UnreadableImageError, match="garbage.dcm"):
        read_dicom_image(not_dicom)

    ds = pydicom.dcmread(DICOM / "CT_small.dcm")
    ds.PixelData = ds.PixelData[:1000]  # truncated pixel data: header fine, decoding fails
    truncated = tmp_path / "truncated_ct.dcm"
    ds.save_as(truncated)
    with pytest.raises(UnreadableImageError, match="truncated_ct.dcm"):
        read_dicom_image(truncated)
    with pytest.raises(Exception, match="truncated_ct.dcm"):
        LoadImaged(keys="image", reader=MedicalDicomReader())({"image": str(truncated)})


# ------------------------------------------------------------------------------------------------ NIfTI


@pytest.mark.skipif(not NIFTI.is_dir(), reason=f"{NIFTI} not found")
@pytest.mark.parametrize("name", sorted(NIFTI_SHAPES))
def test_nifti_is_reoriented_to_ras(name):
    arr, meta = read_image(NIFTI / name, axcodes="RAS")
    assert arr.shape == NIFTI_SHAPES[name] and arr.dtype == np.float32
    assert nib.aff2axcodes(np.asarray(meta["affine"])) == ("R", "A", "S")
    canonical = nib.as_closest_canonical(nib.load(NIFTI / name))  # nibabel's own RAS reorientation
    expected = canonical.get_fdata(dtype=np.float32)
    expected = expected[None] if expected.ndim == 3 else np.moveaxis(expected, -1, 0)
    np.testing.assert_array_equal(arr, expected)
    np.testing.assert_allclose(np.asarray(meta["affine"]), canonical.affine, atol=1e-4)


@pytest.mark.skipif(not NIFTI.is_dir(), reason=f"{NIFTI} not found")
def test_nifti_transform_chain_reorients_an_las_volume():
    src = nib.load(NIFTI / "anatomical.nii")
    assert nib.aff2axcodes(src.affine) == ("L", "A", "S")
    out = load_image_transforms(keys="image", axcodes="RAS")({"image": str(NIFTI / "anatomical.nii")})["image"]
    assert nib.aff2axcodes(out.affine.numpy()) == ("R", "A", "S")
    original = np.asarray(src.dataobj, dtype=np.float32)
    np.testing.assert_array_equal(out[0].numpy(), original[::-1])  # L->R flips the first axis only


# ------------------------------------------------------------------------------------------------ TIFF


def _real_tiles() -> list[Path]:
    return sorted(TIFF.glob("**/*.tif")) if TIFF.is_dir() else []


def test_all_real_he_tiles_read_as_rgb_matching_tifffile_and_pil():
    tiles = _real_tiles()
    if not tiles:
        pytest.skip(f"{TIFF} not found")
    assert len(tiles) == 33
    for tile in tiles:
        arr, meta = read_image(tile)
        raw = tifffile.imread(tile)
        assert raw.ndim == 3 and raw.shape[-1] == 3
        assert arr.shape == (3, raw.shape[1], raw.shape[0])
        np.testing.assert_array_equal(arr, np.transpose(raw, (2, 1, 0)))
        assert meta["tiff_axes"] == "YXS"
    pil, _ = read_image(tiles[0], reader=PILReader())
    np.testing.assert_array_equal(read_image(tiles[0])[0], pil)  # same layout as MONAI's PILReader


def test_multipage_tiff_pages_become_the_last_axis(tmp_path):
    pages = np.random.default_rng(0).integers(0, 4096, size=(5, 40, 56), dtype=np.uint16)
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, pages)
    arr, meta = read_image(path)
    assert arr.shape == (1, 56, 40, 5) and arr.dtype == np.float32
    for k in range(5):
        np.testing.assert_array_equal(arr[0, :, :, k], pages[k].T)
    # through LoadImaged the dispatching reader must not fall back to PIL, which reads only the first page
    out = load_image_transforms(keys="image")({"image": str(path)})["image"]
    assert tuple(out.shape) == (1, 56, 40, 5)


def test_tiled_compressed_rgb_tiff(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 256, size=(200, 264, 3), dtype=np.uint8)
    path = tmp_path / "tiled.tiff"
    tifffile.imwrite(path, rgb, tile=(64, 64), compression="zlib", photometric="rgb")
    with tifffile.TiffFile(path) as tif:
        assert tif.pages[0].is_tiled
    arr, _ = read_image(path)
    np.testing.assert_array_equal(arr, np.transpose(rgb, (2, 1, 0)))


def test_multipage_rgb_tiff_keeps_channels_first_and_pages_last(tmp_path):
    rgb_pages = np.random.default_rng(2).integers(0, 256, size=(3, 32, 48, 3), dtype=np.uint8)
    path = tmp_path / "rgb_stack.tif"
    tifffile.imwrite(path, rgb_pages, photometric="rgb")
    out = LoadImaged(keys="image", reader=TiffReader(), ensure_channel_first=True)({"image": str(path)})["image"]
    assert tuple(out.shape) == (3, 48, 32, 3)
    np.testing.assert_array_equal(out[:, :, :, 2].numpy(), np.transpose(rgb_pages[2], (2, 1, 0)))


def test_corrupt_tiff_error_names_the_file(tmp_path):
    bad = tmp_path / "broken_tile.tif"
    bad.write_bytes(b"II*\x00" + b"\xff" * 20)
    with pytest.raises(UnreadableImageError, match="broken_tile.tif"):
        read_image(bad)


# ------------------------------------------------------------------------------------------------ PNG / JPEG / PGM


@pytest.mark.skipif(not MIAS.is_dir(), reason=f"{MIAS} not found")
def test_mini_mias_pgm_and_png_decode_consistently():
    pgm, _ = read_image(MIAS / "original_pgm" / "mdb001_benign.pgm")
    png, _ = read_image(MIAS / "images_512" / "benign" / "mdb001.png")
    assert pgm.shape == (1, 1024, 1024) and png.shape == (1, 512, 512)
    assert 0 <= pgm.min() and pgm.max() <= 255
    np.testing.assert_array_equal(_rows_cols(pgm), np.asarray(Image.open(MIAS / "original_pgm" / "mdb001_benign.pgm")))
    downsampled = pgm[0].reshape(512, 2, 512, 2).mean(axis=(1, 3))  # SOURCE.md: PNG = 2x box-downsampled PGM
    assert np.abs(downsampled - png[0]).max() <= 1.0


@pytest.mark.skipif(not HAM.is_dir(), reason=f"{HAM} not found")
def test_ham10000_jpegs_are_rgb():
    for path in sorted((HAM / "images").glob("*.jpg"))[:5]:
        arr, meta = read_image(path)
        assert arr.shape == (3, 224, 224) and arr.dtype == np.float32
        np.testing.assert_array_equal(arr, np.transpose(np.asarray(Image.open(path)), (2, 1, 0)))
        assert not np.array_equal(arr[0], arr[2])


def test_unknown_file_type_is_refused_by_name(tmp_path):
    odd = tmp_path / "scan.xyz"
    odd.write_bytes(b"123")
    with pytest.raises(UnreadableImageError, match="scan.xyz"):
        read_image(odd)
    assert not MedicalImageReader().verify_suffix(str(odd))


# ------------------------------------------------------------------------------------------------ datalist check


@needs_dicom
def test_check_readable_is_strict_by_default_and_can_skip(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 10)
    datalist = [
        {"image": str(DICOM / "MR_small.dcm")},
        {"image": str(tmp_path / "missing.dcm")},
        {"image": str(DICOM / "CT_small.dcm")},
        {"image": str(broken)},
    ]
    with pytest.raises(UnreadableDatalistError) as excinfo:
        check_readable(datalist)
    message = str(excinfo.value)
    assert "2 of 4" in message and "[1]" in message and "missing.dcm" in message and "[3]" in message
    assert "broken.png" in message
    assert [f.index for f in excinfo.value.failures] == [1, 3]

    ok, failures = check_readable(datalist, skip_unreadable=True)
    assert ok == [datalist[0], datalist[2]]
    assert [f.path for f in failures] == [datalist[1]["image"], datalist[3]["image"]]

    ok, failures = check_readable([datalist[0], datalist[2]])
    assert len(ok) == 2 and failures == []


@needs_dicom
def test_voi_lut_sequence_is_preferred_over_the_window_and_scaled_by_its_bit_depth():
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    from monai_remedis.data.readers import dicom_intensities

    raw, _ = _raw("MR_small.dcm")
    ds = pydicom.dcmread(DICOM / "MR_small.dcm")  # a private copy to modify
    lut = np.minimum(np.arange(4096) * 16, 65535)
    item = Dataset()
    item.add_new(0x00283002, "US", [4096, 0, 16])  # LUT Descriptor: entries, first mapped value, bits
    item.add_new(0x00283006, "US", lut.tolist())  # LUT Data
    ds.VOILUTSequence = Sequence([item])
    assert "WindowCenter" in ds
    values, info = dicom_intensities(raw, ds, apply_voi=True)
    np.testing.assert_allclose(values, lut[raw] / 65535, rtol=1e-6)
    assert info["intensity"] == "modality_lut+voi_lut[0]"


@needs_dicom
def test_dicom_series_folder_is_stacked_by_instance_number(tmp_path):
    for k in range(3):
        ds = pydicom.dcmread(DICOM / "CT_small.dcm")
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [-158.135803, -179.035797, -75.7 + 2.5 * k]
        ds.PixelData = (ds.pixel_array + 100 * k).astype(np.int16).tobytes()
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
        ds.save_as(tmp_path / f"slice_{2 - k}.dcm")  # file names in reverse order
    arr, meta = read_dicom_image(tmp_path)
    hu = _dicom("CT_small.dcm")[0][0]
    assert arr.shape == (1, 128, 128, 3)
    for k in range(3):
        np.testing.assert_array_equal(arr[0, :, :, k], hu + 100 * k)
    np.testing.assert_allclose(meta["spacing"], [0.661468, 0.661468, 2.5], rtol=1e-5)
