"""Decode an image file once and pick 2-D planes out of its array by axis: channel ``c``, z-plane ``z``, time ``t``.

Axes come from the file's OME or ImageJ metadata (through tifffile) or from tifffile's shaped metadata when it
names them; otherwise the caller states them (``CYX``). Letters: ``T C Z Y X`` are known axes; ``S`` is samples
per pixel (RGB, or channels stored as samples of one page); ``Q`` and ``I`` are pages of unknown meaning.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import numpy as np

KNOWN_AXES = "TCZYX"
SELECTABLE = "tcz"  # the lower-case selection keys for T, C and Z
UNKNOWN_PAGES = "QI"
MICROMETRES_PER_UNIT = {
    "nm": 1e-3,
    "nanometer": 1e-3,
    "µm": 1.0,
    "um": 1.0,
    "micron": 1.0,
    "micrometer": 1.0,
    "\\u00B5m": 1.0,
    "mm": 1e3,
    "millimeter": 1e3,
}


class PlaneError(ValueError):
    """The planes asked for cannot be read from the image; ``axis`` is the axis left ambiguous, if one was, and
    ``reason`` the message without the layout column that would resolve it."""

    def __init__(self, message: str, *, axis: str | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.axis = axis
        self.reason = reason or message


@dataclass(frozen=True)
class DecodedImage:
    """An image file's pixel array, the letter of each of its axes, whether the axes came from metadata that names
    them (OME, ImageJ, or tifffile's shaped metadata), and the pixel size when the metadata gives one."""

    array: np.ndarray
    axes: str
    axes_from_metadata: bool
    pixel_size_um: float | None = None


def decode_tiff(data: bytes, page: int | None) -> DecodedImage:
    """The first series of a TIFF (or one page of it when ``page`` is given)."""
    import tifffile

    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        if page is not None:
            if page >= len(tif.pages):
                raise PlaneError(f"page {page} is past the file's {len(tif.pages)} pages")
            tiff_page = tif.pages[page]
            array, axes = tiff_page.asarray(), tiff_page.axes
            named = False
        else:
            series = tif.series[0]
            array, axes = series.asarray(), series.axes
            named = (tif.is_ome or tif.is_imagej or tif.is_shaped) and not set(axes) & set(UNKNOWN_PAGES + "S")
        return DecodedImage(array, axes, named, _tiff_pixel_size_um(tif))


def decode_other(data: bytes, suffix: str) -> DecodedImage:
    """PNG and the other formats imageio reads: ``YX`` grey or ``YXS`` colour."""
    import imageio.v3 as iio

    array = iio.imread(data, extension=suffix or None)
    return DecodedImage(array, "YX" if array.ndim == 2 else "YXS"[: array.ndim], False)


def _tiff_pixel_size_um(tif) -> float | None:
    """Pixel size along x from OME (PhysicalSizeX, in µm unless a unit is given) or ImageJ (unit + XResolution)."""
    import tifffile

    if tif.is_ome and tif.ome_metadata:
        image = tifffile.xml2dict(tif.ome_metadata).get("OME", {}).get("Image", {})
        pixels = (image[0] if isinstance(image, list) else image).get("Pixels", {})
        size = pixels.get("PhysicalSizeX")
        factor = MICROMETRES_PER_UNIT.get(pixels.get("PhysicalSizeXUnit", "µm"))
        return float(size) * factor if size and factor else None
    if tif.is_imagej and tif.imagej_metadata:
        factor = MICROMETRES_PER_UNIT.get(str(tif.imagej_metadata.get("unit", "")))
        resolution = tif.pages[0].tags.get("XResolution")
        if factor and resolution:
            numerator, denominator = resolution.value
            return denominator / numerator * factor if numerator else None
    return None


def parse_axes(text: str, ndim: int) -> str:
    """A stated axes string (``CYX``, ``zcyx``) checked against the array's dimensions."""
    axes = text.strip().upper()
    if len(axes) != ndim:
        raise PlaneError(f"axes {text!r} name {len(axes)} axes but the image has {ndim}")
    if not re.fullmatch(f"[{KNOWN_AXES}]*YX", axes) or len(set(axes)) != len(axes):
        raise PlaneError(f"axes {text!r} must end in YX and name each of T, C, Z at most once (e.g. CYX, ZCYX)")
    return axes


def select_planes(
    image: DecodedImage, selection: dict[str, int], *, keep_z: bool, stated_axes: str | None = None
) -> np.ndarray:
    """The ``[N, Y, X]`` planes ``selection`` (``{"c": 1, "z": 0}``) picks; every other axis must have length 1,
    except z-planes (the Z axis, or unnamed pages) when ``keep_z``, which are all kept in order.

    A stated ``axes`` must agree with axes the metadata names. Each refusal says which axis is ambiguous and which
    selection would resolve it."""
    axes = image.axes
    shape = image.array.shape
    if stated_axes:
        stated = parse_axes(stated_axes, image.array.ndim)
        if image.axes_from_metadata and stated != axes:
            raise PlaneError(f"axes {stated_axes!r} differ from the file's metadata, which says {axes} {shape}")
        axes = stated
    where = f"axes {axes}, shape {shape}"
    if axes.endswith("S") and shape[-1] in (3, 4):
        raise PlaneError(f"image is colour ({where}); expected one grey plane (RGB is refused)")
    for key in selection:
        if key.upper() not in axes:
            raise PlaneError(f"column {key} is given but the image has no {key.upper()} axis ({where})")
    index: list[int | slice] = []
    kept = None
    for axis, size in zip(axes, shape, strict=True):
        key = axis.lower()
        if axis in "YX":
            index.append(slice(None))
        elif key in selection:
            if selection[key] >= size:
                raise PlaneError(f"{key} {selection[key]} is past the image's {size} planes along {axis} ({where})")
            index.append(selection[key])
        elif size == 1:
            index.append(0)
        elif keep_z and kept is None and (axis == "Z" or axis in UNKNOWN_PAGES):
            index.append(slice(None))
            kept = axis
        else:
            reason = f"image holds {size} planes along {axis} ({where})"
            raise PlaneError(_ambiguous(axis, size, where, keep_z), axis=axis, reason=reason)
    planes = image.array[tuple(index)]
    return planes if kept else planes[np.newaxis]


def _ambiguous(axis: str, size: int, where: str, keep_z: bool) -> str:
    wanted = "the bright-field planes" if keep_z else "one plane"
    if axis == "S":
        return (
            f"image holds {size} samples per pixel ({where}), more than {wanted}; if they are channels, "
            "state the axes in column axes (e.g. CYX) and pick one with column c"
        )
    if axis in UNKNOWN_PAGES:
        return f"image holds {size} pages ({where}); pick one with column page, or state the axes in column axes"
    return f"image holds {size} planes along {axis} ({where}); pick one with column {axis.lower()}"


def bright_field_uint16(planes: np.ndarray) -> np.ndarray:
    """Bright-field planes as uint16: integer pixels unchanged, float pixels (e.g. a phase reconstruction) mapped
    linearly per plane onto 0..65535. Inputs are normalised per field and plane by percentiles, so the map changes
    nothing the model sees beyond 16-bit quantisation."""
    if planes.dtype.kind == "u" and planes.dtype.itemsize <= 2:
        return planes.astype(np.uint16, copy=False)
    if planes.dtype.kind != "f":
        raise PlaneError(f"bright-field pixels are {planes.dtype}; expected uint8/uint16 or float")
    if not np.isfinite(planes).all():
        raise PlaneError("bright-field pixels include NaN or infinity")
    low = planes.min(axis=(1, 2), keepdims=True)
    span = planes.max(axis=(1, 2), keepdims=True) - low
    scaled = (planes - low) / np.where(span > 0, span, 1) * 65535
    return np.rint(scaled).astype(np.uint16)
