"""Biological features: per-object CellProfiler measurements (through ``cp_measure``), DNA-damage foci, per-well
aggregation, and the comparison of real against predicted features (normalised MAE as in Tonks et al.)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from cp_measure.core.measuregranularity import get_granularity
from cp_measure.core.measureobjectintensity import get_intensity
from cp_measure.core.measureobjectsizeshape import get_sizeshape
from cp_measure.core.measuretexture import get_texture
from scipy import stats
from skimage import feature, filters, morphology

from vsearch.data.manifest import ROLES, merge_roles
from vsearch.evaluate.assay import robust_sd

# Position-free shape measurements (centres, bounding boxes and orientation say where a cell is, not what it is).
SHAPE_FEATURES = (
    "Area", "ConvexArea", "EquivalentDiameter", "Perimeter", "MajorAxisLength", "MinorAxisLength", "Eccentricity",
    "FormFactor", "Extent", "Solidity", "Compactness", "MaximumRadius", "MeanRadius", "MedianRadius",
)  # fmt: skip
GRANULARITY_SCALES = 8
COUNT_FEATURE = "Count_Nuclei"  # nuclei per field: a well-level feature with no per-object values
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
        noise = robust_sd(tophat)
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
    def resolve(
        cls,
        dataset_roles: Mapping[str, str],
        stains: Sequence[str],
        overrides: Mapping[str, str | None] | None = None,
    ) -> StainRoles:
        """The roles for evaluating ``stains``: the dataset's (``DatasetInfo.stain_roles()``) whose stain is
        evaluated, with ``overrides`` on top (``manifest.merge_roles``)."""
        roles = merge_roles(dataset_roles, stains, overrides)
        return cls(**{role: roles.get(role) for role in ROLES})

    def of(self, stain: str) -> str | None:
        """The role of ``stain``, None when it has none (it is scored at the pixel level only)."""
        return next((role for role in ROLES if getattr(self, role) == stain), None)


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
    number of nuclei per field, from ``fields`` (one row per field with ``keys`` and ``n_nuclei``). A well in
    which no nucleus was found has no count, as it has no other feature: nothing was measured there."""
    values = [c for c in objects.columns if c not in keys and objects[c].dtype.kind == "f"]
    counts = [c for c in values if c.endswith("Count")]
    grouped = objects.groupby(keys, sort=True)
    wells = grouped[[c for c in values if c not in counts]].median().join(grouped[counts].mean())[values]
    if fields is not None:
        per_well = fields.groupby(keys, sort=True)["n_nuclei"]
        count = per_well.median().where(per_well.max() > 0).rename(COUNT_FEATURE)
        wells = wells.join(count, how="outer")
    return wells


def feature_scales(
    real_wells: pd.DataFrame, real_objects: pd.DataFrame, keys: list[str], fields: pd.DataFrame | None = None
) -> pd.Series:
    """The scale a feature's errors are judged on: the larger of its spread across every evaluated real well
    and its cell-to-cell spread.

    The paper's normaliser, the feature's standard deviation across the wells of one condition, is only technical
    noise when those wells are replicates, so a shift of a few grey levels looks like dozens of standard
    deviations and the score depends on how alike a screen's wells happen to be. The spread across all evaluated
    wells (every condition scored together) measures the biology the screen shows; the floor, the median over
    wells of the standard deviation of the per-object values within a well, is the cell-to-cell variation, which
    is there however alike the wells are: a prediction whose typical cell is one such spread away from the real
    one is as wrong as a feature can plainly be. ``Count_Nuclei`` has no per-object values; its floor is the
    Poisson spread √count of the median real count per field (``fields``: ``keys`` and ``n_nuclei``)."""
    between = real_wells.std(ddof=0)
    columns = [c for c in between.index if c in real_objects.columns]
    within = real_objects.groupby(keys)[columns].std(ddof=0).median() if columns else pd.Series(dtype=float)
    floor = within.reindex(between.index)
    if fields is not None and COUNT_FEATURE in floor.index:
        counts = fields["n_nuclei"][fields["n_nuclei"] > 0]
        floor[COUNT_FEATURE] = np.sqrt(counts.median()) if len(counts) else np.nan
    return np.fmax(between, floor).rename("scale")


def compare_features(
    real_wells: pd.DataFrame,
    pred_wells: pd.DataFrame,
    real_objects: pd.DataFrame | None = None,
    pred_objects: pd.DataFrame | None = None,
    scales: pd.Series | None = None,
) -> pd.DataFrame:
    """Per feature: normalised MAE (mean |real − predicted| over wells / std of the real feature across these
    wells, as Tonks et al.), ``error`` (the MAE over ``scales``, see ``feature_scales``), Pearson r across wells,
    the Wasserstein distance of per-object values divided by the real std, and ``coverage``: the fraction of
    wells with a real value that also have a predicted one (a prediction with no objects has none). Normalised
    scores of a feature whose real values are all equal are 0 when the prediction equals them, else NaN
    (``nmae``) or infinite (``error``)."""
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
        scale = float(scales.get(name, np.nan)) if scales is not None else np.nan
        row = {
            "feature": name,
            "wells": len(real),
            "coverage": coverage,
            "mae": mae,
            "nmae": _normalised(mae, spread, undefined=np.nan),
            "scale": scale,
            "error": _normalised(mae, scale, undefined=np.inf),
            "pearson_r": _pearson(real, pred),
            "wasserstein": np.nan,
        }
        if real_objects is not None and pred_objects is not None and name in real_objects and name in pred_objects:
            a, b = real_objects[name].dropna().to_numpy(), pred_objects[name].dropna().to_numpy()
            if len(a) and len(b):
                distance = stats.wasserstein_distance(a, b)
                row["wasserstein"] = _normalised(distance, a.std(), undefined=np.nan)
        rows.append(row)
    return pd.DataFrame(rows)


def _normalised(value: float, scale: float, undefined: float) -> float:
    """``value / scale``; for a zero scale, 0 when the value is 0 too, else ``undefined``."""
    if not np.isfinite(value) or np.isnan(scale):
        return np.nan
    if scale > 0:
        return value / scale
    return 0.0 if value == 0 else undefined


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2:
        return np.nan
    if np.array_equal(a, b):
        return 1.0
    if a.std() == 0 or b.std() == 0:
        return np.nan
    return float(np.corrcoef(a, b)[0, 1])
