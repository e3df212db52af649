"""Ray Data pipelines: a training stream that realises a composition, and an un-augmented validation set.

Each field is decoded once per epoch and cut into ``copies × patches_per_field`` random patches (crops, flips,
90° rotations), where ``copies`` is how often the composition drew it. Inputs are normalised per field and
bright-field plane (1st–99.8th percentile); targets per stain with dataset-wide ranges (so a brighter toxic
nucleus stays brighter) or, on request, per field.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from vsearch.config import check_composition
from vsearch.data.dataset import Dataset
from vsearch.data.fields import BF_COLUMN, IMAGE_DTYPE, STAIN_PREFIX
from vsearch.data.manifest import condition_of
from vsearch.data.storage import is_remote

INPUT_PERCENTILES = (1.0, 99.8)
CHUNK_PATCHES = 64  # patches per block yielded by the training stream
TARGET_PERCENTILES = (0.5, 99.9)


def composition_counts(composition: dict[str, float], budget: int) -> dict[str, int]:
    """Fields per condition: ``budget × weight`` rounded by largest remainder, so the counts sum to ``budget``."""
    check_composition(composition)
    exact = {c: w * budget for c, w in composition.items()}
    counts = {c: int(np.floor(v)) for c, v in exact.items()}
    by_remainder = sorted(exact, key=lambda c: (exact[c] - counts[c], c), reverse=True)
    for condition in by_remainder[: budget - sum(counts.values())]:
        counts[condition] += 1
    return counts


def sample_composition(train: pd.DataFrame, composition: dict[str, float], budget: int, seed: int) -> pd.DataFrame:
    """Draw ``budget`` training fields realising ``composition``: rows ``field_id, condition, copies``.

    Within a condition fields are drawn without replacement while they last, then cycled again, so a small
    condition is repeated evenly rather than at random."""
    conditions = pd.Series(
        [condition_of(c, p) for c, p in zip(train.cell_type, train.phenotype, strict=True)], index=train.index
    )
    known = sorted(set(conditions))
    unknown = [c for c in composition if c not in known]
    if unknown:
        raise ValueError(f"composition names condition {unknown[0]!r}, which has no training fields; known: {known}")
    rng = np.random.default_rng(seed)
    rows = []
    for condition, count in composition_counts(composition, budget).items():
        if count == 0:
            continue
        ids = np.sort(train.field_id[conditions == condition].to_numpy())
        order = np.concatenate([rng.permutation(ids) for _ in range(-(-count // len(ids)))])[:count]
        picked, copies = np.unique(order, return_counts=True)
        rows += [{"field_id": f, "condition": condition, "copies": int(k)} for f, k in zip(picked, copies, strict=True)]
    return pd.DataFrame(rows, columns=["field_id", "condition", "copies"])


def normalise_inputs(bf: np.ndarray) -> np.ndarray:
    """Each bright-field plane mapped by its own 1st–99.8th percentiles to about [0, 1] (float32)."""
    flat = bf.reshape(bf.shape[0], -1).astype(np.float32)
    lo, hi = np.percentile(flat, INPUT_PERCENTILES, axis=1)
    return ((bf - lo[:, None, None]) / np.maximum(hi - lo, 1e-6)[:, None, None]).astype(np.float32)


def target_ranges(
    dataset: Dataset, field_ids: list[str], stains: list[str], max_fields: int = 32
) -> dict[str, list[float]]:
    """Dataset-wide (low, high) per stain: medians of per-field 0.5th / 99.9th percentiles over up to
    ``max_fields`` fields."""
    chosen = sorted(field_ids)[:: max(1, len(field_ids) // max_fields)][:max_fields]
    values: dict[str, list[np.ndarray]] = {s: [] for s in stains}
    for field in dataset.iter_fields(chosen):
        for stain in stains:
            values[stain].append(np.percentile(field.stains[stain], TARGET_PERCENTILES))
    return {s: np.median(np.stack(v), axis=0).tolist() for s, v in values.items()}


def normalise_targets(
    stains: dict[str, np.ndarray], names: list[str], ranges: dict[str, list[float]] | None
) -> np.ndarray:
    """Stains ``[S,H,W]`` float32: by the dataset ``ranges``, or per field when ``ranges`` is None."""
    out = []
    for name in names:
        image = stains[name].astype(np.float32)
        lo, hi = ranges[name] if ranges is not None else np.percentile(image, TARGET_PERCENTILES)
        out.append((image - lo) / max(hi - lo, 1e-6))
    return np.stack(out)


@dataclass(frozen=True)
class FieldShape:
    bf_planes: int
    height: int
    width: int
    stains: tuple[str, ...]


def _decode(table: pa.Table, row: int, shape: FieldShape) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    def view(column: str, dims: tuple[int, ...]) -> np.ndarray:
        return np.frombuffer(table.column(column)[row].as_buffer(), dtype=IMAGE_DTYPE).reshape(dims)

    bf = view(BF_COLUMN, (shape.bf_planes, shape.height, shape.width))
    return bf, {s: view(STAIN_PREFIX + s, (shape.height, shape.width)) for s in shape.stains}


def augment_patches(
    x: np.ndarray, y: np.ndarray, n: int, patch: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random patch×patch crops of input ``[Z,H,W]`` and target ``[S,H,W]``, each flipped and rotated by a
    random multiple of 90° (the same way for input and target)."""
    _, h, w = x.shape
    if h < patch or w < patch:
        raise ValueError(f"fields of {h}×{w} are smaller than the {patch}-pixel patch")
    ys, xs = rng.integers(0, h - patch + 1, n), rng.integers(0, w - patch + 1, n)
    flips, turns = rng.integers(0, 2, n), rng.integers(0, 4, n)
    xp = np.empty((n, x.shape[0], patch, patch), np.float32)
    yp = np.empty((n, y.shape[0], patch, patch), np.float32)
    for i in range(n):
        window = np.s_[:, ys[i] : ys[i] + patch, xs[i] : xs[i] + patch]
        a, b = x[window], y[window]
        if flips[i]:
            a, b = a[:, :, ::-1], b[:, :, ::-1]
        xp[i], yp[i] = np.rot90(a, turns[i], axes=(1, 2)), np.rot90(b, turns[i], axes=(1, 2))
    return xp, yp


class FieldsToPatches:
    """Ray Data ``map_batches`` function: shard rows → augmented training patches."""

    def __init__(
        self,
        shapes: dict[str, FieldShape],
        copies: dict[str, int],
        conditions: dict[str, str],
        patch: int,
        patches_per_field: int,
        ranges: dict[str, list[float]] | None,
    ) -> None:
        self.shapes, self.copies, self.conditions = shapes, copies, conditions
        self.patch, self.patches_per_field, self.ranges = patch, patches_per_field, ranges
        self.rng = np.random.default_rng()

    def __call__(self, table: pa.Table) -> Iterator[dict[str, np.ndarray]]:
        """Decode and normalise each field once, then yield its patches interleaved with the other fields' of
        this batch, ``CHUNK_PATCHES`` at a time, so batches mix fields without a shuffle in the trainer."""
        fields = []
        for row, field_id in enumerate(table.column("field_id").to_pylist()):
            shape = self.shapes[field_id]
            bf, stains = _decode(table, row, shape)
            targets = normalise_targets(stains, list(shape.stains), self.ranges)
            fields.append((normalise_inputs(bf), targets, self.conditions[field_id]))
        counts = [self.copies[f] * self.patches_per_field for f in table.column("field_id").to_pylist()]
        owners = self.rng.permutation(np.repeat(np.arange(len(fields)), counts))
        for start in range(0, len(owners), CHUNK_PATCHES):
            chunk = owners[start : start + CHUNK_PATCHES]
            xs, ys, conditions = [], [], []
            for owner, n in zip(*np.unique(chunk, return_counts=True), strict=True):
                x, y = augment_patches(fields[owner][0], fields[owner][1], int(n), self.patch, self.rng)
                xs.append(x)
                ys.append(y)
                conditions += [fields[owner][2]] * int(n)
            order = self.rng.permutation(len(chunk))
            # float16 halves what crosses the object store; the training loop widens on its device
            yield {
                "x": np.concatenate(xs)[order].astype(np.float16),
                "y": np.concatenate(ys)[order].astype(np.float16),
                "condition": np.array(conditions)[order],
            }


class FieldsToTensors:
    """Ray Data ``map_batches`` function: shard rows → whole normalised fields (validation, prediction)."""

    def __init__(self, shapes: dict[str, FieldShape], ranges: dict[str, list[float]] | None) -> None:
        self.shapes, self.ranges = shapes, ranges

    def __call__(self, table: pa.Table) -> dict[str, np.ndarray]:
        ids = table.column("field_id").to_pylist()
        xs, ys = [], []
        for row, field_id in enumerate(ids):
            shape = self.shapes[field_id]
            bf, stains = _decode(table, row, shape)
            xs.append(normalise_inputs(bf))
            ys.append(normalise_targets(stains, list(shape.stains), self.ranges))
        return {"x": np.stack(xs), "y": np.stack(ys), "field_id": np.array(ids)}


def pyarrow_filesystem(dataset: Dataset):
    """The pyarrow filesystem Ray Data should read ``dataset`` through (None for local paths)."""
    if not is_remote(dataset.uri):
        return None
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    return PyFileSystem(FSSpecHandler(dataset.fs))


def read_fields(dataset: Dataset, field_ids: list[str], stains: list[str]):
    """A Ray dataset of the shard rows of ``field_ids`` (only the shards that hold them, only needed columns)."""
    import ray.data

    manifest = dataset.manifest[dataset.manifest.field_id.isin(field_ids)]
    paths = [dataset.shard_path(s) for s in sorted(manifest.shard.unique())]
    columns = ["field_id", BF_COLUMN, *(STAIN_PREFIX + s for s in stains)]
    from ray.data.expressions import col

    rows = ray.data.read_parquet(
        paths, filesystem=pyarrow_filesystem(dataset), override_num_blocks=max(1, min(len(field_ids), 64))
    )
    return rows.select_columns(columns).filter(expr=col("field_id").is_in(sorted(field_ids)))


def field_shapes(dataset: Dataset, field_ids: list[str], stains: list[str]) -> dict[str, FieldShape]:
    rows = dataset.manifest.set_index("field_id").loc[field_ids]
    return {
        f: FieldShape(int(r.bf_planes), int(r.height), int(r.width), tuple(stains))
        for f, r in zip(rows.index, rows.itertuples(), strict=True)
    }


def training_stream(
    dataset: Dataset,
    sample: pd.DataFrame,
    stains: list[str],
    patch: int,
    patches_per_field: int,
    ranges: dict[str, list[float]] | None,
):
    """Augmented patches (``x``, ``y``, ``condition``) of the sampled fields, for ``ray.train``."""
    ids = sample.field_id.tolist()
    patcher = FieldsToPatches(
        field_shapes(dataset, ids, stains),
        dict(zip(sample.field_id, sample.copies, strict=True)),
        dict(zip(sample.field_id, sample.condition, strict=True)),
        patch,
        patches_per_field,
        ranges,
    )
    return read_fields(dataset, ids, stains).map_batches(patcher, batch_format="pyarrow", batch_size=4)


def validation_set(dataset: Dataset, field_ids: list[str], stains: list[str], ranges: dict[str, list[float]] | None):
    """Whole, un-augmented, normalised fields (``x``, ``y``, ``field_id``)."""
    converter = FieldsToTensors(field_shapes(dataset, field_ids, stains), ranges)
    return read_fields(dataset, field_ids, stains).map_batches(converter, batch_format="pyarrow", batch_size=4)
