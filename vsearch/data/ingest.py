"""Ingest real images described by a layout CSV into a dataset.

The layout has one row per (field, channel):
``plate,well,site,cell_type,phenotype[,treatment,concentration,is_control],channel,path[,page]``.
``channel`` is ``bf`` (a single plane, or every page of a multi-page TIFF), ``bf:<z>``, ``label:<name>`` or a
stain name; ``path`` is relative to the CSV's folder unless absolute or a URI; ``page`` picks a TIFF page.
The whole layout is checked before any pixel is read, and any error aborts the write: no manifest is published.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np
import pandas as pd

from vsearch.data import storage
from vsearch.data.dataset import DatasetWriter
from vsearch.data.fields import FieldImages
from vsearch.data.manifest import CONTROL_KINDS, DEFAULT_ROLES, DatasetInfo, merge_roles, split_group

REQUIRED = ["plate", "well", "site", "cell_type", "phenotype", "channel", "path"]
OPTIONAL = {"treatment": "", "concentration": "", "is_control": "none", "page": ""}
FIELD_KEY = ["plate", "well", "site"]
FIELD_META = ["cell_type", "phenotype", "treatment", "concentration", "is_control"]
BF_PLANE = re.compile(r"^bf:(\d+)$")


class LayoutError(ValueError):
    """A layout row or the file it names cannot be ingested."""


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


def read_layout(layout_uri: str) -> pd.DataFrame:
    fs, path = storage.filesystem(layout_uri)
    with fs.open(path, "r") as f:
        layout = pd.read_csv(f, dtype=str, keep_default_na=False)
    layout.columns = [c.strip() for c in layout.columns]
    missing = [c for c in REQUIRED if c not in layout.columns]
    if missing:
        raise LayoutError(f"{layout_uri}: missing column(s) {', '.join(missing)}; need {', '.join(REQUIRED)}")
    for column, default in OPTIONAL.items():
        if column not in layout.columns:
            layout[column] = default
    layout = layout.apply(lambda col: col.str.strip())
    layout["line"] = np.arange(len(layout)) + 2  # the header is line 1
    if layout.empty:
        raise LayoutError(f"{layout_uri}: the layout has no rows")
    return layout


def plan_fields(layout: pd.DataFrame, stains: list[str] | None = None) -> tuple[list[FieldPlan], list[str], list[str]]:
    """Check the layout and group it into fields; returns (fields, stain names, label names)."""
    for _, row in layout.iterrows():
        for column in ("plate", "well", "cell_type", "phenotype", "channel", "path"):
            if not row[column]:
                what = "an empty condition" if column in ("cell_type", "phenotype") else "no value"
                raise LayoutError(f"{_where(row)}: column {column!r} has {what}")
        if not row["site"].isdigit():
            raise LayoutError(f"{_where(row)}: site {row['site']!r} is not a non-negative integer")
        if row["is_control"] not in CONTROL_KINDS:
            raise LayoutError(f"{_where(row)}: is_control {row['is_control']!r} is not one of {CONTROL_KINDS}")
        if row["page"] and not row["page"].isdigit():
            raise LayoutError(f"{_where(row)}: page {row['page']!r} is not a non-negative integer")
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

    duplicated = layout[layout.duplicated([*FIELD_KEY, "channel"], keep=False)]
    if len(duplicated):
        first, second = duplicated.iloc[0], duplicated.iloc[1]
        raise LayoutError(
            f"rows {first['line']} ({first['path']}) and {second['line']} ({second['path']}) "
            f"both give channel {first['channel']!r} of field {'/'.join(first[FIELD_KEY])}"
        )

    all_channels = [c for c in dict.fromkeys(layout["channel"]) if not c.startswith("bf")]
    stain_names = list(stains) if stains is not None else [c for c in all_channels if not c.startswith("label:")]
    label_names = [c.removeprefix("label:") for c in all_channels if c.startswith("label:")]
    fields = []
    for (plate, well, site), rows in layout.groupby(FIELD_KEY, sort=False):
        name = f"field {plate}/{well}/site {site}"
        first = rows.iloc[0]
        for column in FIELD_META:
            if rows[column].nunique() > 1:
                other = rows[rows[column] != first[column]].iloc[0]
                raise LayoutError(
                    f"{_where(other)}: {column} {other[column]!r} differs from row {first['line']} in {name}"
                )
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
        fields.append(
            FieldPlan(
                plate,
                well,
                int(site),
                meta,
                bf,
                {s: by_channel[s] for s in stain_names},
                {n: by_channel[f"label:{n}"] for n in label_names},
            )
        )
    return fields, stain_names, label_names


def read_image(row: pd.Series, base: str) -> np.ndarray:
    """The image a layout row names: 2-D uint8/uint16 grey, or a stack of such pages for a plain 'bf' row."""
    uri = row["path"]
    if "://" not in uri and not uri.startswith("/"):
        uri = storage.join(base, uri) if "://" in base else str(PurePosixPath(base) / uri)
    fs, path = storage.filesystem(uri)
    try:
        with fs.open(path, "rb") as f:
            data = f.read()
    except (FileNotFoundError, IsADirectoryError) as error:
        raise LayoutError(f"{_where(row)}: cannot open {uri}: {error.__class__.__name__}") from None
    suffix = PurePosixPath(path).suffix.lower()
    try:
        if suffix in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(io.BytesIO(data)) as tif:
                if row["page"]:
                    page = int(row["page"])
                    if page >= len(tif.pages):
                        raise LayoutError(f"{_where(row)}: page {page} is past the file's {len(tif.pages)} pages")
                    image = tif.pages[page].asarray()
                else:
                    image = tif.asarray()
        else:
            import imageio.v3 as iio

            image = iio.imread(data, extension=suffix or None)
    except LayoutError:
        raise
    except Exception as error:
        raise LayoutError(f"{_where(row)}: unreadable image ({error.__class__.__name__}: {error})") from None
    grey_stack = row["channel"] == "bf" and image.ndim == 3 and image.shape[-1] not in (3, 4)
    if image.ndim == 3 and not grey_stack:
        raise LayoutError(f"{_where(row)}: image has shape {image.shape}; expected one grey plane (RGB is refused)")
    if image.ndim not in (2, 3):
        raise LayoutError(f"{_where(row)}: image has shape {image.shape}; expected one grey plane")
    is_label = row["channel"].startswith("label:")
    allowed = ("u1", "u2", "i4", "u4") if is_label else ("u1", "u2")
    if f"{image.dtype.kind}{image.dtype.itemsize}" not in allowed:
        kind = "integer labels" if is_label else "uint8/uint16 grey"
        raise LayoutError(f"{_where(row)}: pixels are {image.dtype}; expected {kind}")
    return image


def load_field(plan: FieldPlan, base: str) -> FieldImages:
    """All channels of one field, checked for equal size."""
    planes = [read_image(row, base) for _, row in plan.bf]
    bf = planes[0] if planes[0].ndim == 3 else np.stack(planes)
    shape = bf.shape[1:]
    stains, labels = {}, {}
    for target, rows in ((stains, plan.stains), (labels, plan.labels)):
        for name, row in rows.items():
            image = read_image(row, base)
            if image.shape != shape:
                raise LayoutError(f"{_where(row)}: size {image.shape} differs from the field's bright-field {shape}")
            target[name] = image.astype(np.int32) if target is labels else image
    return FieldImages(f"{plan.plate}-{plan.well}-s{plan.site}", bf.astype(np.uint16), stains, labels)


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
    before any image is read."""
    if tile is not None and tile < 1:
        raise LayoutError(f"--tile must be a positive number of pixels, got {tile}")
    layout = read_layout(layout_uri)
    fields, stain_names, label_names = plan_fields(layout, stains)
    dataset_roles = merge_roles(DEFAULT_ROLES, stain_names, roles)
    base = layout_uri.rsplit("/", 1)[0] if "/" in layout_uri else "."
    first = load_field(fields[0], base)
    info = DatasetInfo(
        name=name or PurePosixPath(layout_uri).stem,
        stains=stain_names,
        labels=label_names,
        bf_planes=first.bf.shape[0],
        pixel_size_um=pixel_size_um,
        source=f"vsearch ingest {layout_uri}",
        roles=dataset_roles,
    )
    with DatasetWriter(out, info, overwrite=overwrite) as writer:
        for done, plan in enumerate(fields, start=1):
            images = first if done == 1 else load_field(plan, base)
            if images.bf.shape[0] != info.bf_planes:
                planes = images.bf.shape[0]
                raise LayoutError(
                    f"{_where(plan.bf[0][1])}: {planes} bright-field planes, earlier fields {info.bf_planes}"
                )
            crops = tiles_of(images, tile)
            if not crops:
                raise LayoutError(
                    f"{_where(plan.bf[0][1])}: field is {images.bf.shape[1]}×{images.bf.shape[2]}, smaller than "
                    f"--tile {tile}, so condition {plan.meta['cell_type']}/{plan.meta['phenotype']} would get no fields"
                )
            for index, y, x, crop in crops:
                meta = {
                    **plan.meta,
                    "plate": plan.plate,
                    "well": plan.well,
                    "site": plan.site,
                    "tile": index,
                    "origin_y": y,
                    "origin_x": x,
                    "split_group": split_group(plan.plate, plan.well),
                }
                writer.add(meta, crop)
            if progress:
                progress(done, len(fields))
    return info
