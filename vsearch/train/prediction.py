"""Prediction: a checkpoint's model applied to fields of a dataset, in memory (``predict_fields``) or written as
a dataset with the same field ids (``predict``, so ``vsearch evaluate`` can score it). Predictions return to
uint16 through the training set's stain ranges stored in the checkpoint or, for a model trained on per-field
normalised targets, through each field's own real-stain range (``inverse_ranges``)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vsearch.data import storage
from vsearch.data.dataset import DatasetWriter, open_dataset
from vsearch.data.fields import FieldImages
from vsearch.data.manifest import DatasetInfo, merge_roles
from vsearch.data.normalise import TARGET_PERCENTILES, normalise_inputs, plane_percentiles
from vsearch.train.checkpoint import load_model

META_COLUMNS = [
    "plate", "well", "site", "tile", "origin_y", "origin_x", "cell_type", "phenotype", "treatment", "concentration",
    "is_control", "split_group",
]  # fmt: skip


def to_uint16(normalised: np.ndarray, low: float, high: float) -> np.ndarray:
    return np.clip(np.rint(normalised * (high - low) + low), 0, 65535).astype(np.uint16)


@contextmanager
def local_checkpoint(uri: str) -> Iterator[Path]:
    """A local folder with the checkpoint (or run folder) at ``uri``, downloaded when it is remote."""
    if not storage.is_remote(uri):
        yield Path(uri)
        return
    with tempfile.TemporaryDirectory() as tmp:
        fs, path = storage.filesystem(uri)
        fs.get(path, tmp, recursive=True)
        yield Path(tmp)


def per_field_targets(meta: dict) -> bool:
    """Whether the checkpoint's model learnt each field's stains normalised by that field's own range."""
    return meta["config"]["data"].get("target_normalisation", "dataset") == "field"


def inverse_ranges(meta: dict, field: FieldImages) -> dict[str, list[float]]:
    """The (low, high) each predicted stain is mapped back with: the training set's dataset-wide ranges, or for a
    per-field model the field's own real 0.5th–99.9th percentiles, the map it learnt (its intensities are then
    relative to the real field's, not absolute)."""
    stains = meta["stains"]
    if not per_field_targets(meta):
        return {s: meta["target_ranges"][s] for s in stains}
    missing = [s for s in stains if s not in field.stains]
    if missing:
        raise ValueError(
            f"field {field.field_id!r} has no real {missing[0]!r}: a model trained with target_normalisation: field "
            "predicts intensities relative to the field's real stain, so it can only be mapped back where that exists"
        )
    low, high = plane_percentiles(np.stack([field.stains[s] for s in stains]), TARGET_PERCENTILES)
    return {s: [float(low[i]), float(high[i])] for i, s in enumerate(stains)}


def predict_fields(
    model: nn.Module, meta: dict, fields: Iterable[FieldImages], batch_size: int = 4, device: str = "cpu"
) -> Iterator[FieldImages]:
    """Predicted stains (uint16) of each field, with its bright-field, batch by batch."""
    stains = meta["stains"]
    fields = iter(fields)
    while batch := [f for _, f in zip(range(batch_size), fields, strict=False)]:
        x = torch.from_numpy(np.stack([normalise_inputs(f.bf) for f in batch])).to(device)
        with torch.no_grad():
            y = model(x).float().cpu().numpy()
        for field, pred in zip(batch, y, strict=True):
            ranges = inverse_ranges(meta, field)
            yield FieldImages(
                field.field_id, field.bf, {s: to_uint16(pred[i], *ranges[s]) for i, s in enumerate(stains)}
            )


def predict(
    checkpoint: str,
    data: str,
    out: str,
    *,
    field_ids: list[str] | None = None,
    batch_size: int = 4,
    device: str | None = None,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> DatasetInfo:
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    with local_checkpoint(checkpoint) as folder:
        model, meta = load_model(folder, device)
    source = open_dataset(data)
    if source.info.bf_planes != meta["bf_planes"]:
        raise ValueError(f"{data} has {source.info.bf_planes} bright-field planes; the model takes {meta['bf_planes']}")
    info = DatasetInfo(
        name=f"{source.info.name} predicted",
        stains=meta["stains"],
        bf_planes=source.info.bf_planes,
        pixel_size_um=source.info.pixel_size_um,
        source=f"vsearch predict {checkpoint} --data {data}",
        roles=merge_roles(source.info.stain_roles(), meta["stains"]),
    )
    manifest = source.manifest.set_index("field_id")
    ids = list(manifest.index) if field_ids is None else field_ids
    with DatasetWriter(out, info, overwrite=overwrite) as writer:
        real = meta["stains"] if per_field_targets(meta) else []
        missing = [s for s in real if s not in source.info.stains]
        if missing:
            raise ValueError(
                f"{data} has no real {missing[0]!r}: this model was trained with target_normalisation: field, so "
                "its predictions are relative to each field's real stain and need it to be mapped back"
            )
        fields = source.iter_fields(ids, stains=real, labels=False)
        predicted = predict_fields(model, meta, fields, batch_size, device)
        for done, field in enumerate(predicted, start=1):
            writer.add(manifest.loc[field.field_id, META_COLUMNS].to_dict(), field)
            if progress:
                progress(done, len(ids))
    return info
