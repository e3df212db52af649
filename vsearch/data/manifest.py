"""The manifest (one row per field) and ``dataset.json``: schema, validation, conditions."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
from pydantic import BaseModel, Field

MANIFEST_FILE = "manifest.parquet"
INFO_FILE = "dataset.json"
SHARDS_DIR = "shards"
FORMAT_VERSION = 1

CONTROL_KINDS = ("neg", "pos", "none")

MANIFEST_SCHEMA = pa.schema(
    [
        ("field_id", pa.string()),
        ("plate", pa.string()),
        ("well", pa.string()),
        ("site", pa.int32()),
        ("tile", pa.int32()),
        ("origin_y", pa.int32()),
        ("origin_x", pa.int32()),
        ("cell_type", pa.string()),
        ("phenotype", pa.string()),
        ("treatment", pa.string()),
        ("concentration", pa.float64()),
        ("is_control", pa.string()),
        ("split_group", pa.string()),
        ("height", pa.int32()),
        ("width", pa.int32()),
        ("bf_planes", pa.int32()),
        ("stains", pa.list_(pa.string())),
        ("shard", pa.string()),
        ("row", pa.int64()),
    ]
)
MANIFEST_COLUMNS = MANIFEST_SCHEMA.names


class DatasetInfo(BaseModel):
    """Contents of ``dataset.json``."""

    name: str
    stains: list[str]
    labels: list[str] = Field(default_factory=list)
    bf_planes: int
    pixel_size_um: float | None = None
    source: str = ""
    version: int = FORMAT_VERSION

    def to_json(self) -> str:
        return json.dumps(self.model_dump(), indent=2)


def split_group(plate: str, well: str) -> str:
    """Fields that share a well share a split group, so no well is ever split across train and test."""
    return f"{plate}/{well}"


def condition_of(cell_type: str, phenotype: str) -> str:
    return f"{cell_type}/{phenotype}"


def conditions_of(manifest: pd.DataFrame) -> pd.Series:
    """``condition_of`` for every row of a manifest (same index)."""
    return manifest.cell_type + "/" + manifest.phenotype


def manifest_table(manifest: pd.DataFrame) -> pa.Table:
    missing = [c for c in MANIFEST_COLUMNS if c not in manifest.columns]
    if missing:
        raise ValueError(f"manifest lacks columns: {', '.join(missing)}")
    bad = set(manifest["is_control"]) - set(CONTROL_KINDS)
    if bad:
        raise ValueError(f"manifest field 'is_control' has {sorted(bad)}; expected one of {CONTROL_KINDS}")
    duplicated = manifest["field_id"][manifest["field_id"].duplicated()]
    if len(duplicated):
        raise ValueError(f"manifest field_id is not unique: {duplicated.iloc[0]!r} repeats")
    return pa.Table.from_pandas(manifest[MANIFEST_COLUMNS], schema=MANIFEST_SCHEMA, preserve_index=False)
