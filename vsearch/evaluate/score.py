"""Maps each evaluation level to [0, 1], higher better, and summarises one row per (condition, stain).

- pixel    = (clip(SSIM, 0, 1) + clip(r, 0, 1)) / 2, averaged over fields; SSIM and Pearson r on images
             normalised by the real image's 0.5–99.5 percentiles.
- instance = F1 averaged over IoU thresholds 0.5:0.05:0.95, averaged over fields, for objects segmented in the
             real and in the predicted stain by the same segmenter (nuclei for the nuclear stain, cells for the
             cytoplasm stain; stains with no objects of their own have none).
- feature  = exp(−mean normalised MAE) over the stain's per-well features, times the fraction of (well, feature)
             pairs the prediction could measure at all: 1 when predicted features equal the real ones, 0.37 when
             they are off by one real between-well standard deviation on average, 0 when no object is found.
- assay    = fraction of treated wells whose hit call (calibrated on each source's own controls) agrees between
             real and predicted features, averaged over the stain's assay features.
- composite = weighted mean of the available levels (weights default to 1).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

LEVELS = ("pixel", "instance", "feature", "assay")


def pixel_score(ssim: np.ndarray, pearson_r: np.ndarray) -> np.ndarray:
    return (np.clip(ssim, 0, 1) + np.clip(np.nan_to_num(pearson_r, nan=0.0), 0, 1)) / 2


def instance_score(f1_mean: np.ndarray) -> np.ndarray:
    return np.asarray(f1_mean, np.float64)


def feature_score(nmae: np.ndarray, coverage: np.ndarray) -> float:
    """exp(−mean normalised MAE) times the mean coverage: features the prediction could not measure (it found
    no objects) count against it instead of dropping out."""
    values, covered = np.asarray(nmae, np.float64), np.asarray(coverage, np.float64)
    covered = covered[np.isfinite(covered)]
    if not len(covered):
        return float("nan")
    values = values[np.isfinite(values)]
    return float(np.exp(-values.mean()) * covered.mean()) if len(values) else 0.0


def assay_score(call_agreement: np.ndarray) -> float:
    values = np.asarray(call_agreement, np.float64)
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else float("nan")


def composite(scores: dict[str, float], weights: dict[str, float] | None = None) -> float:
    """Weighted mean of the finite level scores."""
    weights = weights or {}
    pairs = [(v, weights.get(k, 1.0)) for k, v in scores.items() if k in LEVELS and np.isfinite(v)]
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
    if feature == "Count_Nuclei":
        return object_stains.get("Nuclei")
    return object_stains.get(parts[0])


def summarise(
    conditions: list[tuple[str, str]],
    metrics: pd.DataFrame,
    feature_comparison: pd.DataFrame,
    assay: pd.DataFrame,
    stains: list[str],
    object_stains: dict[str, str],
    weights: dict[str, float] | None = None,
) -> pd.DataFrame:
    """One row per (cell_type, phenotype) in ``conditions`` and stain: the four level scores and their composite.

    ``metrics`` is the long per-field table (``level``, ``metric``, ``value``), ``feature_comparison`` has
    per-condition ``nmae`` per feature, ``assay`` has per-cell-type ``call_agreement`` per feature."""
    rows = []
    for cell_type, phenotype in conditions:
        block = metrics[(metrics.cell_type == cell_type) & (metrics.phenotype == phenotype)]
        features = feature_comparison[
            (feature_comparison.cell_type == cell_type) & (feature_comparison.phenotype == phenotype)
        ]
        agreements = assay[assay.cell_type == cell_type]
        for stain in stains:
            scored = block[(block.stain == stain) & block.level.isin(["pixel", "instance"])]
            wide = scored.pivot_table(index="field_id", columns="metric", values="value")
            own_features = features.loc[[stain_of_feature(f, stains, object_stains) == stain for f in features.feature]]
            own_assay = agreements.loc[
                [stain_of_feature(f, stains, object_stains) == stain for f in agreements.feature]
            ]
            scores = {
                "pixel": float(np.mean(pixel_score(wide["ssim"], wide["pearson_r"]))) if "ssim" in wide else np.nan,
                "instance": float(np.mean(instance_score(wide["f1_mean"]))) if "f1_mean" in wide else np.nan,
                "feature": feature_score(own_features["nmae"], own_features["coverage"]),
                "assay": assay_score(own_assay["call_agreement"]),
            }
            rows.append(
                {
                    "cell_type": cell_type,
                    "phenotype": phenotype,
                    "stain": stain,
                    **scores,
                    "composite": composite(scores, weights),
                }
            )
    return pd.DataFrame(rows)
