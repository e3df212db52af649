"""Ingest OME-Zarr HCS plates (plate / row / column / field, as iohub, ome-zarr-py and VisCy write them).

The plate, well and image metadata are read and validated with ``ome-zarr-models`` (the OME-NGFF metadata as
pydantic models, versions 0.4 and 0.5; ome-zarr-py itself builds on it); pixels are read with zarr, one field
at a time and only the channels asked for. Channel names come from each image's ``omero`` metadata; a conditions
CSV gives each well its cell type, phenotype, treatment, concentration and control kind.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np
from pydantic import ValidationError

from vsearch.config import describe_errors
from vsearch.data import storage
from vsearch.data.fields import FieldImages
from vsearch.data.layout import LayoutError, LoadedField, check_tile, read_text_table, refuse_leaks, write_dataset
from vsearch.data.manifest import CONTROL_KINDS, DEFAULT_ROLES, DatasetInfo, merge_roles
from vsearch.data.planes import MICROMETRES_PER_UNIT, DecodedImage, PlaneError, bright_field_uint16, select_planes

CONDITION_COLUMNS = ["well", "cell_type", "phenotype"]
CONDITION_OPTIONAL = {"plate": "", "treatment": "", "concentration": "", "is_control": "none"}
WELL_NAME = re.compile(r"^([A-Za-z]+)[/_-]?0*(\d+)$")
BRIGHT_FIELD = "bf"
PLATE_HINTS = {
    "Z": "; give --stain-z to pick the stains' z-plane",
    "T": "; vsearch reads one time point, so time-lapse plates are refused",
}


@dataclass(frozen=True)
class PlateIngest:
    """What a plate ingest wrote, and the wells it left out because the conditions do not list them."""

    info: DatasetInfo
    skipped_wells: list[str]


@dataclass(frozen=True)
class FieldSource:
    plate: str
    well: str  # row letter + two-digit column, e.g. "B03"
    site: int
    plate_uri: str
    group: str  # the image group's path inside the plate
    meta: dict[str, object]

    @property
    def uri(self) -> str:
        return storage.join(self.plate_uri, self.group)


def parse_channels(text: str) -> dict[str, str]:
    """``Phase3D=bf,DAPI=nuclei`` → OME channel name → ``bf`` or a stain name; exactly one channel is ``bf``."""
    mapping: dict[str, str] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        source, sep, target = (piece.strip() for piece in item.partition("="))
        if not sep or not source or not target:
            raise LayoutError(f"--channels: {item!r} is not 'OME channel=bf|stain' (e.g. Phase3D=bf,DAPI=nuclei)")
        if source in mapping:
            raise LayoutError(f"--channels: channel {source!r} is mapped twice")
        if target in mapping.values():
            raise LayoutError(f"--channels: {target!r} is given to two channels")
        mapping[source] = target
    if list(mapping.values()).count(BRIGHT_FIELD) != 1:
        raise LayoutError("--channels: map exactly one OME channel to bf (e.g. Phase3D=bf,DAPI=nuclei)")
    return mapping


def well_name(text: str) -> str:
    """``A/1``, ``A1``, ``a01`` → ``A01``: the name a plate well and a conditions row are matched by."""
    match = WELL_NAME.match(text.strip())
    if not match:
        raise ValueError(f"well {text!r} is not a row letter and a column number (e.g. B03 or B/3)")
    return f"{match.group(1).upper()}{int(match.group(2)):02d}"


def read_conditions(uri: str, plates: Sequence[str]) -> dict[tuple[str, str], dict[str, object]]:
    """(plate, well) → the well's manifest columns; the ``plate`` column may be left out for a single plate."""
    table = read_text_table(uri, CONDITION_COLUMNS, CONDITION_OPTIONAL)
    conditions: dict[tuple[str, str], dict[str, object]] = {}
    for line, row in zip(range(2, len(table) + 2), table.to_dict("records"), strict=True):
        where = f"{uri} row {line}"
        plate = row["plate"] or (plates[0] if len(plates) == 1 else "")
        if plate not in plates:
            known = ", ".join(plates)
            raise LayoutError(f"{where}: plate {row['plate']!r} is not one of the plates ingested ({known})")
        try:
            well = well_name(row["well"])
        except ValueError as error:
            raise LayoutError(f"{where}: {error}") from None
        for column in ("cell_type", "phenotype"):
            if not row[column]:
                raise LayoutError(f"{where}: column {column!r} has an empty condition")
        if row["is_control"] not in CONTROL_KINDS:
            raise LayoutError(f"{where}: is_control {row['is_control']!r} is not one of {CONTROL_KINDS}")
        try:
            concentration = float(row["concentration"]) if row["concentration"] else float("nan")
        except ValueError:
            raise LayoutError(f"{where}: concentration {row['concentration']!r} is not a number") from None
        if (plate, well) in conditions:
            raise LayoutError(f"{where}: well {well} of plate {plate} is listed twice")
        conditions[plate, well] = {
            "cell_type": row["cell_type"],
            "phenotype": row["phenotype"],
            "treatment": row["treatment"],
            "concentration": concentration,
            "is_control": row["is_control"],
        }
    return conditions


def _ome_attributes(attributes: Mapping[str, object], uri: str, model_v04: type, model_v05: type):
    """The group's OME metadata validated as NGFF 0.5 (under ``ome``) or 0.4 (top level)."""
    try:
        if "ome" in attributes:
            return model_v05.model_validate(attributes["ome"])
        return model_v04.model_validate(dict(attributes))
    except ValidationError as error:
        raise LayoutError(f"{uri}: not valid OME-Zarr metadata: {describe_errors(error)}") from None


def _open_group(uri: str):
    import zarr

    try:
        return zarr.open_group(storage.zarr_store(uri), mode="r")
    except (FileNotFoundError, zarr.errors.GroupNotFoundError):
        raise LayoutError(f"{uri}: no Zarr group there") from None


def plate_name(uri: str, group) -> str:
    """The plate's name in its metadata, or its folder's name without ``.zarr``."""
    from ome_zarr_models.v04.hcs import HCSAttrs as HCSAttrs04
    from ome_zarr_models.v05.hcs import HCSAttrs as HCSAttrs05

    plate = _ome_attributes(group.attrs.asdict(), uri, HCSAttrs04, HCSAttrs05).plate
    return str(plate.name) if plate.name else PurePosixPath(uri.rstrip("/")).name.removesuffix(".zarr")


def plan_plate(
    uri: str, group, name: str, conditions: Mapping[tuple[str, str], dict]
) -> tuple[list[FieldSource], list[str]]:
    """Every field of the plate's wells that the conditions list, and the names of the wells they do not."""
    from ome_zarr_models.v04.hcs import HCSAttrs as HCSAttrs04
    from ome_zarr_models.v04.well import WellAttrs as WellAttrs04
    from ome_zarr_models.v05.hcs import HCSAttrs as HCSAttrs05
    from ome_zarr_models.v05.well import WellAttrs as WellAttrs05

    plate = _ome_attributes(group.attrs.asdict(), uri, HCSAttrs04, HCSAttrs05).plate
    fields, skipped = [], []
    for well in plate.wells:
        well_id = well_name(well.path)
        if (name, well_id) not in conditions:
            skipped.append(f"{name}/{well_id}")
            continue
        well_uri = storage.join(uri, well.path)
        try:
            well_attributes = group[well.path].attrs.asdict()
        except KeyError:
            raise LayoutError(f"{well_uri}: the plate lists well {well.path} but it has no group") from None
        images = _ome_attributes(well_attributes, well_uri, WellAttrs04, WellAttrs05).well.images
        for site, image in enumerate(images):
            fields.append(FieldSource(name, well_id, site, uri, f"{well.path}/{image.path}", conditions[name, well_id]))
    return fields, skipped


def load_plate_field(source: FieldSource, group, channels: Mapping[str, str], stain_z: int | None) -> LoadedField:
    """One field's bright-field z-planes and stains, read from the image's full-resolution array."""
    from ome_zarr_models.v04.image import ImageAttrs as ImageAttrs04
    from ome_zarr_models.v05.image import ImageAttrs as ImageAttrs05

    attributes = group[source.group].attrs.asdict()
    image = _ome_attributes(attributes, source.uri, ImageAttrs04, ImageAttrs05)
    multiscale = image.multiscales[0]
    axes = "".join(str(axis.name).upper() for axis in multiscale.axes)
    names = _channel_names(image, source.uri)
    missing = [name for name in channels if name not in names]
    if missing:
        raise LayoutError(f"{source.uri}: no channel {missing[0]!r}; its channels are {', '.join(names)}")
    array = group[f"{source.group}/{multiscale.datasets[0].path}"]
    if "C" not in axes and len(channels) > 1:
        raise LayoutError(f"{source.uri}: the image has no channel axis (axes {axes}) but --channels names several")
    wanted = [names.index(name) for name in channels]
    index = tuple(wanted if axis == "C" else slice(None) for axis in axes)
    pixels = np.asarray(array.oindex[index])
    stains: dict[str, np.ndarray] = {}
    bf = None
    try:
        for position, (name, target) in enumerate(channels.items()):
            selection = {"c": position} if "C" in axes else {}
            if target != BRIGHT_FIELD and stain_z is not None and "Z" in axes:
                selection["z"] = stain_z
            decoded = DecodedImage(pixels, axes, True)
            planes = select_planes(decoded, selection, keep_z=target == BRIGHT_FIELD)
            if target == BRIGHT_FIELD:
                bf = bright_field_uint16(planes)
            elif planes.dtype.kind == "u" and planes.dtype.itemsize <= 2:
                stains[target] = planes[0].astype(np.uint16, copy=False)
            else:
                raise PlaneError(f"channel {name!r} has {planes.dtype} pixels; stains must be uint8/uint16")
    except PlaneError as error:
        hint = PLATE_HINTS.get(error.axis or "", "")
        raise LayoutError(f"{source.uri}: {error.reason}{hint}") from None
    field = f"field {source.plate}/{source.well}/site {source.site} ({source.uri})"
    refuse_leaks(field, bf, stains, lambda z: "", lambda stain: "", "Check --channels")
    images = FieldImages(f"{source.plate}-{source.well}-s{source.site}", bf, stains)
    meta = {**source.meta, "plate": source.plate, "well": source.well, "site": source.site}
    return LoadedField(meta, images, source.uri, _pixel_size_um(multiscale, axes))


def _channel_names(image, uri: str) -> list[str]:
    omero = getattr(image, "omero", None)
    channels = (omero.get("channels") if isinstance(omero, dict) else getattr(omero, "channels", None)) or []
    names = [ch.get("label") if isinstance(ch, dict) else getattr(ch, "label", None) for ch in channels]
    if not names or any(not isinstance(name, str) for name in names):
        raise LayoutError(f"{uri}: the image's omero metadata names no channels (omero.channels[].label)")
    return names


def _pixel_size_um(multiscale, axes: str) -> float | None:
    """The x scale of the full-resolution dataset (times the multiscale's own scale), in µm; None without a unit
    vsearch knows."""
    x = axes.index("X")
    unit = multiscale.axes[x].unit
    factor = MICROMETRES_PER_UNIT.get(str(unit)) if unit else None
    if factor is None:
        return None
    scale = 1.0
    for transforms in (multiscale.datasets[0].coordinateTransformations, multiscale.coordinateTransformations):
        for transform in transforms or ():
            if transform.type == "scale":
                scale *= transform.scale[x]
    return scale * factor


def ingest_plates(
    plate_uris: Sequence[str],
    conditions_uri: str,
    out: str,
    *,
    channels: Mapping[str, str],
    stain_z: int | None = None,
    tile: int | None = None,
    roles: Mapping[str, str | None] | None = None,
    name: str | None = None,
    pixel_size_um: float | None = None,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> PlateIngest:
    """Ingest the fields of one or more HCS plates whose wells the conditions list; nothing is published on error.

    ``channels`` maps OME channel names to ``bf`` or a stain name; the bright-field channel keeps all its
    z-planes, and a stain with several z-planes needs ``stain_z``."""
    check_tile(tile)
    stains = [target for target in channels.values() if target != BRIGHT_FIELD]
    dataset_roles = merge_roles(DEFAULT_ROLES, stains, roles)
    groups = {uri: _open_group(uri) for uri in plate_uris}
    names = {uri: plate_name(uri, group) for uri, group in groups.items()}
    if len(set(names.values())) < len(names):
        raise LayoutError(f"plates {', '.join(plate_uris)} share a name ({', '.join(names.values())})")
    conditions = read_conditions(conditions_uri, list(names.values()))
    sources, skipped = [], []
    for uri in plate_uris:
        fields, left_out = plan_plate(uri, groups[uri], names[uri], conditions)
        sources += fields
        skipped += left_out
    present = {(source.plate, source.well) for source in sources}
    absent = [f"{plate}/{well}" for plate, well in conditions if (plate, well) not in present]
    if absent:
        raise LayoutError(f"{conditions_uri}: well {absent[0]} is not in the plate (or has no fields)")

    def fields() -> Iterator[LoadedField]:
        for source in sources:
            yield load_plate_field(source, groups[source.plate_uri], channels, stain_z)

    info = write_dataset(
        out,
        fields(),
        len(sources),
        name=name or names[plate_uris[0]],
        stains=stains,
        labels=[],
        roles=dataset_roles,
        source=f"vsearch ingest {' '.join(plate_uris)} --conditions {conditions_uri}",
        tile=tile,
        pixel_size_um=pixel_size_um,
        overwrite=overwrite,
        progress=progress,
    )
    return PlateIngest(info, skipped)
