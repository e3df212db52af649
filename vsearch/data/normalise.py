"""Intensity normalisation as affine maps ``(raw − offset) × scale`` per plane: bright-field planes by each
field's own 1st–99.8th percentiles, stains by dataset-wide 0.5th–99.9th percentile ranges (so a brighter toxic
nucleus stays brighter) or, on request, per field. Percentiles of integer images come from their histograms:
exact, and O(pixels) rather than a partition per percentile."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from vsearch.data.dataset import Dataset

INPUT_PERCENTILES = (1.0, 99.8)
TARGET_PERCENTILES = (0.5, 99.9)


def plane_percentiles(planes: np.ndarray, q: tuple[float, ...]) -> np.ndarray:
    """``np.percentile(plane, q)`` (linear interpolation) of each plane of an unsigned-integer ``[C,H,W]`` stack,
    as ``[len(q), C]`` float64, computed exactly from each plane's cumulative histogram."""
    if planes.dtype.kind != "u":
        raise TypeError(f"plane_percentiles needs unsigned-integer images, got {planes.dtype}")
    flat = planes.reshape(len(planes), -1)
    n = flat.shape[1]
    position = np.asarray(q, dtype=np.float64) / 100 * (n - 1)
    below = np.floor(position).astype(np.int64)
    ranks = np.concatenate([below, np.minimum(below + 1, n - 1)])
    out = np.empty((len(position), len(flat)))
    for c, plane in enumerate(flat):
        # the k-th smallest value (0-based) is the first histogram bin whose cumulative count exceeds k
        values = np.searchsorted(np.cumsum(np.bincount(plane)), ranks, side="right").astype(np.float64)
        low, high = values[: len(position)], values[len(position) :]
        out[:, c] = low + (position - below) * (high - low)
    return out


def _affine(low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(low, np.float32), (1 / np.maximum(np.asarray(high, np.float64) - low, 1e-6)).astype(np.float32)


def input_affine(bf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(offset, scale) ``[Z]`` float32 mapping each bright-field plane's 1st–99.8th percentiles to 0–1."""
    low, high = plane_percentiles(bf, INPUT_PERCENTILES)
    return _affine(low, high)


def target_affine(
    targets: np.ndarray, names: list[str], ranges: dict[str, list[float]] | None
) -> tuple[np.ndarray, np.ndarray]:
    """(offset, scale) ``[S]`` float32 for stains ``targets`` ``[S,H,W]`` named ``names``: the dataset
    ``ranges``, or each stain's own 0.5th–99.9th percentiles when ``ranges`` is None."""
    if ranges is not None:
        low, high = np.array([ranges[name] for name in names], dtype=np.float64).T
    else:
        low, high = plane_percentiles(targets, TARGET_PERCENTILES)
    return _affine(low, high)


def apply_affine(planes: np.ndarray, offset: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``[C,H,W]`` planes as float32 ``(raw − offset) × scale``."""
    return (planes.astype(np.float32) - offset[:, None, None]) * scale[:, None, None]


def normalise_inputs(bf: np.ndarray) -> np.ndarray:
    """Each bright-field plane mapped by its own 1st–99.8th percentiles to about [0, 1] (float32)."""
    return apply_affine(bf, *input_affine(bf))


def normalise_targets(
    stains: dict[str, np.ndarray], names: list[str], ranges: dict[str, list[float]] | None
) -> np.ndarray:
    """Stains ``[S,H,W]`` float32: by the dataset ``ranges``, or per field when ``ranges`` is None."""
    targets = np.stack([stains[name] for name in names])
    return apply_affine(targets, *target_affine(targets, names, ranges))


def target_ranges(
    dataset: Dataset, field_ids: list[str], stains: list[str], max_fields: int = 32
) -> dict[str, list[float]]:
    """Dataset-wide (low, high) per stain: medians of per-field 0.5th / 99.9th percentiles over up to
    ``max_fields`` fields."""
    chosen = sorted(field_ids)[:: max(1, len(field_ids) // max_fields)][:max_fields]
    per_field = [
        plane_percentiles(np.stack([field.stains[s] for s in stains]), TARGET_PERCENTILES)
        for field in dataset.iter_fields(chosen, stains=stains, labels=False)
    ]
    low, high = np.median(np.stack(per_field), axis=0)
    return {s: [float(low[i]), float(high[i])] for i, s in enumerate(stains)}
