"""Reading medical images through MONAI's ``LoadImage`` machinery.

What this module adds on top of MONAI and pydicom (it configures or subclasses them, it does not re-implement them):

* :class:`MedicalDicomReader` -- a :class:`monai.data.PydicomReader` whose pixel values are display-correct:
  the Modality LUT / rescale slope and intercept is applied (CT comes out in HU; enhanced multi-frame objects per
  frame from their functional groups, see :func:`frame_datasets`), MONOCHROME1 is inverted so that
  high values are bright tissue as in MONOCHROME2, a VOI LUT or window is applied on request (``apply_voi``),
  values are float32 (16-bit data is never squeezed to 8 bits), multi-frame files become a volume with the frames
  on the last spatial axis, and RGB / YBR / PALETTE COLOR files become three channels. Plain ``PydicomReader``
  gets the last two wrong (it swaps the frame axis into the image plane and treats RGB samples as a spatial axis).
* :class:`TiffReader` -- a tifffile-based :class:`monai.data.ImageReader` for ordinary TIFF files: single page,
  multi-page (pages become the last spatial axis), tiled, compressed, RGB. MONAI only reads TIFF through PIL
  (first page only) or ITK, and its ``TiffFileWSIReader`` is for whole-slide patches, not for ``LoadImage``.
* :class:`MedicalImageReader` -- picks the reader from the file name (DICOM, NIfTI via ``NibabelReader``, TIFF,
  PNG/JPEG/PGM via ``PILReader``), so one ``LoadImaged`` handles a mixed datalist.
* :func:`read_image`, :func:`read_dicom_image`: one call from a path to ``(float32 channel-first array,
  metadata)``; ``axcodes="RAS"`` reorients NIfTI volumes.
* :func:`load_image_transforms`: the same as a dictionary transform chain (``axcodes`` adds ``Orientationd``).

Array layout: every reader here follows MONAI's convention (as ``PILReader`` with ``reverse_indexing=True`` and
``PydicomReader`` with ``swap_ij=True`` do): channel first, then x (columns), then y (rows), then frames / pages /
slices. An image of ``Rows x Columns`` pixels is returned with shape ``(C, Columns, Rows)``; transpose the two
spatial axes (``arr[0].T``) to get the familiar row-major view. Pass ``swap_ij=False`` / ``reverse_indexing=False``
to the readers to keep row-major order.

Unreadable images:

* Reading a single image never fails silently: :func:`read_image` and friends raise :class:`UnreadableImageError`
  whose message starts with the file path (``LoadImage`` pipelines raise either that error or MONAI's
  ``RuntimeError`` "cannot find a suitable reader for file: <path>").
* For datasets, check the datalist once, before training, with :func:`check_readable`. By default it is strict:
  it decodes every image and raises :class:`UnreadableDatalistError` listing *every* unreadable item
  (index, path, error). With ``skip_unreadable=True`` it returns ``(ok_items, failures)`` instead, so a caller
  can drop the bad files explicitly and log the :class:`ReadFailure` records. Unreadable files are never
  dropped silently inside a ``Dataset``/``DataLoader``.

JPEG 2000 DICOM (e.g. ``RG3_J2KI.dcm``) needs a pydicom decoder plugin. Pillow built with OpenJPEG (Pillow >= 10
wheels are) is enough; ``pylibjpeg`` + ``pylibjpeg-openjpeg`` decode to identical pixels.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from monai.config import KeysCollection, PathLike
from monai.data import ImageReader, NibabelReader, PILReader, PydicomReader
from monai.data.image_reader import _copy_compatible_dict, _stack_images  # MONAI's own stacking rules
from monai.transforms import Compose, EnsureChannelFirst, LoadImage, LoadImaged, Orientation, Orientationd
from monai.utils import MetaKeys, ensure_tuple
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi, apply_windowing

__all__ = [
    "DICOM_SUFFIXES",
    "NIFTI_SUFFIXES",
    "PIL_SUFFIXES",
    "TIFF_SUFFIXES",
    "MedicalDicomReader",
    "MedicalImageReader",
    "ReadFailure",
    "TiffReader",
    "UnreadableDatalistError",
    "UnreadableImageError",
    "VoiOption",
    "check_readable",
    "dicom_intensities",
    "frame_datasets",
    "load_image_transforms",
    "read_dicom_image",
    "read_image",
]

DICOM_SUFFIXES = (".dcm", ".dicom")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
TIFF_SUFFIXES = (".tif", ".tiff")
PIL_SUFFIXES = (".png", ".jpg", ".jpeg", ".pgm", ".ppm", ".pbm", ".pnm", ".bmp", ".gif")

VoiOption = bool | tuple[float, float]
"""``False``: no VOI; ``True``: the file's VOI LUT or window; ``(center, width)``: that window, in modality units."""


class UnreadableImageError(RuntimeError):
    """An image file could not be opened or decoded. The message starts with the file path.

    Args:
        path: the file (or files) that failed.
        reason: what went wrong, usually the underlying exception.
    """

    def __init__(self, path: PathLike | Sequence[PathLike], reason: object) -> None:
        names = [str(p) for p in ensure_tuple(path)]
        self.path = names[0] if len(names) == 1 else ", ".join(names)
        self.reason = str(reason)
        super().__init__(f"{self.path}: cannot read image: {self.reason}")


@dataclass(frozen=True)
class ReadFailure:
    """One unreadable datalist entry, as reported by :func:`check_readable`.

    Attributes:
        index: position of the item in the datalist.
        path: the image path (``str`` of the item's image entry).
        error: exception type and message.
    """

    index: int
    path: str
    error: str

    def __str__(self) -> str:
        return f"[{self.index}] {self.path}: {self.error}"


class UnreadableDatalistError(ValueError):
    """Raised by :func:`check_readable` in strict mode; ``failures`` holds every :class:`ReadFailure`.

    Args:
        failures: the unreadable items.
        total: number of items checked.
    """

    def __init__(self, failures: Sequence[ReadFailure], total: int, max_listed: int = 20) -> None:
        self.failures = list(failures)
        lines = [str(f) for f in self.failures[:max_listed]]
        if len(self.failures) > max_listed:
            lines.append(f"... and {len(self.failures) - max_listed} more")
        super().__init__(
            f"{len(self.failures)} of {total} images are unreadable "
            "(pass skip_unreadable=True to drop them explicitly):\n  " + "\n  ".join(lines)
        )


# ----------------------------------------------------------------------------------------------------------------
# DICOM
# ----------------------------------------------------------------------------------------------------------------


def _stored_value_range(ds: Dataset) -> np.ndarray:
    """Smallest and largest value representable with the dataset's Bits Stored and Pixel Representation."""
    bits = int(ds.get("BitsStored", ds.get("BitsAllocated", 16)))
    if int(ds.get("PixelRepresentation", 0)) == 1:
        return np.array([-(2 ** (bits - 1)), 2 ** (bits - 1) - 1])
    return np.array([0, 2**bits - 1])


def _modality_range(ds: Dataset) -> tuple[float, float]:
    """Range of the Modality LUT output over all representable stored values (used to invert MONOCHROME1)."""
    ends = np.asarray(apply_modality_lut(_stored_value_range(ds), ds), dtype=np.float64)
    return float(ends.min()), float(ends.max())


def _has_voi_lut(ds: Dataset) -> bool:
    seq = ds.get("VOILUTSequence")
    return bool(seq) and all(k in seq[0] for k in ("LUTDescriptor", "LUTData"))


def _file_voi(values: np.ndarray, ds: Dataset, index: int) -> np.ndarray | None:
    """Apply the file's VOI LUT (preferred) or window with pydicom and scale its output range to [0, 1].

    Returns ``None`` when the file has neither.
    """
    if _has_voi_lut(ds):
        bits = int(ds.VOILUTSequence[index].LUTDescriptor[2])
        lut_input = np.rint(values).astype(np.int64)  # VOI LUTs are indexed by integer modality values
        return np.asarray(apply_voi(lut_input, ds, index=index), dtype=np.float64) / (2**bits - 1)
    if "WindowCenter" in ds and "WindowWidth" in ds:
        with np.errstate(over="ignore"):
            y_lo, y_hi = apply_windowing(np.array([-1e30, 1e30]), ds, index=index)  # the window's output range
            out = apply_windowing(np.asarray(values, dtype=np.float64), ds, index=index)
        return (out - y_lo) / (y_hi - y_lo)
    return None


def _apply_voi(values: np.ndarray, ds: Dataset, voi: VoiOption, index: int) -> tuple[np.ndarray, str]:
    """Map modality values to [0, 1] display values; returns the values and a description for the metadata."""
    if not isinstance(voi, bool):
        center, width = (float(v) for v in voi)
        if width <= 0:
            raise ValueError(f"window width must be > 0, got {width}")
        return np.clip((values - (center - width / 2)) / width, 0.0, 1.0), f"window(center={center}, width={width})"
    out = _file_voi(values, ds, index)
    if out is not None:
        kind = "voi_lut" if _has_voi_lut(ds) else "window"
        return np.clip(out, 0.0, 1.0), f"{kind}[{index}]"
    lo, hi = _modality_range(ds)  # no VOI in the file: the full representable range
    return (values - lo) / max(hi - lo, 1e-12), "full_range"


def dicom_intensities(
    pixels: np.ndarray,
    ds: Dataset,
    apply_voi: VoiOption = False,
    voi_index: int = 0,
    invert_monochrome1: bool = True,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Turn decoded DICOM pixels into float32 display-correct intensities.

    Grayscale: Modality LUT / rescale (pydicom's ``apply_modality_lut``), then optionally the VOI, then
    MONOCHROME1 inversion; enhanced multi-frame objects that keep rescale or window in their functional groups are
    processed frame by frame with each frame's values (:func:`frame_datasets`). Without VOI, MONOCHROME1 values
    ``v`` become ``lo + hi - v`` where ``[lo, hi]`` is the modality range of all representable stored values (so
    the mapping does not depend on image content); with VOI, the [0, 1] output becomes ``1 - v``. Colour: PALETTE
    COLOR is expanded with the palette, RGB is kept (pydicom already converted YBR to RGB when decoding).

    Args:
        pixels: ``ds.pixel_array`` (frames first for multi-frame, samples last for colour).
        ds: the dataset the pixels came from.
        apply_voi: ``False`` for modality values (HU for CT), ``True`` for the file's VOI LUT or window
            (``voi_index`` picks one of several), or ``(center, width)`` for an explicit linear window in modality
            units. With VOI the output is in [0, 1]; a file without VOI is scaled from its full range. Colour
            data are never windowed (returned as stored, 0-255 for 8-bit).
        voi_index: which VOI LUT / window to use when the file holds several.
        invert_monochrome1: invert MONOCHROME1 so that high values are bright.

    Returns:
        float32 array of the same shape (PALETTE COLOR gains a trailing RGB axis) and a dict describing what was
        applied (keys ``photometric_interpretation``, ``intensity``, ``inverted``).

    Raises:
        ValueError: an explicit window with non-positive width.
    """
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    info: dict[str, Any] = {"photometric_interpretation": photometric, "inverted": False}
    if photometric == "PALETTE COLOR":
        info["intensity"] = "palette"
        return np.asarray(apply_color_lut(pixels, ds), dtype=np.float32), info
    if not photometric.startswith("MONOCHROME"):
        info["intensity"] = "stored"
        return np.asarray(pixels, dtype=np.float32), info
    invert = photometric == "MONOCHROME1" and invert_monochrome1
    frames = pixels.reshape(-1, *pixels.shape[-2:])  # grayscale: (rows, cols) or (frames, rows, cols)
    views = frame_datasets(ds, len(frames))
    if views is None:
        values, steps = _grayscale(pixels, ds, apply_voi, voi_index, invert)
    else:  # enhanced multi-frame: each frame with its own functional-group rescale / window
        done = [_grayscale(f, view, apply_voi, voi_index, invert) for f, view in zip(frames, views, strict=True)]
        values = np.stack([v for v, _ in done]).reshape(pixels.shape)
        steps = ["functional_groups", *done[0][1]]
    info["inverted"] = invert
    info["intensity"] = "+".join(steps)
    return values.astype(np.float32), info


def _grayscale(
    pixels: np.ndarray, ds: Dataset, apply_voi: VoiOption, voi_index: int, invert: bool
) -> tuple[np.ndarray, list[str]]:
    """Modality LUT, optional VOI and MONOCHROME1 inversion of grayscale pixels (see :func:`dicom_intensities`)."""
    values = np.asarray(apply_modality_lut(pixels, ds), dtype=np.float64)
    steps = ["modality_lut"]
    if apply_voi is not False:
        values, voi_desc = _apply_voi(values, ds, apply_voi, voi_index)
        steps.append(voi_desc)
    if invert:
        if apply_voi is False:
            lo, hi = _modality_range(ds)
            values = lo + hi - values
        else:
            values = 1.0 - values
        steps.append("inverted")
    return values, steps


# Functional-group macros of enhanced (multi-frame) objects that hold what pydicom reads from the top level.
_FRAME_MACROS = ("PixelValueTransformationSequence", "FrameVOILUTSequence")
# Top-level attributes pydicom's LUT functions and the inversion read.
_PIXEL_VALUE_KEYWORDS = (
    "PhotometricInterpretation",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "ModalityLUTSequence",
    "RescaleSlope",
    "RescaleIntercept",
    "RescaleType",
    "VOILUTSequence",
    "WindowCenter",
    "WindowWidth",
    "VOILUTFunction",
)


def frame_datasets(ds: Dataset, num_frames: int | None = None) -> list[Dataset] | None:
    """Per-frame pixel-value attributes of an enhanced multi-frame dataset, as plain datasets pydicom can apply.

    Enhanced CT / MR / XA objects store Rescale Slope/Intercept (Pixel Value Transformation macro) and Window
    Center/Width (Frame VOI LUT macro) in the Shared or Per-Frame Functional Groups Sequence, not at the top level
    where pydicom 3's ``apply_modality_lut``/``apply_rescale`` and ``apply_voi_lut`` look (they ignore functional
    groups). Each returned dataset holds the top-level pixel-value attributes of ``ds`` overridden by the shared
    group's macros and then by the frame's own, so those pydicom functions apply the right values per frame.

    Args:
        ds: the dataset.
        num_frames: number of frames (default: Number of Frames).

    Returns:
        one dataset per frame, or None when no functional group holds either macro.
    """
    shared = (ds.get("SharedFunctionalGroupsSequence") or [None])[0]
    per_frame = list(ds.get("PerFrameFunctionalGroupsSequence") or [])
    if not any(g is not None and any(g.get(m) for m in _FRAME_MACROS) for g in [shared, *per_frame]):
        return None
    count = int(num_frames if num_frames is not None else ds.get("NumberOfFrames", 1) or 1)
    views = []
    for index in range(count):
        view = Dataset()
        for keyword in _PIXEL_VALUE_KEYWORDS:
            if keyword in ds:
                view.add(ds[keyword])
        if hasattr(ds, "file_meta"):
            view.file_meta = ds.file_meta  # transfer syntax: byte order of OW LUT data
        for group in (shared, per_frame[index] if index < len(per_frame) else None):
            for macro in _FRAME_MACROS:
                if group is not None and group.get(macro):
                    for elem in group[macro][0]:
                        view.add(elem)
        views.append(view)
    return views


def _frames_last(arr: np.ndarray, ds: Dataset) -> np.ndarray:
    """Move the frame axis of a multi-frame ``pixel_array`` behind the image plane (before colour samples)."""
    if int(ds.get("NumberOfFrames", 1) or 1) <= 1:
        return arr
    has_samples = int(ds.get("SamplesPerPixel", 1)) > 1 or arr.ndim == 4
    return np.moveaxis(arr, 0, 2 if has_samples else -1)


def _is_color(ds: Dataset) -> bool:
    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    return int(ds.get("SamplesPerPixel", 1)) > 1 or photometric == "PALETTE COLOR"


class MedicalDicomReader(PydicomReader):
    """``PydicomReader`` that returns display-correct float32 intensities (see :func:`dicom_intensities`).

    Usage::

        LoadImaged(keys="image", reader=MedicalDicomReader(apply_voi=False), ensure_channel_first=True)

    Differences from ``PydicomReader``: MONOCHROME1 inversion, optional VOI, Modality LUT sequences, float32
    output, multi-frame files as ``(x, y, frames)`` volumes, colour files with a channel axis (``(3, x, y)``
    after ``EnsureChannelFirst``), file names in every error, and metadata keys ``photometric_interpretation``,
    ``intensity``, ``inverted``, ``modality`` and ``number_of_frames``. Affines are MONAI's: derived from
    Image Position/Orientation (Patient) when present, identity otherwise (projection radiographs, most
    multi-frame files).

    Args:
        apply_voi: see :func:`dicom_intensities`.
        voi_index: which VOI LUT / window to apply when the file holds several.
        invert_monochrome1: invert MONOCHROME1 so that high values are bright.
        kwargs: further ``PydicomReader`` arguments (``swap_ij``, ``affine_lps_to_ras``, ``prune_metadata``, ...).
    """

    def __init__(
        self,
        apply_voi: VoiOption = False,
        voi_index: int = 0,
        invert_monochrome1: bool = True,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("to_gpu"):
            raise ValueError("MedicalDicomReader reads on the CPU only (to_gpu=True is not supported)")
        super().__init__(**kwargs)
        self.apply_voi = apply_voi
        self.voi_index = voi_index
        self.invert_monochrome1 = invert_monochrome1
        self._intensity_info: dict[int, dict[str, Any]] = {}

    def verify_suffix(self, filename: Sequence[PathLike] | PathLike) -> bool:
        """Accept ``.dcm``/``.dicom`` files, series folders, and suffix-less files that carry a DICOM preamble."""
        return all(_format_of(name) == "dicom" for name in ensure_tuple(filename))

    def read(self, data: Sequence[PathLike] | PathLike, **kwargs: Any) -> Any:
        """Read the dataset(s) header and pixel bytes with pydicom.

        Args:
            data: a file, a series folder, or a list of them.
            kwargs: arguments for ``pydicom.dcmread``.

        Raises:
            UnreadableImageError: naming the file when pydicom cannot parse it.
        """
        try:
            return super().read(data, **kwargs)
        except Exception as e:  # pydicom raises several unrelated types
            raise UnreadableImageError(data, f"{type(e).__name__}: {e}") from e

    def get_data(self, data: Any) -> tuple[np.ndarray, dict]:
        """Decode the pixels; see ``PydicomReader.get_data``. Colour data get ``original_channel_dim = -1``.

        Raises:
            UnreadableImageError: naming the file when the pixel data cannot be decoded.
        """
        self._intensity_info = {}
        color = any(_is_color(ds) for ds in _flatten_datasets(data))
        saved_channel_dim = self.channel_dim
        if color and self.channel_dim is None:
            self.channel_dim = -1
        try:
            arr, meta = super().get_data(data)
        finally:
            self.channel_dim = saved_channel_dim
        if color:  # PydicomReader counts the colour axis as spatial
            meta[MetaKeys.SPATIAL_SHAPE] = tuple(meta[MetaKeys.SPATIAL_SHAPE])[: arr.ndim - 1]
        meta["spacing"] = _voxel_spacing(meta[MetaKeys.ORIGINAL_AFFINE], len(meta[MetaKeys.SPATIAL_SHAPE]))
        return arr, meta

    def _get_array_data(self, img: Dataset, filename: PathLike) -> np.ndarray:
        try:
            pixels = img.pixel_array
        except Exception as e:
            raise UnreadableImageError(filename, f"cannot decode pixel data ({type(e).__name__}: {e})") from e
        values, info = dicom_intensities(pixels, img, self.apply_voi, self.voi_index, self.invert_monochrome1)
        self._intensity_info[id(img)] = info  # picked up by _get_meta_dict for the same dataset
        return _frames_last(values, img)

    def _get_meta_dict(self, img: Dataset) -> dict:
        meta = super()._get_meta_dict(img)
        meta.update(self._intensity_info.get(id(img), {}))
        meta.update(modality=str(img.get("Modality", "")), number_of_frames=int(img.get("NumberOfFrames", 1) or 1))
        return meta


def _voxel_spacing(affine: np.ndarray, spatial_dims: int) -> np.ndarray:
    """Length of each voxel axis in world space.

    ``monai.data.utils.affine_to_spacing`` only looks at the top-left ``r x r`` block, which is wrong for a 2D
    slice whose columns or rows point along z (oblique or sagittal/coronal planes, e.g. ``MR2_UNCI.dcm``).
    """
    affine = np.asarray(affine, dtype=np.float64)
    spacing = np.linalg.norm(affine[: affine.shape[0] - 1, :spatial_dims], axis=0)
    spacing[spacing == 0] = 1.0
    return spacing


def _flatten_datasets(data: Any) -> list[Dataset]:
    if isinstance(data, Dataset):
        return [data]
    return [ds for item in data for ds in _flatten_datasets(item)]


# ----------------------------------------------------------------------------------------------------------------
# TIFF
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class _TiffImage:
    array: np.ndarray
    axes: str
    filename: str


class TiffReader(ImageReader):
    """Read TIFF files with tifffile for ``LoadImage`` (single page, multi-page, tiled, compressed, RGB).

    Axes: ``Y``/``X`` are the image plane, ``S`` (samples, e.g. RGB) or ``C`` become the channel axis, every other
    axis tifffile reports (pages ``I``/``Q``, ``Z``, ``T``...) is folded into one trailing spatial axis. The array
    has shape ``(X, Y[, pages][, C])`` (or ``(Y, X, ...)`` with ``reverse_indexing=False``), like ``PILReader``.
    The affine is the identity. Pixel values keep the file's dtype (``LoadImage`` casts to float32).

    Args:
        series: which tifffile series to read (0: the main image).
        level: pyramid level for pyramidal files (0: full resolution).
        reverse_indexing: put x before y, matching ``PILReader``'s default.
    """

    def __init__(self, series: int = 0, level: int = 0, reverse_indexing: bool = True) -> None:
        super().__init__()
        self.series = series
        self.level = level
        self.reverse_indexing = reverse_indexing

    def verify_suffix(self, filename: Sequence[PathLike] | PathLike) -> bool:
        """``.tif`` / ``.tiff`` files only."""
        return all(_format_of(name) == "tiff" for name in ensure_tuple(filename))

    def read(self, data: Sequence[PathLike] | PathLike, **kwargs: Any) -> _TiffImage | list[_TiffImage]:
        """Decode each file fully (the file is closed on return).

        Args:
            data: a file or a list of files (stacked as channels by ``get_data``).
            kwargs: unused, for API compatibility.

        Raises:
            UnreadableImageError: naming the file when tifffile cannot open or decode it.
        """
        images = [self._read_one(name) for name in ensure_tuple(data)]
        return images[0] if len(images) == 1 else images

    def _read_one(self, name: PathLike) -> _TiffImage:
        import tifffile

        try:
            with tifffile.TiffFile(name) as tif:
                level = tif.series[self.series].levels[self.level]
                return _TiffImage(np.asarray(level.asarray()), str(level.axes), str(name))
        except Exception as e:
            raise UnreadableImageError(name, f"{type(e).__name__}: {e}") from e

    def get_data(self, img: _TiffImage | Sequence[_TiffImage]) -> tuple[np.ndarray, dict]:
        """Return ``(array, metadata)``; several files are stacked along a new first (channel) axis."""
        arrays: list[np.ndarray] = []
        meta: dict = {}
        for one in ensure_tuple(img):
            arr, one_meta = self._one_image(one)
            arrays.append(arr)
            _copy_compatible_dict(one_meta, meta)
        return _stack_images(arrays, meta), meta

    def _one_image(self, img: _TiffImage) -> tuple[np.ndarray, dict]:
        arr, axes = img.array, img.axes
        if len(axes) != arr.ndim or "Y" not in axes or "X" not in axes:
            raise UnreadableImageError(img.filename, f"unexpected TIFF axes {axes!r} for shape {arr.shape}")
        channel_axes = [i for i, a in enumerate(axes) if a in "SC"]
        if len(channel_axes) > 1:
            raise UnreadableImageError(img.filename, f"more than one channel axis in TIFF axes {axes!r}")
        plane = [axes.index("X"), axes.index("Y")] if self.reverse_indexing else [axes.index("Y"), axes.index("X")]
        other = [i for i in range(arr.ndim) if i not in plane and i not in channel_axes]
        arr = np.transpose(arr, plane + other + channel_axes)
        spatial = arr.shape[:2] + ((int(np.prod(arr.shape[2 : 2 + len(other)])),) if other else ())
        arr = arr.reshape(spatial + arr.shape[2 + len(other) :])
        meta = {
            MetaKeys.SPATIAL_SHAPE: np.asarray(spatial),
            MetaKeys.AFFINE: np.eye(len(spatial) + 1),
            MetaKeys.ORIGINAL_AFFINE: np.eye(len(spatial) + 1),
            MetaKeys.ORIGINAL_CHANNEL_DIM: -1 if channel_axes else float("nan"),
            "tiff_axes": axes,
        }
        return arr, meta


# ----------------------------------------------------------------------------------------------------------------
# Dispatch by file type
# ----------------------------------------------------------------------------------------------------------------


def _format_of(name: PathLike) -> str:
    """``"dicom"``/``"nifti"``/``"tiff"``/``"pil"``/``"unknown"`` from the file name (DICOM preamble as fallback)."""
    lower = str(name).lower()
    for fmt, suffixes in (
        ("nifti", NIFTI_SUFFIXES),
        ("tiff", TIFF_SUFFIXES),
        ("pil", PIL_SUFFIXES),
        ("dicom", DICOM_SUFFIXES),
    ):
        if lower.endswith(suffixes):
            return fmt
    path = Path(name)
    if path.is_dir() or (path.is_file() and pydicom.misc.is_dicom(path)):
        return "dicom"
    return "unknown"


@dataclass
class _Dispatched:
    reader: ImageReader
    image: Any
    filenames: tuple[str, ...]


class MedicalImageReader(ImageReader):
    """One ``ImageReader`` for mixed datalists: picks the reader from the file name.

    DICOM (``.dcm``, folders, suffix-less DICOM) -> :class:`MedicalDicomReader`; NIfTI -> ``NibabelReader``;
    TIFF -> :class:`TiffReader`; PNG/JPEG/PGM/BMP -> ``PILReader``. Errors name the file.

    Args:
        dicom_reader: reader for DICOM, default ``MedicalDicomReader()``.
        nifti_reader: reader for NIfTI, default ``NibabelReader()``.
        tiff_reader: reader for TIFF, default ``TiffReader()``.
        pil_reader: reader for PNG/JPEG/PGM, default ``PILReader()``.
    """

    def __init__(
        self,
        dicom_reader: ImageReader | None = None,
        nifti_reader: ImageReader | None = None,
        tiff_reader: ImageReader | None = None,
        pil_reader: ImageReader | None = None,
    ) -> None:
        super().__init__()
        self.readers: dict[str, ImageReader] = {
            "dicom": dicom_reader or MedicalDicomReader(),
            "nifti": nifti_reader or NibabelReader(),
            "tiff": tiff_reader or TiffReader(),
            "pil": pil_reader or PILReader(),
        }

    def select(self, filename: Sequence[PathLike] | PathLike) -> ImageReader:
        """Return the reader for ``filename`` (all files of a list must have the same format).

        Raises:
            UnreadableImageError: unknown or mixed formats.
        """
        names = ensure_tuple(filename)
        formats = {_format_of(n) for n in names}
        if len(formats) != 1 or "unknown" in formats:
            raise UnreadableImageError(names, f"unsupported or mixed image formats {sorted(formats)}")
        return self.readers[formats.pop()]

    def verify_suffix(self, filename: Sequence[PathLike] | PathLike) -> bool:
        """True when every file has a format this reader knows."""
        formats = {_format_of(n) for n in ensure_tuple(filename)}
        return len(formats) == 1 and "unknown" not in formats

    def read(self, data: Sequence[PathLike] | PathLike, **kwargs: Any) -> _Dispatched:
        """Open the file(s) with the selected reader.

        Raises:
            UnreadableImageError: naming the file.
        """
        names = tuple(str(n) for n in ensure_tuple(data))
        reader = self.select(names)
        if not all(os.path.exists(n) for n in names):
            raise UnreadableImageError(names, "no such file")
        try:
            return _Dispatched(reader, reader.read(data, **kwargs), names)
        except UnreadableImageError:
            raise
        except Exception as e:
            raise UnreadableImageError(names, f"{type(e).__name__}: {e}") from e

    def get_data(self, img: _Dispatched) -> tuple[np.ndarray, dict]:
        """Decode with the reader chosen in :meth:`read`.

        Raises:
            UnreadableImageError: naming the file.
        """
        try:
            array, meta = img.reader.get_data(img.image)
        except UnreadableImageError:
            raise
        except Exception as e:
            raise UnreadableImageError(img.filenames, f"{type(e).__name__}: {e}") from e
        if isinstance(array, np.ndarray) and not array.dtype.isnative:  # big-endian NIfTI: torch refuses it
            array = array.astype(array.dtype.newbyteorder("="))
        return array, meta


# ----------------------------------------------------------------------------------------------------------------
# One-call readers and transform chains
# ----------------------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _loader() -> LoadImage:
    """One ``LoadImage`` for the one-call readers (building one constructs all of MONAI's default readers)."""
    return LoadImage(image_only=True, ensure_channel_first=False, dtype=np.float32)


def _load(path: PathLike | Sequence[PathLike], reader: ImageReader, axcodes: str | None) -> tuple[np.ndarray, dict]:
    img = _loader()(path, reader=reader)  # runtime reader: no silent fallback to MONAI's other readers
    img = EnsureChannelFirst()(img)
    if axcodes is not None:
        img = Orientation(axcodes=axcodes)(img)
    meta = dict(img.meta)
    return np.ascontiguousarray(img.numpy(), dtype=np.float32), meta


def read_image(
    path: PathLike | Sequence[PathLike],
    apply_voi: VoiOption = False,
    axcodes: str | None = None,
    reader: ImageReader | None = None,
) -> tuple[np.ndarray, dict]:
    """Read any supported image (DICOM, NIfTI, TIFF, PNG/JPEG/PGM) as a float32 channel-first array.

    Args:
        path: the image file (or a DICOM series folder, or a list of files stacked as channels).
        apply_voi: DICOM only, see :func:`dicom_intensities`.
        axcodes: reorient to these axis codes (e.g. ``"RAS"`` for NIfTI volumes); ``None`` keeps the file's order.
        reader: use this reader instead of ``MedicalImageReader(MedicalDicomReader(apply_voi))``.

    Returns:
        ``(array, meta)``: float32 ``(C, x, y[, z])`` array and MONAI's metadata (``affine``, ``spatial_shape``,
        ``filename_or_obj``, ...).

    Raises:
        UnreadableImageError: naming the file when it is missing, of unknown type, or cannot be decoded.
    """
    reader = reader or MedicalImageReader(dicom_reader=MedicalDicomReader(apply_voi=apply_voi))
    return _load(path, reader, axcodes)


def read_dicom_image(path: PathLike, apply_voi: VoiOption = False, **reader_kwargs: Any) -> tuple[np.ndarray, dict]:
    """Read a DICOM file (or series folder) with :class:`MedicalDicomReader`.

    Args:
        path: the DICOM file or series folder.
        apply_voi: ``False`` (modality values, HU for CT), ``True`` (file's VOI LUT/window, output in [0, 1]) or
            ``(center, width)``.
        reader_kwargs: further :class:`MedicalDicomReader` arguments.

    Returns:
        ``(array, meta)``: float32 channel-first array -- ``(1, x, y)`` grayscale, ``(1, x, y, frames)``
        multi-frame, ``(3, x, y)`` colour -- and the metadata dict (see :class:`MedicalDicomReader`).

    Raises:
        UnreadableImageError: naming the file.
    """
    return _load(path, MedicalDicomReader(apply_voi=apply_voi, **reader_kwargs), axcodes=None)


def load_image_transforms(
    keys: KeysCollection = "image",
    apply_voi: VoiOption = False,
    axcodes: str | None = None,
    reader: ImageReader | None = None,
) -> Compose:
    """``LoadImaged`` (any supported format, channel first, float32) plus optional ``Orientationd``.

    Args:
        keys: keys of the image paths in the data dicts.
        apply_voi: DICOM only, see :func:`dicom_intensities`.
        axcodes: e.g. ``"RAS"`` to reorient volumes; leave ``None`` for 2D images.
        reader: override the default ``MedicalImageReader``.

    Returns:
        a ``Compose`` to put at the start of a dictionary transform chain.
    """
    reader = reader or MedicalImageReader(dicom_reader=MedicalDicomReader(apply_voi=apply_voi))
    chain: list[Callable] = [LoadImaged(keys=keys, reader=reader, ensure_channel_first=True, dtype=np.float32)]
    if axcodes is not None:
        chain.append(Orientationd(keys=keys, axcodes=axcodes))
    return Compose(chain)


# ----------------------------------------------------------------------------------------------------------------
# Datalist check
# ----------------------------------------------------------------------------------------------------------------


def check_readable(
    datalist: Sequence[dict],
    reader_fn: Callable[[Any], Any] | None = None,
    key: str = "image",
    skip_unreadable: bool = False,
) -> tuple[list[dict], list[ReadFailure]]:
    """Decode every image of a datalist once and report the unreadable ones.

    Args:
        datalist: MONAI-style list of dicts; ``item[key]`` is the image path.
        reader_fn: called with ``item[key]``; must raise on failure. Default :func:`read_image` (full decode, so
            codec problems such as a missing JPEG 2000 plugin are caught). Pass a cheaper function to check headers.
        key: the image key.
        skip_unreadable: ``False`` (default, strict): raise if anything is unreadable. ``True``: return the
            readable items and the failures, and let the caller decide.

    Returns:
        ``(ok_items, failures)``: the readable items in their original order and one :class:`ReadFailure` per
        unreadable item (empty in strict mode, which raises instead).

    Raises:
        UnreadableDatalistError: strict mode and at least one item is unreadable; lists index, path and error of
            every failure.
    """
    reader_fn = reader_fn or read_image
    ok: list[dict] = []
    failures: list[ReadFailure] = []
    for index, item in enumerate(datalist):
        try:
            if key not in item:
                raise KeyError(f"item has no {key!r} entry")
            reader_fn(item[key])
        except Exception as e:
            failures.append(ReadFailure(index, str(item.get(key, "<missing>")), f"{type(e).__name__}: {e}"))
        else:
            ok.append(item)
    if failures and not skip_unreadable:
        raise UnreadableDatalistError(failures, total=len(datalist))
    return ok, failures
