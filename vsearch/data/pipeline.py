"""Ray Data pipelines: a training stream that realises a composition, and an un-augmented validation set.

Each field is decoded once per epoch and cut into ``copies × patches_per_field`` random patches (crops, flips,
90° rotations), where ``copies`` is how often the composition drew it. Training patches travel as raw pixels
with each patch's normalisation (``vsearch.data.normalise``) beside them, applied on the trainer's device by
``vsearch.train.steps.normalised_patches``: the CPU copies two bytes a pixel, and the accelerator does the
arithmetic.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import numpy as np
import pandas as pd

from vsearch.data.dataset import Dataset, open_dataset_cached
from vsearch.data.normalise import input_affine, normalise_inputs, normalise_targets, target_affine

CHUNK_PATCHES = 64  # patches per block yielded by the training stream
FIELDS_PER_TASK = 4  # fields read, decoded and cut into patches by one Ray Data task
# uint16 pixels travel as int16 (raw − 32768, the same two bytes): torch supports int16 on every device
PIXEL_SHIFT = 32768


def augment_patches(
    x: np.ndarray,
    y: np.ndarray,
    out_x: np.ndarray,
    out_y: np.ndarray,
    rng: np.random.Generator,
    rows: np.ndarray | None = None,
) -> None:
    """Write random p×p crops of input ``[Z,H,W]`` and target ``[S,H,W]`` into ``out_x[rows]`` and
    ``out_y[rows]`` (``[n,Z,p,p]``, ``[n,S,p,p]``, any float dtype; all rows by default), each flipped and rotated
    by a random multiple of 90°, the same way for input and target: one strided copy per crop."""
    rows = np.arange(len(out_x)) if rows is None else rows
    n, patch = len(rows), out_x.shape[-1]
    _, h, w = x.shape
    if h < patch or w < patch:
        raise ValueError(f"fields of {h}×{w} are smaller than the {patch}-pixel patch")
    ys, xs = rng.integers(0, h - patch + 1, n), rng.integers(0, w - patch + 1, n)
    flips, turns = rng.integers(0, 2, n), rng.integers(0, 4, n)
    for i, row in enumerate(rows):
        window = np.s_[:, ys[i] : ys[i] + patch, xs[i] : xs[i] + patch]
        a, b = x[window], y[window]
        if flips[i]:
            a, b = a[:, :, ::-1], b[:, :, ::-1]
        out_x[row], out_y[row] = np.rot90(a, turns[i], axes=(1, 2)), np.rot90(b, turns[i], axes=(1, 2))


def shifted_pixels(raw: np.ndarray) -> np.ndarray:
    """uint16 pixels as int16 ``raw − PIXEL_SHIFT`` (a bit flip, no arithmetic)."""
    return (raw.astype(np.uint16, copy=False) ^ np.uint16(PIXEL_SHIFT)).view(np.int16)


class AugmentationEpochs:
    """Ray actor counting how often each block of fields has been cut into patches: a training stream runs every
    block once an epoch, so the count is the epoch, and a Ray Data task, which cannot know it otherwise, can seed
    its augmentation with it (new crops each epoch, the same crops in a rerun)."""

    def __init__(self) -> None:
        self.served: dict[str, int] = {}

    def next_epoch(self, block: str) -> int:
        epoch = self.served.get(block, 0)
        self.served[block] = epoch + 1
        return epoch


def augmentation_seed(seed: int, epoch: int, field_ids: list[str]) -> list[int]:
    """The seed sequence of one block's patches: the run's seed, the epoch, and the block's fields."""
    return [seed, epoch, zlib.crc32("\n".join(field_ids).encode())]


class FieldsToPatches:
    """Ray Data ``map_batches`` function: rows ``field_id, copies, condition`` → augmented training patches.

    Each task reads its fields from the shards (only the bright-field and the wanted stains), decodes each once,
    then yields their patches interleaved, ``CHUNK_PATCHES`` at a time, so batches mix fields without a shuffle in
    the trainer. Patches are ``x`` ``[n,Z,p,p]`` and ``y`` ``[n,S,p,p]`` int16 pixels (see ``shifted_pixels``)
    with float32 ``x_offset``, ``x_scale`` ``[n,Z]`` and ``y_offset``, ``y_scale`` ``[n,S]``: the patch's
    normalisation, in shifted units. Every random choice comes from ``augmentation_seed``, with the epoch from the
    ``AugmentationEpochs`` actor ``epochs``."""

    def __init__(
        self,
        uri: str,
        stains: list[str],
        patch: int,
        patches_per_field: int,
        ranges: dict[str, list[float]] | None,
        *,
        seed: int,
        epochs,
    ) -> None:
        self.uri, self.stains, self.patch = uri, stains, patch
        self.patches_per_field, self.ranges = patches_per_field, ranges
        self.seed, self.epochs = seed, epochs

    def __call__(self, batch: dict[str, np.ndarray]) -> Iterator[dict[str, np.ndarray]]:
        import ray

        block = [str(i) for i in batch["field_id"]]
        epoch = ray.get(self.epochs.next_epoch.remote("\n".join(block)))
        rng = np.random.default_rng(augmentation_seed(self.seed, epoch, block))
        copies = dict(zip(batch["field_id"], batch["copies"], strict=True))
        conditions = dict(zip(batch["field_id"], batch["condition"], strict=True))
        pixels, affines, ids, counts = [], [], [], []
        dataset = open_dataset_cached(self.uri)
        for field in dataset.iter_fields(list(batch["field_id"]), stains=self.stains, labels=False):
            x_offset, x_scale = input_affine(field.bf)
            targets = np.stack([field.stains[name] for name in self.stains])
            y_offset, y_scale = target_affine(targets, self.stains, self.ranges)
            pixels.append((shifted_pixels(field.bf), shifted_pixels(targets)))
            affines.append((x_offset - PIXEL_SHIFT, x_scale, y_offset - PIXEL_SHIFT, y_scale))
            ids.append(field.field_id)
            counts.append(int(copies[field.field_id]) * self.patches_per_field)
        field_ids, field_conditions = np.array(ids), np.array([conditions[i] for i in ids])
        x_offset, x_scale, y_offset, y_scale = (np.stack(a) for a in zip(*affines, strict=True))
        owners = rng.permutation(np.repeat(np.arange(len(ids)), counts))
        for start in range(0, len(owners), CHUNK_PATCHES):
            chunk = owners[start : start + CHUNK_PATCHES]
            x = np.empty((len(chunk), x_offset.shape[1], self.patch, self.patch), np.int16)
            y = np.empty((len(chunk), len(self.stains), self.patch, self.patch), np.int16)
            for owner in np.unique(chunk):
                augment_patches(*pixels[owner], x, y, rng, np.flatnonzero(chunk == owner))
            yield {
                "x": x,
                "y": y,
                "x_offset": x_offset[chunk],
                "x_scale": x_scale[chunk],
                "y_offset": y_offset[chunk],
                "y_scale": y_scale[chunk],
                "field_id": field_ids[chunk],
                "condition": field_conditions[chunk],
            }


class FieldsToTensors:
    """Ray Data ``map_batches`` function: rows ``field_id`` → whole normalised fields (validation)."""

    def __init__(self, uri: str, stains: list[str], ranges: dict[str, list[float]] | None) -> None:
        self.uri, self.stains, self.ranges = uri, stains, ranges

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        dataset = open_dataset_cached(self.uri)
        fields = list(dataset.iter_fields(list(batch["field_id"]), stains=self.stains, labels=False))
        return {
            "x": np.stack([normalise_inputs(f.bf) for f in fields]),
            "y": np.stack([normalise_targets(f.stains, self.stains, self.ranges) for f in fields]),
            "field_id": np.array([f.field_id for f in fields]),
        }


def _field_rows(dataset: Dataset, rows: pd.DataFrame, fields_per_task: int):
    """A Ray dataset of field rows in shard order, ``fields_per_task`` to a block, so tasks read in parallel."""
    import ray.data

    order = dataset.manifest.set_index("field_id").loc[rows.field_id, ["shard", "row"]].reset_index(drop=True)
    rows = rows.reset_index(drop=True).join(order).sort_values(["shard", "row"]).drop(columns=["shard", "row"])
    blocks = max(1, -(-len(rows) // fields_per_task))
    return ray.data.from_items(rows.to_dict("records"), override_num_blocks=blocks)


def patch_tasks(
    dataset: Dataset,
    sample: pd.DataFrame,
    stains: list[str],
    patch: int,
    patches_per_field: int,
    ranges: dict[str, list[float]] | None,
    *,
    seed: int,
):
    """The training stream's parts: a Ray dataset of the sampled fields' rows, ``FIELDS_PER_TASK`` to a block, and
    the ``FieldsToPatches`` each block goes through (one task a block)."""
    import ray

    epochs = ray.remote(num_cpus=0)(AugmentationEpochs).remote()
    patcher = FieldsToPatches(dataset.uri, stains, patch, patches_per_field, ranges, seed=seed, epochs=epochs)
    return _field_rows(dataset, sample[["field_id", "copies", "condition"]], FIELDS_PER_TASK), patcher


def training_stream(rows, patcher: FieldsToPatches):
    """Augmented patches of the sampled fields (columns of ``FieldsToPatches``) from ``patch_tasks``' parts, for
    ``ray.train``: each sampled field is read and decoded once, in one task, however many patches it yields.
    Patches are a function of the seed and the epoch; read them in order (``preserve_order``) to get the same
    batches in a rerun."""
    return rows.map_batches(patcher, batch_format="numpy", batch_size=FIELDS_PER_TASK)


def validation_set(dataset: Dataset, field_ids: list[str], stains: list[str], ranges: dict[str, list[float]] | None):
    """Whole, un-augmented, normalised fields (``x``, ``y``, ``field_id``)."""
    rows = _field_rows(dataset, pd.DataFrame({"field_id": field_ids}), FIELDS_PER_TASK)
    return rows.map_batches(FieldsToTensors(dataset.uri, stains, ranges), batch_format="numpy", batch_size=4)
