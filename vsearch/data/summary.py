"""A dataset's summary: fields per condition, plates, controls, stains and their roles, image size, bytes."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from vsearch.data.dataset import Dataset


@dataclass(frozen=True)
class DatasetSummary:
    uri: str
    name: str
    stains: list[str]
    roles: dict[str, str]  # role -> stain
    labels: list[str]
    bf_planes: int
    pixel_size_um: float | None
    fields: int
    plates: int
    image_sizes: list[tuple[int, int]]
    shard_files: int
    shard_bytes: int
    conditions: pd.DataFrame  # one row per (cell_type, phenotype)


def describe(dataset: Dataset) -> DatasetSummary:
    m = dataset.manifest
    conditions = (
        m.groupby(["cell_type", "phenotype"], sort=True)
        .agg(
            fields=("field_id", "size"),
            wells=("split_group", "nunique"),
            plates=("plate", "nunique"),
            neg_control_wells=("split_group", lambda g: g[m.loc[g.index, "is_control"] == "neg"].nunique()),
            pos_control_wells=("split_group", lambda g: g[m.loc[g.index, "is_control"] == "pos"].nunique()),
        )
        .reset_index()
    )
    shards = sorted(set(m["shard"]))
    shard_bytes = sum(dataset.fs.size(dataset.shard_path(s)) for s in shards)
    sizes = sorted({(int(h), int(w)) for h, w in zip(m["height"], m["width"], strict=True)})
    return DatasetSummary(
        uri=dataset.uri,
        name=dataset.info.name,
        stains=dataset.info.stains,
        roles=dataset.info.stain_roles(),
        labels=dataset.info.labels,
        bf_planes=dataset.info.bf_planes,
        pixel_size_um=dataset.info.pixel_size_um,
        fields=len(m),
        plates=m["plate"].nunique(),
        image_sizes=sizes,
        shard_files=len(shards),
        shard_bytes=shard_bytes,
        conditions=conditions,
    )
