"""Writing and reading datasets: ``manifest.parquet``, ``dataset.json`` and ``shards/part-*.parquet``.

A dataset becomes visible when its manifest is written, and the manifest is written last: a failed write leaves
no manifest (and removes its own shards), and overwriting keeps the old dataset readable until the new manifest
replaces it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from functools import cached_property, lru_cache

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import ValidationError

from vsearch.config import describe_errors
from vsearch.data import storage
from vsearch.data.fields import (
    BF_COLUMN,
    LABEL_PREFIX,
    STAIN_PREFIX,
    FieldImages,
    check_field,
    decode,
    encode,
    shard_schema,
)
from vsearch.data.manifest import (
    INFO_FILE,
    MANIFEST_COLUMNS,
    MANIFEST_FILE,
    SHARDS_DIR,
    DatasetInfo,
    manifest_table,
)

SHARD_BYTES = 192 * 2**20
ROW_GROUP_BYTES = 8 * 2**20
COMPRESSION = "zstd"


class DatasetWriter:
    """Streams fields into shards; ``commit`` publishes the dataset, ``abort`` removes what was written.

    Used as a context manager it commits on success and aborts on any exception.
    """

    def __init__(
        self,
        uri: str,
        info: DatasetInfo,
        *,
        overwrite: bool = False,
        shard_bytes: int = SHARD_BYTES,
        row_group_bytes: int = ROW_GROUP_BYTES,
    ) -> None:
        self.uri = uri
        self.info = info
        self.fs, self.root = storage.filesystem(uri)
        self._manifest_path = f"{self.root}/{MANIFEST_FILE}"
        if self.fs.exists(self._manifest_path) and not overwrite:
            raise FileExistsError(f"{uri} already holds a dataset ({MANIFEST_FILE}); pass overwrite to replace it")
        self._token = uuid.uuid4().hex[:8]
        self._schema = shard_schema(info.stains, info.labels)
        self._shard_bytes = shard_bytes
        self._row_group_bytes = row_group_bytes
        self._rows: list[dict[str, object]] = []  # encoded fields not yet in a row group
        self._buffered_bytes = 0
        self._meta: list[dict[str, object]] = []
        self._written: list[str] = []  # shards started, the open one last
        self._field_ids: set[str] = set()
        self._shard: tuple[object, pq.ParquetWriter] | None = None  # the open shard's file and writer
        self._shard_index = 0
        self._shard_rows = 0
        self._shard_bytes_written = 0

    def add(self, meta: dict[str, object], images: FieldImages) -> None:
        """Add one field: ``meta`` holds the manifest columns other than shape, stains, shard and row."""
        if images.field_id in self._field_ids:
            raise ValueError(f"field_id {images.field_id!r} is written twice")
        check_field(images, self.info.stains, self.info.labels, self.info.bf_planes)
        self._field_ids.add(images.field_id)
        _, height, width = images.bf.shape
        self._meta.append(
            {
                **meta,
                "field_id": images.field_id,
                "height": height,
                "width": width,
                "bf_planes": self.info.bf_planes,
                "stains": list(self.info.stains),
                "shard": self._shard_name(self._shard_index),
                "row": self._shard_rows,
            }
        )
        self._rows.append(encode(images, self.info.stains, self.info.labels))
        self._buffered_bytes += images.nbytes
        self._shard_rows += 1
        if self._buffered_bytes >= self._row_group_bytes:
            self._write_row_group()
        if self._shard_bytes_written + self._buffered_bytes >= self._shard_bytes:
            self._close_shard()

    def commit(self) -> pd.DataFrame:
        if not self._meta:
            raise ValueError(f"no fields to write to {self.uri}")
        self._close_shard()
        manifest = pd.DataFrame(self._meta)[MANIFEST_COLUMNS]
        table = manifest_table(manifest)
        previous = self._previous_shards()
        with self.fs.open(f"{self.root}/{INFO_FILE}", "w") as f:
            f.write(self.info.to_json())
        with self.fs.open(self._manifest_path, "wb") as f:
            pq.write_table(table, f)
        for shard in previous - set(self._written):
            self.fs.rm(f"{self.root}/{shard}")
        return manifest

    def abort(self) -> None:
        if self._shard is not None:
            file, writer = self._shard
            self._shard = None
            writer.close()
            file.close()
        for shard in self._written:
            path = f"{self.root}/{shard}"
            if self.fs.exists(path):
                self.fs.rm(path)
        self._written.clear()

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    def _shard_name(self, index: int) -> str:
        return f"{SHARDS_DIR}/part-{self._token}-{index:05d}.parquet"

    def _write_row_group(self) -> None:
        """The buffered fields as one row group of the open shard (opened here if none is): the writer holds at
        most a row group's worth of fields, however big the shard."""
        if not self._rows:
            return
        if self._shard is None:
            name = self._shard_name(self._shard_index)
            self._written.append(name)
            file = self.fs.open(f"{self.root}/{name}", "wb")
            writer = pq.ParquetWriter(
                file,
                self._schema,
                compression=COMPRESSION,
                use_dictionary=["field_id"],
                write_statistics=["field_id"],
            )
            self._shard = (file, writer)
        table = pa.Table.from_pylist(self._rows, schema=self._schema)
        self._shard[1].write_table(table, row_group_size=len(self._rows))
        self._shard_bytes_written += self._buffered_bytes
        self._rows, self._buffered_bytes = [], 0

    def _close_shard(self) -> None:
        self._write_row_group()
        if self._shard is None:
            return
        file, writer = self._shard
        self._shard = None
        writer.close()
        file.close()
        self._shard_index += 1
        self._shard_rows = self._shard_bytes_written = 0

    def _previous_shards(self) -> set[str]:
        if not self.fs.exists(self._manifest_path):
            return set()
        with self.fs.open(self._manifest_path, "rb") as f:
            return set(pq.read_table(f, columns=["shard"]).column("shard").to_pylist())


class Dataset:
    """A published dataset: its ``info``, its ``manifest`` (one row per field) and readers of field pixels."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.fs, self.root = storage.filesystem(uri)
        manifest_path = f"{self.root}/{MANIFEST_FILE}"
        if not self.fs.exists(manifest_path):
            raise FileNotFoundError(f"{uri} is not a vsearch dataset: {MANIFEST_FILE} is missing")
        with self.fs.open(f"{self.root}/{INFO_FILE}") as f:
            try:
                self.info = DatasetInfo.model_validate_json(f.read())
            except ValidationError as error:
                raise ValueError(f"{uri}/{INFO_FILE}: {describe_errors(error)}") from None
        with self.fs.open(manifest_path, "rb") as f:
            self.manifest = pq.read_table(f).to_pandas()

    @cached_property
    def _by_id(self) -> pd.DataFrame:
        return self.manifest.set_index("field_id")

    def shard_path(self, shard: str) -> str:
        """Path of a manifest ``shard`` inside ``fs``: relative names resolve against the dataset root."""
        if "://" in shard:
            return shard.split("://", 1)[1]
        return shard if shard.startswith("/") else f"{self.root}/{shard}"

    def read(self, field_id: str) -> FieldImages:
        """One field's arrays (reads only the row group that holds it)."""
        if field_id not in self._by_id.index:
            raise KeyError(f"field_id {field_id!r} is not in {self.uri}")
        return next(self.iter_fields([field_id]))

    def iter_fields(
        self, field_ids: Iterable[str] | None = None, *, stains: list[str] | None = None, labels: bool = True
    ) -> Iterator[FieldImages]:
        """Fields in shard order, decoding each shard's needed row groups once; all fields when ``field_ids`` is
        None. Only the columns asked for are read: ``stains`` (all by default), and the labels unless
        ``labels`` is False."""
        manifest = self.manifest if field_ids is None else self._select(field_ids)
        columns = self._columns(self.info.stains if stains is None else stains, labels)
        rows_per_shard = self.manifest["shard"].value_counts()
        for shard, rows in manifest.groupby("shard", sort=True):
            path = self.shard_path(shard)
            wanted = rows.sort_values("row")
            if len(wanted) == rows_per_shard[shard]:
                table, positions = pq.read_table(path, filesystem=self.fs, columns=columns), wanted["row"].to_numpy()
            else:
                table, positions = self._read_rows(path, wanted["row"].to_numpy(), columns)
            for entry, row in zip(wanted.itertuples(), positions, strict=True):
                yield decode(table, int(row), int(entry.bf_planes), int(entry.height), int(entry.width))

    def _columns(self, stains: list[str], labels: bool) -> list[str]:
        unknown = [s for s in stains if s not in self.info.stains]
        if unknown:
            raise KeyError(f"stain {unknown[0]!r} is not in {self.uri} (stains: {self.info.stains})")
        columns = ["field_id", BF_COLUMN] + [STAIN_PREFIX + s for s in stains]
        return columns + [LABEL_PREFIX + name for name in self.info.labels] if labels else columns

    def _read_rows(self, path: str, rows: np.ndarray, columns: list[str]) -> tuple[pa.Table, np.ndarray]:
        """The row groups holding ``rows`` (sorted) and the rows' positions in them."""
        with self.fs.open(path, "rb") as f:
            shard = pq.ParquetFile(f)
            sizes = [shard.metadata.row_group(g).num_rows for g in range(shard.num_row_groups)]
            starts = np.concatenate([[0], np.cumsum(sizes)])
            groups = np.unique(np.searchsorted(starts, rows, side="right") - 1)
            table = shard.read_row_groups(groups.tolist(), columns=columns)
        offsets = np.concatenate([[0], np.cumsum([sizes[g] for g in groups])])
        group_of_row = np.searchsorted(starts, rows, side="right") - 1
        return table, offsets[np.searchsorted(groups, group_of_row)] + rows - starts[group_of_row]

    def _select(self, field_ids: Iterable[str]) -> pd.DataFrame:
        wanted = list(field_ids)
        unknown = set(wanted) - set(self._by_id.index)
        if unknown:
            raise KeyError(f"field_ids not in {self.uri}: {sorted(unknown)[:5]}")
        return self.manifest[self.manifest["field_id"].isin(wanted)]


def open_dataset(uri: str) -> Dataset:
    return Dataset(uri)


@lru_cache(maxsize=8)
def open_dataset_cached(uri: str) -> Dataset:
    """One ``Dataset`` per URI per process: for Ray tasks, which read many fields of few datasets."""
    return Dataset(uri)
