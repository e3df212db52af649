"""Calibration: the level scores of degraded copies of the real stains (noise, blur, brightness, all zeros).

It is the evidence that every level grades: the truth scores 1, an empty prediction about 0, and scores fall as
the prediction gets noisier or blurrier. Noise is Gaussian with a standard deviation that is a fraction of each
image's 0.5–99.5th percentile range (the range the pixel level normalises by); blur is a Gaussian of σ pixels.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from functools import partial

import numpy as np
import pandas as pd
from scipy import ndimage

from vsearch.data.dataset import open_dataset, open_dataset_cached
from vsearch.data.fields import FieldImages
from vsearch.evaluate.field import EvaluationConfig, FieldEvaluation, evaluate_field
from vsearch.evaluate.runner import assemble, fan_out
from vsearch.evaluate.score import LEVELS

Degradation = Callable[[np.ndarray, np.random.Generator], np.ndarray]
UINT16_MAX = np.iinfo(np.uint16).max


def _to_uint16(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, UINT16_MAX).astype(np.uint16)


def add_noise(image: np.ndarray, rng: np.random.Generator, fraction: float) -> np.ndarray:
    low, high = np.percentile(image, [0.5, 99.5])
    return _to_uint16(image + rng.normal(0.0, fraction * float(high - low), image.shape))


def blur(image: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    return _to_uint16(ndimage.gaussian_filter(image.astype(np.float64), sigma))


def brighten(image: np.ndarray, rng: np.random.Generator, factor: float) -> np.ndarray:
    return _to_uint16(image.astype(np.float64) * factor)


def zeros(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.zeros_like(image)


def unchanged(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return image


DEGRADATIONS: dict[str, Degradation] = {
    "truth": unchanged,
    "noise 1%": partial(add_noise, fraction=0.01),
    "noise 5%": partial(add_noise, fraction=0.05),
    "noise 10%": partial(add_noise, fraction=0.10),
    "blur σ=1": partial(blur, sigma=1.0),
    "blur σ=2": partial(blur, sigma=2.0),
    "blur σ=4": partial(blur, sigma=4.0),
    "brightness ×1.2": partial(brighten, factor=1.2),
    "all zeros": zeros,
}


def degrade(field: FieldImages, degradation: Degradation, seed: int = 0) -> FieldImages:
    """The field with every stain degraded; the noise depends on the seed and the field id only."""
    rng = np.random.default_rng([seed, zlib.crc32(field.field_id.encode())])
    stains = {name: degradation(image, rng) for name, image in field.stains.items()}
    return replace(field, stains=stains, labels={})


def evaluate_degraded(
    fields: Iterable[FieldImages], config: EvaluationConfig, names: Sequence[str], seed: int = 0
) -> list[tuple[str, FieldEvaluation]]:
    """(degradation name, evaluation) of each field against each of its degraded copies (``DEGRADATIONS``)."""
    return [
        (name, evaluate_field(field, degrade(field, DEGRADATIONS[name], seed), config))
        for field in fields
        for name in names
    ]


def evaluate_degraded_fields(
    field_ids: list[str], uri: str, config: EvaluationConfig, names: Sequence[str], seed: int
) -> list[tuple[str, FieldEvaluation]]:
    """``evaluate_degraded`` on some fields of the dataset at ``uri``, each decoded once; one Ray task's body."""
    return evaluate_degraded(open_dataset_cached(uri).iter_fields(field_ids), config, names, seed)


def level_means(
    evaluations: Iterable[tuple[str, FieldEvaluation]], manifest: pd.DataFrame, config: EvaluationConfig
) -> pd.DataFrame:
    """One row per degradation: each level's score averaged over condition × stain (cells it cannot score, such
    as the instance level of a stain with no objects of its own, left out)."""
    by_name: dict[str, list[FieldEvaluation]] = {}
    for name, evaluation in evaluations:
        by_name.setdefault(name, []).append(evaluation)
    rows = []
    for name, results in by_name.items():
        summary = assemble(results, manifest, config).summary
        rows.append({"degradation": name, **{level: float(summary[level].mean()) for level in LEVELS}})
    return pd.DataFrame(rows).set_index("degradation")


def calibrate(
    uri: str,
    config: EvaluationConfig,
    names: Sequence[str] = tuple(DEGRADATIONS),
    *,
    seed: int = 0,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """``level_means`` of every field of the dataset at ``uri`` under each degradation in ``names``, the fields
    fanned out as Ray tasks."""
    manifest = open_dataset(uri).manifest
    pairs = fan_out(evaluate_degraded_fields, list(manifest.field_id), (uri, config, names, seed), workers, progress)
    return level_means(pairs, manifest, config).loc[list(names)]
