"""Ingest real images described by a layout CSV into a dataset.

The layout has one row per (field, channel):
``plate,well,site,cell_type,phenotype[,treatment,concentration,is_control],channel,path[,page,c,z,t,axes]``.
``channel`` is ``bf`` (one plane, or every z-plane of the file), ``bf:<z>``, ``label:<name>`` or a stain name;
``path`` is relative to the CSV's folder unless absolute or a URI. ``page`` picks a TIFF page; ``c``, ``z``, ``t``
pick a plane along those axes of the file's array (or of the page's), whose axes come from OME / ImageJ metadata
or from ``axes`` (e.g. ``CYX``). A field whose bright-field copies one of its stains is refused.
The whole layout is checked before any pixel is read, and any error aborts the write: no manifest is published.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np
import pandas as pd

from vsearch.data import storage
from vsearch.data.dataset import DatasetWriter
from vsearch.data.fields import FieldImages
from vsearch.data.leak import leaked_planes
from vsearch.data.manifest import CONTROL_KINDS, DEFAULT_ROLES, DatasetInfo, Role, merge_roles, split_group
from vsearch.data.planes import (
    SELECTABLE,
    DecodedImage,
    PlaneError,
    bright_field_uint16,
    decode_other,
    decode_tiff,
    select_planes,
)

REQUIRED = ["plate", "well", "site", "cell_type", "phenotype", "channel", "path"]
OPTIONAL = {
    "treatment": "",
    "concentration": "",
    "is_control": "none",
    "page": "",
    "c": "",
    "z": "",
    "t": "",
    "axes": "",
}
INDEX_COLUMNS = ("page", *SELECTABLE)
FIELD_KEY = ["plate", "well", "site"]
FIELD_META = ["cell_type", "phenotype", "treatment", "concentration", "is_control"]
BF_PLANE = re.compile(r"^bf:(\d+)$")
PIXEL_SIZE_TOLERANCE = 0.01


class LayoutError(ValueError):
    """A layout row or the file it names cannot be ingested."""


@dataclass(frozen=True)
class LoadedField:
    """One field's pixels and manifest columns, how errors name it, and the pixel size its metadata gives."""

    meta: dict[str, object]
    images: FieldImages
    where: str
    pixel_size_um: float | None


@dataclass(frozen=True)
class FieldPlan:
    plate: str
    well: str
    site: int
    meta: dict[str, object]
    bf: list[tuple[int, pd.Series]]  # rows of the bright-field planes, in z order
    stains: dict[str, pd.Series]
    labels: dict[str, pd.Series]


def _where(row: pd.Series) -> str:
    return f"row {row['line']} ({row['path']})"


def read_text_table(uri: str, required: list[str], optional: Mapping[str, str]) -> pd.DataFrame:
    """A CSV of strings, stripped, with the ``optional`` columns filled in; a missing required column is refused."""
    fs, path = storage.filesystem(uri)
    try:
        with fs.open(path, "r") as f:
            table = pd.read_csv(f, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise LayoutError(f"cannot open {uri}") from None
    table.columns = [c.strip() for c in table.columns]
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise LayoutError(f"{uri}: missing column(s) {', '.join(missing)}; need {', '.join(required)}")
    for column, default in optional.items():
        if column not in table.columns:
            table[column] = default
    return table.apply(lambda col: col.str.strip())


def read_layout(layout_uri: str) -> pd.DataFrame:
    layout = read_text_table(layout_uri, REQUIRED, OPTIONAL)
    layout["line"] = np.arange(len(layout)) + 2  # the header is line 1
    if layout.empty:
        raise LayoutError(f"{layout_uri}: the layout has no rows")
    return layout


def check_row(row: pd.Series, stains: list[str] | None) -> None:
    """Refuses a layout row with an empty required value, a malformed number or an unknown channel."""
    for column in ("plate", "well", "cell_type", "phenotype", "channel", "path"):
        if not row[column]:
            what = "an empty condition" if column in ("cell_type", "phenotype") else "no value"
            raise LayoutError(f"{_where(row)}: column {column!r} has {what}")
    if not row["site"].isdigit():
        raise LayoutError(f"{_where(row)}: site {row['site']!r} is not a non-negative integer")
    if row["is_control"] not in CONTROL_KINDS:
        raise LayoutError(f"{_where(row)}: is_control {row['is_control']!r} is not one of {CONTROL_KINDS}")
    for column in INDEX_COLUMNS:
        if row[column] and not row[column].isdigit():
            raise LayoutError(f"{_where(row)}: {column} {row[column]!r} is not a non-negative integer")
    if row["concentration"]:
        try:
            float(row["concentration"])
        except ValueError:
            raise LayoutError(f"{_where(row)}: concentration {row['concentration']!r} is not a number") from None
    channel = row["channel"]
    if channel.startswith("bf") and channel != "bf" and not BF_PLANE.match(channel):
        raise LayoutError(f"{_where(row)}: unknown channel {channel!r}; bright-field is 'bf' or 'bf:<z>'")
    is_stain = not channel.startswith(("bf", "label:"))
    if is_stain and stains is not None and channel not in stains:
        raise LayoutError(f"{_where(row)}: unknown channel {channel!r}; stains are {', '.join(stains)}")


def check_no_duplicates(layout: pd.DataFrame) -> None:
    """Refuses two rows giving the same channel of the same field, naming both."""
    duplicated = layout[layout.duplicated([*FIELD_KEY, "channel"], keep=False)]
    if len(duplicated):
        first, second = duplicated.iloc[0], duplicated.iloc[1]
        raise LayoutError(
            f"rows {first['line']} ({first['path']}) and {second['line']} ({second['path']}) "
            f"both give channel {first['channel']!r} of field {'/'.join(first[FIELD_KEY])}"
        )


def plan_field(
    key: tuple[str, str, str], rows: pd.DataFrame, stain_names: list[str], label_names: list[str]
) -> FieldPlan:
    """One field's plan from its rows; refuses conditions that differ between them and missing channels."""
    plate, well, site = key
    name = f"field {plate}/{well}/site {site}"
    first = rows.iloc[0]
    for column in FIELD_META:
        if rows[column].nunique() > 1:
            other = rows[rows[column] != first[column]].iloc[0]
            raise LayoutError(f"{_where(other)}: {column} {other[column]!r} differs from row {first['line']} in {name}")
    by_channel = {row["channel"]: row for _, row in rows.iterrows()}
    if "bf" in by_channel and len([c for c in by_channel if c.startswith("bf")]) > 1:
        raise LayoutError(f"{name}: mixes channel 'bf' with 'bf:<z>' rows ({_where(by_channel['bf'])})")
    bf = sorted((int(c[3:]) if c != "bf" else 0, r) for c, r in by_channel.items() if c.startswith("bf"))
    if not bf:
        raise LayoutError(f"{name}: missing channel 'bf' (rows {', '.join(map(str, rows['line']))})")
    if [z for z, _ in bf] != list(range(len(bf))):
        raise LayoutError(f"{name}: missing channel bf:{min(set(range(len(bf) + 1)) - {z for z, _ in bf})}")
    for channel in [*stain_names, *(f"label:{n}" for n in label_names)]:
        if channel not in by_channel:
            raise LayoutError(f"{name}: missing channel {channel!r} (rows {', '.join(map(str, rows['line']))})")
    meta = {
        "cell_type": first["cell_type"],
        "phenotype": first["phenotype"],
        "treatment": first["treatment"],
        "concentration": float(first["concentration"]) if first["concentration"] else float("nan"),
        "is_control": first["is_control"],
    }
    stains = {s: by_channel[s] for s in stain_names}
    labels = {n: by_channel[f"label:{n}"] for n in label_names}
    return FieldPlan(plate, well, int(site), meta, bf, stains, labels)


def plan_fields(layout: pd.DataFrame, stains: list[str] | None = None) -> tuple[list[FieldPlan], list[str], list[str]]:
    """Check the layout and group it into fields; returns (fields, stain names, label names)."""
    for _, row in layout.iterrows():
        check_row(row, stains)
    check_no_duplicates(layout)
    all_channels = [c for c in dict.fromkeys(layout["channel"]) if not c.startswith("bf")]
    stain_names = list(stains) if stains is not None else [c for c in all_channels if not c.startswith("label:")]
    label_names = [c.removeprefix("label:") for c in all_channels if c.startswith("label:")]
    fields = [plan_field(key, rows, stain_names, label_names) for key, rows in layout.groupby(FIELD_KEY, sort=False)]
    return fields, stain_names, label_names


class FieldFiles:
    """The files one field's rows name, each read once and each (file, page) decoded once."""

    def __init__(self, base: str) -> None:
        self.base = base
        self._bytes: dict[str, bytes] = {}
        self._decoded: dict[tuple[str, int | None], DecodedImage] = {}

    def uri(self, row: pd.Series) -> str:
        uri = row["path"]
        if "://" in uri or uri.startswith("/"):
            return uri
        return storage.join(self.base, uri) if "://" in self.base else str(PurePosixPath(self.base) / uri)

    def decoded(self, row: pd.Series) -> DecodedImage:
        uri = self.uri(row)
        page = int(row["page"]) if row["page"] else None
        if (uri, page) not in self._decoded:
            self._decoded[uri, page] = self._decode(row, uri, page)
        return self._decoded[uri, page]

    def _decode(self, row: pd.Series, uri: str, page: int | None) -> DecodedImage:
        if uri not in self._bytes:
            fs, path = storage.filesystem(uri)
            try:
                with fs.open(path, "rb") as f:
                    self._bytes[uri] = f.read()
            except (FileNotFoundError, IsADirectoryError) as error:
                raise LayoutError(f"{_where(row)}: cannot open {uri}: {error.__class__.__name__}") from None
        suffix = PurePosixPath(uri).suffix.lower()
        try:
            if suffix in (".tif", ".tiff"):
                return decode_tiff(self._bytes[uri], page)
            if page is not None:
                raise PlaneError(f"page {page} is given but {suffix or 'the file'} images have one page")
            return decode_other(self._bytes[uri], suffix)
        except PlaneError as error:
            raise LayoutError(f"{_where(row)}: {error}") from None
        except Exception as error:
            raise LayoutError(f"{_where(row)}: unreadable image ({error.__class__.__name__}: {error})") from None


def read_planes(row: pd.Series, files: FieldFiles) -> np.ndarray:
    """The pixels a layout row names: ``[Z,H,W]`` uint16 for a bright-field row, else one ``[H,W]`` plane.

    A plain ``bf`` row without a page keeps every z-plane (the Z axis, or the pages of a plain multi-page TIFF);
    any other row must select exactly one plane."""
    channel = row["channel"]
    is_bf, is_label = channel.startswith("bf"), channel.startswith("label:")
    selection = {key: int(row[key]) for key in SELECTABLE if row[key]}
    try:
        planes = select_planes(
            files.decoded(row),
            selection,
            keep_z=channel == "bf" and not row["page"],
            stated_axes=row["axes"] or None,
        )
        if is_bf:
            return bright_field_uint16(planes)
    except PlaneError as error:
        raise LayoutError(f"{_where(row)}: {error}") from None
    image = planes[0]
    allowed = ("u1", "u2", "i4", "u4") if is_label else ("u1", "u2")
    if f"{image.dtype.kind}{image.dtype.itemsize}" not in allowed:
        kind = "integer labels" if is_label else "uint8/uint16 grey"
        raise LayoutError(f"{_where(row)}: pixels are {image.dtype}; expected {kind}")
    return image


def load_field(plan: FieldPlan, base: str) -> LoadedField:
    """All channels of one field, checked for equal size and for bright-field planes that copy a stain."""
    files = FieldFiles(base)
    planes = [read_planes(row, files) for _, row in plan.bf]
    bf = planes[0] if len(planes) == 1 else np.concatenate(planes)
    shape = bf.shape[1:]
    stains, labels = {}, {}
    for target, rows in ((stains, plan.stains), (labels, plan.labels)):
        for name, row in rows.items():
            image = read_planes(row, files)
            if image.shape != shape:
                raise LayoutError(f"{_where(row)}: size {image.shape} differs from the field's bright-field {shape}")
            target[name] = image.astype(np.int32) if target is labels else image.astype(np.uint16, copy=False)
    refuse_leaks(
        f"field {plan.plate}/{plan.well}/site {plan.site}",
        bf,
        stains,
        lambda z: f" ({_where(plan.bf[min(z, len(plan.bf) - 1)][1])})",
        lambda stain: f" ({_where(plan.stains[stain])})",
        "Check the rows' channel, page, c and z columns",
    )
    images = FieldImages(f"{plan.plate}-{plan.well}-s{plan.site}", bf, stains, labels)
    meta = {**plan.meta, "plate": plan.plate, "well": plan.well, "site": plan.site}
    return LoadedField(meta, images, _where(plan.bf[0][1]), files.decoded(plan.bf[0][1]).pixel_size_um)


def refuse_leaks(
    field: str,
    bf: np.ndarray,
    stains: Mapping[str, np.ndarray],
    plane_source: Callable[[int], str],
    stain_source: Callable[[str], str],
    advice: str,
) -> None:
    """Refuse a field whose bright-field plane copies one of its stains (``leak.leaked_planes``), naming both."""
    leaks = leaked_planes(bf, stains)
    if leaks:
        z, stain, r = leaks[0]
        how = "equals" if r == 1.0 else f"correlates (r = {r:.3f}) with"
        raise LayoutError(
            f"{field}: bright-field plane {z}{plane_source(z)} {how} stain {stain!r}{stain_source(stain)}: the model "
            f"would be given its target. {advice}"
        )


def tiles_of(images: FieldImages, tile: int | None) -> list[tuple[int, int, int, FieldImages]]:
    """(tile index, origin y, origin x, pixels) of each tile×tile crop, row-major; the whole field without tiling."""
    if not tile:
        return [(0, 0, 0, images)]
    _, height, width = images.bf.shape
    out = []
    for ty in range(height // tile):
        for tx in range(width // tile):
            ys, xs = slice(ty * tile, (ty + 1) * tile), slice(tx * tile, (tx + 1) * tile)
            index = len(out)
            out.append(
                (
                    index,
                    ys.start,
                    xs.start,
                    FieldImages(
                        f"{images.field_id}-t{index}",
                        images.bf[:, ys, xs],
                        {k: v[ys, xs] for k, v in images.stains.items()},
                        {k: v[ys, xs] for k, v in images.labels.items()},
                    ),
                )
            )
    return out


def ingest(
    layout_uri: str,
    out: str,
    *,
    tile: int | None = None,
    stains: list[str] | None = None,
    roles: Mapping[str, str | None] | None = None,
    name: str | None = None,
    pixel_size_um: float | None = None,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> DatasetInfo:
    """Read every field of the layout and write the dataset at ``out``; nothing is published on error.

    ``roles`` (role → stain, None for none) go to ``dataset.json``; by default the synthetic screen's stain names
    (``manifest.DEFAULT_ROLES``) that are among the stains. A role naming a stain the layout lacks is refused
    before any image is read. ``pixel_size_um`` defaults to the one the first field's bright-field metadata gives
    (OME or ImageJ)."""
    check_tile(tile)
    layout = read_layout(layout_uri)
    plans, stain_names, label_names = plan_fields(layout, stains)
    dataset_roles = merge_roles(DEFAULT_ROLES, stain_names, roles)
    base = layout_uri.rsplit("/", 1)[0] if "/" in layout_uri else "."
    fields = (load_field(plan, base) for plan in plans)
    return write_dataset(
        out,
        fields,
        len(plans),
        name=name or PurePosixPath(layout_uri).stem,
        stains=stain_names,
        labels=label_names,
        roles=dataset_roles,
        source=f"vsearch ingest {layout_uri}",
        tile=tile,
        pixel_size_um=pixel_size_um,
        overwrite=overwrite,
        progress=progress,
    )


def check_tile(tile: int | None) -> None:
    if tile is not None and tile < 1:
        raise LayoutError(f"--tile must be a positive number of pixels, got {tile}")


def write_dataset(
    out: str,
    fields: Iterator[LoadedField],
    count: int,
    *,
    name: str,
    stains: list[str],
    labels: list[str],
    roles: dict[Role, str],
    source: str,
    tile: int | None,
    pixel_size_um: float | None,
    overwrite: bool,
    progress: Callable[[int, int], None] | None,
) -> DatasetInfo:
    """Write ``count`` loaded fields (cut into tiles) as a dataset, holding one field at a time; the first field
    sets the number of bright-field planes and, unless given, the pixel size. Any error publishes nothing."""
    first = next(fields)
    info = DatasetInfo(
        name=name,
        stains=stains,
        labels=labels,
        bf_planes=first.images.bf.shape[0],
        pixel_size_um=pixel_size_um or first.pixel_size_um,
        source=source,
        roles=roles,
    )
    with DatasetWriter(out, info, overwrite=overwrite) as writer:
        for done, field in enumerate(itertools.chain([first], fields), start=1):
            _check_like_first(field, first)
            crops = tiles_of(field.images, tile)
            if not crops:
                height, width = field.images.bf.shape[1:]
                condition = f"{field.meta['cell_type']}/{field.meta['phenotype']}"
                raise LayoutError(
                    f"{field.where}: field is {height}×{width}, smaller than --tile {tile}, so condition "
                    f"{condition} would get no fields"
                )
            for index, y, x, crop in crops:
                meta = {
                    **field.meta,
                    "tile": index,
                    "origin_y": y,
                    "origin_x": x,
                    "split_group": split_group(field.meta["plate"], field.meta["well"]),
                }
                writer.add(meta, crop)
            if progress:
                progress(done, count)
    return info


def _check_like_first(field: LoadedField, first: LoadedField) -> None:
    planes, first_planes = field.images.bf.shape[0], first.images.bf.shape[0]
    if planes != first_planes:
        raise LayoutError(f"{field.where}: {planes} bright-field planes, earlier fields {first_planes}")
    size, first_size = field.pixel_size_um, first.pixel_size_um
    if size and first_size and not math.isclose(size, first_size, rel_tol=PIXEL_SIZE_TOLERANCE):
        raise LayoutError(
            f"{field.where}: pixel size {size:.4g} µm differs from the first field's {first_size:.4g} µm "
            f"({first.where}); a dataset holds one magnification"
        )
