"""Prediction: a checkpoint's model applied to every field of a dataset, written as a dataset with the same
field ids (so ``vsearch evaluate`` can score it). Predictions return to uint16 through the training set's
stain ranges stored in the checkpoint."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from vsearch.data import storage
from vsearch.data.dataset import DatasetWriter, open_dataset
from vsearch.data.fields import FieldImages
from vsearch.data.manifest import DatasetInfo
from vsearch.data.pipeline import normalise_inputs
from vsearch.train.checkpoint import load_model

META_COLUMNS = [
    "plate", "well", "site", "tile", "origin_y", "origin_x", "cell_type", "phenotype", "treatment", "concentration",
    "is_control", "split_group",
]  # fmt: skip


def to_uint16(normalised: np.ndarray, low: float, high: float) -> np.ndarray:
    return np.clip(np.rint(normalised * (high - low) + low), 0, 65535).astype(np.uint16)


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
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(checkpoint)
        if storage.is_remote(checkpoint):
            fs, path = storage.filesystem(checkpoint)
            fs.get(path, tmp, recursive=True)
            local = Path(tmp)
        model, meta = load_model(local, device)
    source = open_dataset(data)
    if source.info.bf_planes != meta["bf_planes"]:
        raise ValueError(f"{data} has {source.info.bf_planes} bright-field planes; the model takes {meta['bf_planes']}")
    stains, ranges = meta["stains"], meta["target_ranges"]
    info = DatasetInfo(
        name=f"{source.info.name} predicted",
        stains=stains,
        bf_planes=source.info.bf_planes,
        pixel_size_um=source.info.pixel_size_um,
        source=f"vsearch predict {checkpoint} --data {data}",
    )
    manifest = source.manifest.set_index("field_id")
    ids = list(manifest.index) if field_ids is None else field_ids
    done = 0
    with DatasetWriter(out, info, overwrite=overwrite) as writer:
        fields = source.iter_fields(ids)
        while batch := [f for _, f in zip(range(batch_size), fields, strict=False)]:
            x = torch.from_numpy(np.stack([normalise_inputs(f.bf) for f in batch])).to(device)
            with torch.no_grad():
                y = model(x).float().cpu().numpy()
            for field, pred in zip(batch, y, strict=True):
                predicted = {s: to_uint16(pred[i], *ranges[s]) for i, s in enumerate(stains)}
                meta_row = manifest.loc[field.field_id, META_COLUMNS].to_dict()
                writer.add(meta_row, FieldImages(field.field_id, field.bf, predicted))
            done += len(batch)
            if progress:
                progress(done, len(ids))
    return info
