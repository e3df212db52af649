"""One field's pixels, and the Parquet shard encoding of fields (raw little-endian arrays in binary columns)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

BF_COLUMN = "bf"
STAIN_PREFIX = "stain:"
LABEL_PREFIX = "label:"
IMAGE_DTYPE = np.dtype("<u2")
LABEL_DTYPE = np.dtype("<i4")


@dataclass(frozen=True)
class FieldImages:
    """Bright-field ``[Z,H,W]`` uint16, each stain ``[H,W]`` uint16, ground-truth labels ``[H,W]`` int32."""

    field_id: str
    bf: np.ndarray
    stains: dict[str, np.ndarray]
    labels: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        return (
            self.bf.nbytes + sum(a.nbytes for a in self.stains.values()) + sum(a.nbytes for a in self.labels.values())
        )


def shard_schema(stains: list[str], labels: list[str]) -> pa.Schema:
    columns = [("field_id", pa.string()), (BF_COLUMN, pa.binary())]
    columns += [(STAIN_PREFIX + s, pa.binary()) for s in stains]
    columns += [(LABEL_PREFIX + name, pa.binary()) for name in labels]
    return pa.schema(columns)


def check_field(images: FieldImages, stains: list[str], labels: list[str], bf_planes: int) -> None:
    """Refuse a field whose arrays do not match the dataset's channels, shapes and dtypes."""
    where = f"field {images.field_id!r}"
    if images.bf.ndim != 3 or images.bf.shape[0] != bf_planes:
        raise ValueError(f"{where}: bright-field must be [Z={bf_planes},H,W], got shape {images.bf.shape}")
    shape = images.bf.shape[1:]
    for kind, wanted, arrays, dtype in (
        ("stain", stains, images.stains, IMAGE_DTYPE),
        ("label", labels, images.labels, LABEL_DTYPE),
    ):
        if sorted(arrays) != sorted(wanted):
            raise ValueError(f"{where}: {kind}s {sorted(arrays)} differ from the dataset's {sorted(wanted)}")
        for name, array in arrays.items():
            if array.shape != shape:
                raise ValueError(f"{where}: {kind} {name!r} has shape {array.shape}, bright-field {shape}")
            if array.dtype.kind != dtype.kind or array.dtype.itemsize > dtype.itemsize:
                raise ValueError(f"{where}: {kind} {name!r} has dtype {array.dtype}, expected {dtype}")
    if images.bf.dtype.kind != "u" or images.bf.dtype.itemsize > 2:
        raise ValueError(f"{where}: bright-field has dtype {images.bf.dtype}, expected uint16")


def encode(images: FieldImages, stains: list[str], labels: list[str]) -> dict[str, object]:
    row: dict[str, object] = {
        "field_id": images.field_id,
        BF_COLUMN: np.ascontiguousarray(images.bf, dtype=IMAGE_DTYPE).tobytes(),
    }
    for name in stains:
        row[STAIN_PREFIX + name] = np.ascontiguousarray(images.stains[name], dtype=IMAGE_DTYPE).tobytes()
    for name in labels:
        row[LABEL_PREFIX + name] = np.ascontiguousarray(images.labels[name], dtype=LABEL_DTYPE).tobytes()
    return row


def decode(table: pa.Table, row: int, bf_planes: int, height: int, width: int) -> FieldImages:
    """Zero-copy views of one shard row; the arrays are read-only."""

    def view(column: str, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
        return np.frombuffer(table.column(column)[row].as_buffer(), dtype=dtype).reshape(shape)

    stains, labels = {}, {}
    for name in table.column_names:
        if name.startswith(STAIN_PREFIX):
            stains[name.removeprefix(STAIN_PREFIX)] = view(name, IMAGE_DTYPE, (height, width))
        elif name.startswith(LABEL_PREFIX):
            labels[name.removeprefix(LABEL_PREFIX)] = view(name, LABEL_DTYPE, (height, width))
    return FieldImages(
        field_id=table.column("field_id")[row].as_py(),
        bf=view(BF_COLUMN, IMAGE_DTYPE, (bf_planes, height, width)),
        stains=stains,
        labels=labels,
    )
