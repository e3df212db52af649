"""Maps each evaluation level to [0, 1], higher better, and summarises one row per (condition, stain).

- pixel    = (clip(SSIM, 0, 1) + clip(r, 0, 1)) / 2, averaged over fields; SSIM and Pearson r on images
             normalised by the real image's 0.5–99.5 percentiles. Fields whose real stain is flat (a blank
             tile, ``pixel.is_flat``) are left out and counted in ``flat_fields``; their objects, if the
             prediction invents any, still cost it at the instance level.
- instance = F1 averaged over IoU thresholds 0.5:0.05:0.95, averaged over fields, for objects segmented in the
             real and in the predicted stain by the same segmenter (nuclei for the nuclear stain, cells for the
             cytoplasm stain; stains with no objects of their own have none).
- feature  = mean over the stain's per-well features of coverage × exp(−error): ``error`` is the feature's mean
             absolute error over wells divided by its scale (``features.feature_scales``: its spread across every
             evaluated well, at least its cell-to-cell spread), ``coverage`` the fraction of real wells the
             prediction measured at all. Each feature lies in [0, 1], so none moves the level by more than its
             share; 1 when predicted features equal the real ones, 0.37 for a feature one scale off, 0 when no
             object is found.
- assay    = fraction of treated wells whose hit call (calibrated on each source's own controls) agrees between
             real and predicted features, averaged over the stain's assay features; a well the prediction cannot
             call (no objects) disagrees.
- composite = weighted mean of the available levels: without weights every level counts 1; with weights, a
             level that has none counts 0.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np
import pandas as pd

from vsearch.evaluate.features import COUNT_FEATURE, StainRoles

Level = Literal["pixel", "instance", "feature", "assay"]
LEVELS: tuple[Level, ...] = get_args(Level)
FIELD_LEVELS: tuple[Level, ...] = LEVELS[:3]  # scored on each field; the assay level compares wells and controls


def pixel_score(ssim: np.ndarray, pearson_r: np.ndarray) -> np.ndarray:
    """The pixel level of each image pair.

    Parameters
    ----------
    ssim, pearson_r : array of float
        From ``pixel.ssim`` and ``pixel.pearson_r`` on images normalised by ``pixel.normalise_pair``.

    Returns
    -------
    ndarray
        ``(clip(ssim, 0, 1) + clip(r, 0, 1)) / 2`` in [0, 1]: 1 for a perfect prediction, 0 for one with no
        structure or anti-correlated. NaN where SSIM is (a flat real field); a NaN r (a constant prediction)
        counts 0.
    """
    ssim = np.asarray(ssim, np.float64)
    return (np.clip(ssim, 0, 1) + np.clip(np.nan_to_num(pearson_r, nan=0.0), 0, 1)) / 2


def instance_score(f1_mean: np.ndarray) -> np.ndarray:
    """The instance level: F1 of the object matching averaged over IoU 0.5:0.95 (``instance.match``), which is
    already 1 for a perfect segmentation and 0 when no object is found."""
    return np.asarray(f1_mean, np.float64)


def feature_agreement(error: np.ndarray, coverage: np.ndarray) -> np.ndarray:
    """Per feature, coverage × exp(−error) in [0, 1]: features the prediction could not measure (it found no
    objects) count 0 instead of dropping out; NaN where the real wells have no value to compare."""
    error, coverage = np.asarray(error, np.float64), np.asarray(coverage, np.float64)
    score = np.where(coverage > 0, coverage * np.exp(-np.nan_to_num(error, nan=np.inf)), 0.0)
    return np.where(np.isfinite(coverage), score, np.nan)


def feature_score(error: np.ndarray, coverage: np.ndarray) -> float:
    """The mean of ``feature_agreement`` over the features that have real values."""
    values = feature_agreement(error, coverage)
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else float("nan")


def assay_score(call_agreement: np.ndarray) -> float:
    """The assay level: the mean over assay features of the share of treated wells called alike
    (``assay.assay_table``); NaN when no feature could be compared."""
    values = np.asarray(call_agreement, np.float64)
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else float("nan")


def composite(scores: dict[str, float], weights: dict[str, float] | None = None) -> float:
    """Weighted mean of the finite level scores; without ``weights`` each level counts 1, with them a level that
    has no weight counts 0."""
    weights = dict.fromkeys(LEVELS, 1.0) if weights is None else weights
    pairs = [(v, weights.get(k, 0.0)) for k, v in scores.items() if k in LEVELS and np.isfinite(v)]
    total = sum(w for _, w in pairs)
    return float(sum(v * w for v, w in pairs) / total) if total > 0 else float("nan")


def stain_of_feature(feature: str, stains: list[str], object_stains: dict[str, str]) -> str | None:
    """The stain a feature column describes: ``<Object>_<stain>_…`` names it; bare shape features
    ``<Object>_<shape>`` belong to the stain the objects were segmented from (``object_stains``)."""
    parts = feature.split("_", 1)
    if len(parts) == 2:
        for stain in sorted(stains, key=len, reverse=True):
            if parts[1].startswith(f"{stain}_"):
                return stain
    if feature == COUNT_FEATURE:
        return object_stains.get("Nuclei")
    return object_stains.get(parts[0])


def summarise(
    conditions: list[tuple[str, str]],
    metrics: pd.DataFrame,
    feature_comparison: pd.DataFrame,
    assay: pd.DataFrame,
    stains: list[str],
    roles: StainRoles,
    weights: dict[str, float] | None = None,
) -> pd.DataFrame:
    """One row per (cell_type, phenotype) in ``conditions`` and stain: its ``role`` (None: a stain with no role is
    scored at the pixel level only), the four level scores, their composite, and ``flat_fields``, the fields whose
    real stain is flat and so not scored at the pixel level.

    ``metrics`` is the long per-field table (``level``, ``metric``, ``value``), ``feature_comparison`` has
    per-condition ``error`` and ``coverage`` per feature, ``assay`` has per-cell-type ``call_agreement`` per
    feature."""
    object_stains = {"Nuclei": roles.nuclei, "Cells": roles.cytoplasm}
    rows = []
    for cell_type, phenotype in conditions:
        block = metrics[(metrics.cell_type == cell_type) & (metrics.phenotype == phenotype)]
        features = feature_comparison[
            (feature_comparison.cell_type == cell_type) & (feature_comparison.phenotype == phenotype)
        ]
        agreements = assay[assay.cell_type == cell_type]
        for stain in stains:
            scored = block[(block.stain == stain) & block.level.isin(["pixel", "instance"])]
            wide = scored.pivot_table(index="field_id", columns="metric", values="value", dropna=False)
            own_features = features.loc[[stain_of_feature(f, stains, object_stains) == stain for f in features.feature]]
            own_assay = agreements.loc[
                [stain_of_feature(f, stains, object_stains) == stain for f in agreements.feature]
            ]
            scores = {
                "pixel": _mean(pixel_score(wide["ssim"], wide["pearson_r"])) if "ssim" in wide else np.nan,
                "instance": _mean(instance_score(wide["f1_mean"])) if "f1_mean" in wide else np.nan,
                "feature": feature_score(own_features["error"], own_features["coverage"]),
                "assay": assay_score(own_assay["call_agreement"]),
            }
            rows.append(
                {
                    "cell_type": cell_type,
                    "phenotype": phenotype,
                    "stain": stain,
                    "role": roles.of(stain),
                    **scores,
                    "composite": composite(scores, weights),
                    "flat_fields": int(wide["flat"].sum()) if "flat" in wide else 0,
                }
            )
    return pd.DataFrame(rows)


def _mean(values: np.ndarray) -> float:
    """Mean of the finite values; NaN when there are none (every field flat)."""
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else float("nan")
