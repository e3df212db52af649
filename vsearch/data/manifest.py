"""The manifest (one row per field) and ``dataset.json``: schema, validation, conditions."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Literal

import pandas as pd
import pyarrow as pa
from pydantic import BaseModel, Field, model_validator

MANIFEST_FILE = "manifest.parquet"
INFO_FILE = "dataset.json"
SHARDS_DIR = "shards"
FORMAT_VERSION = 1

CONTROL_KINDS = ("neg", "pos", "none")

Role = Literal["nuclei", "cytoplasm", "foci"]
ROLES: tuple[Role, ...] = ("nuclei", "cytoplasm", "foci")
# the synthetic screen's stain names: the roles of a dataset.json that records none
DEFAULT_ROLES: dict[Role, str] = {"nuclei": "nuclei", "cytoplasm": "cytoplasm", "foci": "dna_damage"}

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
    # which stain shows nuclei, which the cytoplasm, which DNA-damage foci; None: the synthetic names present
    roles: dict[Role, str] | None = None

    @model_validator(mode="after")
    def _roles_name_stains(self) -> DatasetInfo:
        for role, stain in (self.roles or {}).items():
            if stain not in self.stains:
                raise ValueError(f"role {role}={stain!r}: the dataset has no stain {stain!r} (it has {self.stains})")
        return self

    def stain_roles(self) -> dict[Role, str]:
        if self.roles is not None:
            return dict(self.roles)
        return {role: stain for role, stain in DEFAULT_ROLES.items() if stain in self.stains}

    def to_json(self) -> str:
        return json.dumps(self.model_dump(), indent=2)


def merge_roles(
    base: Mapping[str, str | None], stains: Sequence[str], overrides: Mapping[str, str | None] | None = None
) -> dict[Role, str]:
    """The roles of ``base`` whose stain is among ``stains``, with ``overrides`` on top (None removes a role). An
    override naming a stain that is not among ``stains`` is refused with the stain named."""
    roles = {role: stain for role, stain in base.items() if stain in stains}
    for role, stain in (overrides or {}).items():
        if stain is not None and stain not in stains:
            raise ValueError(f"roles: the {role} stain {stain!r} is not among the stains {list(stains)}")
        roles[role] = stain
    return {role: stain for role, stain in roles.items() if stain is not None}


def parse_roles(text: str) -> dict[Role, str | None]:
    """``nuclei=DAPI,cytoplasm=FITC,foci=Cy5`` → a role → stain mapping; ``foci=none`` says no stain has it."""
    roles: dict[Role, str | None] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        role, sep, stain = (piece.strip() for piece in item.partition("="))
        if not sep or not stain:
            raise ValueError(f"roles: {item!r} is not 'role=stain' (e.g. nuclei=DAPI,cytoplasm=FITC,foci=Cy5)")
        if role not in ROLES:
            raise ValueError(f"roles: unknown role {role!r}; roles are {', '.join(ROLES)}")
        if role in roles:
            raise ValueError(f"roles: {role!r} is given twice")
        roles[role] = None if stain.lower() == "none" else stain
    return roles


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
