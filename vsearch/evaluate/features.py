"""Biological features: per-object CellProfiler measurements (through ``cp_measure``), DNA-damage foci, per-well
aggregation, and the comparison of real against predicted features (normalised MAE as in Tonks et al.)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from cp_measure.core.measuregranularity import get_granularity
from cp_measure.core.measureobjectintensity import get_intensity
from cp_measure.core.measureobjectsizeshape import get_sizeshape
from cp_measure.core.measuretexture import get_texture
from scipy import stats
from skimage import feature, filters, morphology

# Position-free shape measurements (centres, bounding boxes and orientation say where a cell is, not what it is).
SHAPE_FEATURES = (
    "Area", "ConvexArea", "EquivalentDiameter", "Perimeter", "MajorAxisLength", "MinorAxisLength", "Eccentricity",
    "FormFactor", "Extent", "Solidity", "Compactness", "MaximumRadius", "MeanRadius", "MedianRadius",
)  # fmt: skip
GRANULARITY_SCALES = 8
TEXTURE_SCALE = 3


def to_unit(image: np.ndarray) -> np.ndarray:
    """Pixels in [0, 1] as cp_measure expects: integer images divided by their dtype's maximum."""
    if image.dtype.kind in "ui":
        return image.astype(np.float64) / np.iinfo(image.dtype).max
    if image.min() < 0 or image.max() > 1:
        raise ValueError(f"float images must lie in [0, 1], got [{image.min():.3g}, {image.max():.3g}]")
    return image.astype(np.float64)


def shape_features(labels: np.ndarray) -> dict[str, np.ndarray]:
    measured = get_sizeshape(labels, None, calculate_advanced=False)
    return {name: measured[name] for name in SHAPE_FEATURES}


def intensity_features(labels: np.ndarray, image: np.ndarray) -> dict[str, np.ndarray]:
    measured = get_intensity(labels, image)
    return {k.removeprefix("Intensity_"): v for k, v in measured.items() if k.startswith("Intensity_")}


def texture_features(labels: np.ndarray, image: np.ndarray) -> dict[str, np.ndarray]:
    """Haralick features at ``TEXTURE_SCALE`` px, averaged over the four directions."""
    by_feature: dict[str, list[np.ndarray]] = {}
    for name, values in get_texture(labels, image, scale=TEXTURE_SCALE).items():
        by_feature.setdefault(f"Texture_{name.split('_')[0]}", []).append(values)
    return {name: np.mean(values, axis=0) for name, values in by_feature.items()}


def granularity_features(labels: np.ndarray, image: np.ndarray) -> dict[str, np.ndarray]:
    measured = get_granularity(labels, image, granular_spectrum_length=GRANULARITY_SCALES)
    return dict(measured)


@dataclass(frozen=True)
class FociDetector:
    """DNA-damage foci: white top-hat of the smoothed stain, then local maxima inside nuclei that stand at least
    ``max(min_contrast, noise_k × robust noise)`` above the top-hat background (intensities in [0, 1]; the noise
    is the MAD of the top-hat over the whole field, so crowded foci do not raise their own threshold)."""

    smoothing_sigma: float = 1.0
    tophat_radius: int = 3
    min_distance: int = 2
    min_contrast: float = 0.01
    noise_k: float = 6.0

    def __call__(self, image: np.ndarray, nuclei: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(foci count, mean foci peak intensity) per nucleus label 1..N (0 intensity where a nucleus has none)."""
        n = int(nuclei.max())
        smoothed = filters.gaussian(image, self.smoothing_sigma, preserve_range=True)
        tophat = morphology.white_tophat(smoothed, morphology.disk(self.tophat_radius))
        noise = 1.4826 * np.median(np.abs(tophat - np.median(tophat)))
        threshold = max(self.min_contrast, self.noise_k * noise)
        peaks = feature.peak_local_max(
            tophat, min_distance=self.min_distance, threshold_abs=threshold, labels=nuclei, exclude_border=False
        )
        owners = nuclei[peaks[:, 0], peaks[:, 1]]
        counts = np.bincount(owners, minlength=n + 1)[1:]
        totals = np.bincount(owners, weights=smoothed[peaks[:, 0], peaks[:, 1]], minlength=n + 1)[1:]
        return counts, np.divide(totals, counts, out=np.zeros(n), where=counts > 0)


@dataclass(frozen=True)
class StainRoles:
    """Which stain shows nuclei, which the cytoplasm (cells), and which DNA-damage foci; None when absent."""

    nuclei: str | None = "nuclei"
    cytoplasm: str | None = "cytoplasm"
    foci: str | None = "dna_damage"

    @classmethod
    def for_stains(cls, stains: list[str], **names: str | None) -> StainRoles:
        defaults = cls()
        chosen = {role: names.get(role, getattr(defaults, role)) for role in ("nuclei", "cytoplasm", "foci")}
        return cls(**{role: name if name in stains else None for role, name in chosen.items()})


def object_features(
    stains: dict[str, np.ndarray],
    nuclei: np.ndarray,
    cells: np.ndarray | None,
    roles: StainRoles,
    foci: FociDetector | None = None,
) -> pd.DataFrame:
    """One row per nucleus (label 1..N; cell i contains nucleus i): nuclear shape, intensity, texture and
    granularity on the nuclear stain; cell shape, intensity and texture on the cytoplasm stain; foci count and
    intensity plus nuclear intensity on the DNA-damage stain. Columns are ``<object>_<stain>_<feature>``."""
    columns: dict[str, np.ndarray] = {}
    n = int(nuclei.max())
    if n == 0:
        return pd.DataFrame()

    def add(prefix: str, values: dict[str, np.ndarray]) -> None:
        columns.update({f"{prefix}_{k}": np.asarray(v, np.float64)[:n] for k, v in values.items()})

    add("Nuclei", shape_features(nuclei))
    if roles.nuclei:
        image = to_unit(stains[roles.nuclei])
        add(f"Nuclei_{roles.nuclei}", intensity_features(nuclei, image))
        add(f"Nuclei_{roles.nuclei}", texture_features(nuclei, image))
        add(f"Nuclei_{roles.nuclei}", granularity_features(nuclei, image))
    if roles.cytoplasm and cells is not None:
        image = to_unit(stains[roles.cytoplasm])
        add("Cells", shape_features(cells))
        add(f"Cells_{roles.cytoplasm}", intensity_features(cells, image))
        add(f"Cells_{roles.cytoplasm}", texture_features(cells, image))
    if roles.foci:
        image = to_unit(stains[roles.foci])
        count, intensity = (foci or FociDetector())(image, nuclei)
        add(f"Nuclei_{roles.foci}", {"FociCount": count, "FociMeanIntensity": intensity})
        add(f"Nuclei_{roles.foci}", intensity_features(nuclei, image))
    return pd.DataFrame(columns)


def aggregate_wells(objects: pd.DataFrame, keys: list[str], fields: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per well (``keys``, e.g. plate and well): the median of every object feature, except counts per object
    (``…Count``), whose median would be a coarse integer, which are averaged; plus ``Count_Nuclei``, the median
    number of nuclei per field, from ``fields`` (one row per field with ``keys`` and ``n_nuclei``)."""
    values = [c for c in objects.columns if c not in keys and objects[c].dtype.kind == "f"]
    counts = [c for c in values if c.endswith("Count")]
    grouped = objects.groupby(keys, sort=True)
    wells = grouped[[c for c in values if c not in counts]].median().join(grouped[counts].mean())[values]
    if fields is not None:
        wells = wells.join(fields.groupby(keys, sort=True)["n_nuclei"].median().rename("Count_Nuclei"), how="outer")
    return wells


def compare_features(
    real_wells: pd.DataFrame,
    pred_wells: pd.DataFrame,
    real_objects: pd.DataFrame | None = None,
    pred_objects: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per feature: normalised MAE (mean |real − predicted| over wells / std of the real feature across wells),
    Pearson r across wells, the Wasserstein distance of per-object values divided by the real std, and
    ``coverage``: the fraction of wells with a real value that also have a predicted one (a prediction with no
    objects has none). Features that are constant across real wells get NaN normalised scores."""
    shared = real_wells.index.intersection(pred_wells.index)
    rows = []
    for name in real_wells.columns:
        real = real_wells.loc[shared, name].to_numpy(np.float64)
        pred = (pred_wells[name] if name in pred_wells else pd.Series(np.nan, pred_wells.index)).loc[shared]
        pred = pred.to_numpy(np.float64)
        measured = np.isfinite(real)
        ok = measured & np.isfinite(pred)
        coverage = float(ok.sum() / measured.sum()) if measured.any() else np.nan
        real, pred = real[ok], pred[ok]
        spread = real.std() if len(real) > 1 else 0.0
        mae = float(np.abs(real - pred).mean()) if len(real) else np.nan
        row = {
            "feature": name,
            "wells": len(real),
            "coverage": coverage,
            "mae": mae,
            "nmae": mae / spread if spread > 0 else (0.0 if mae == 0 else np.nan),
            "pearson_r": _pearson(real, pred),
            "wasserstein": np.nan,
        }
        if real_objects is not None and pred_objects is not None and name in real_objects and name in pred_objects:
            a, b = real_objects[name].dropna().to_numpy(), pred_objects[name].dropna().to_numpy()
            if len(a) and len(b):
                scale = a.std()
                distance = stats.wasserstein_distance(a, b)
                row["wasserstein"] = distance / scale if scale > 0 else (0.0 if distance == 0 else np.nan)
        rows.append(row)
    return pd.DataFrame(rows)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2:
        return np.nan
    if np.array_equal(a, b):
        return 1.0
    if a.std() == 0 or b.std() == 0:
        return np.nan
    return float(np.corrcoef(a, b)[0, 1])
