"""Biological features: invariances, foci on a hand-made image, and real-vs-predicted comparison."""

import numpy as np
import pandas as pd
import pytest

from vsearch.data.dataset import open_dataset
from vsearch.evaluate.features import (
    FociDetector,
    StainRoles,
    aggregate_wells,
    compare_features,
    object_features,
    to_unit,
)
from vsearch.evaluate.instance import SeededCells, ThresholdWatershed


def _features(stains: dict[str, np.ndarray]) -> pd.DataFrame:
    nuclei = ThresholdWatershed()(stains["nuclei"])
    cells = SeededCells()(stains["cytoplasm"], nuclei)
    return object_features(stains, nuclei, cells, StainRoles())


def test_doubling_a_stain_moves_intensity_and_keeps_shape(small_screen):
    field = open_dataset(small_screen).read(open_dataset(small_screen).manifest.field_id[0])
    stains = dict(field.stains)
    assert stains["nuclei"].max() < 32768  # doubling stays inside uint16
    doubled = {**stains, "nuclei": stains["nuclei"] * np.uint16(2)}
    base, brighter = _features(stains), _features(doubled)
    assert len(base) == len(brighter) > 0
    measures = ("Area", "Perimeter", "Eccentricity", "Solidity", "FormFactor", "MajorAxisLength")
    shape = [f"{objects}_{measure}" for objects in ("Nuclei", "Cells") for measure in measures]
    assert set(shape) <= set(base.columns)
    pd.testing.assert_frame_equal(base[shape], brighter[shape])
    for name in ("Nuclei_nuclei_MeanIntensity", "Nuclei_nuclei_IntegratedIntensity", "Nuclei_nuclei_MedianIntensity"):
        np.testing.assert_allclose(brighter[name], 2 * base[name], rtol=1e-9)
    untouched = [c for c in base.columns if c.startswith(("Cells_cytoplasm_", "Nuclei_dna_damage_"))]
    pd.testing.assert_frame_equal(base[untouched], brighter[untouched])


def test_foci_count_equals_planted_foci():
    yy, xx = np.mgrid[0:80, 0:120].astype(float)
    nuclei = np.zeros((80, 120), np.int32)
    centres = {1: (20, 20), 2: (20, 70), 3: (60, 40), 4: (55, 95)}
    for label, (cy, cx) in centres.items():
        nuclei[(yy - cy) ** 2 + (xx - cx) ** 2 <= 14**2] = label
    planted = {1: [], 2: [(-6, -6), (6, 6), (-6, 6)], 3: [(0, 0), (-7, 0), (7, 0), (0, -7), (0, 7)], 4: [(0, 0)]}
    image = 0.05 * (nuclei > 0)
    for label, offsets in planted.items():
        cy, cx = centres[label]
        for dy, dx in offsets:
            image = image + 0.3 * np.exp(-((yy - cy - dy) ** 2 + (xx - cx - dx) ** 2) / (2 * 1.0**2))
    rng = np.random.default_rng(0)
    image = np.clip(image + rng.normal(0, 0.003, image.shape), 0, 1)
    counts, intensity = FociDetector()(image, nuclei)
    assert list(counts) == [0, 3, 5, 1]
    assert intensity[0] == 0 and np.all(intensity[1:] > 0.2)


def test_identical_features_compare_perfectly_and_shifted_ones_do_not():
    rng = np.random.default_rng(1)
    objects = pd.DataFrame(
        {"plate": "P1", "well": np.repeat([f"A{i:02d}" for i in range(6)], 20), "Nuclei_Area": rng.normal(100, 10, 120)}
    )
    objects["Nuclei_Area"] += np.repeat(np.arange(6) * 5.0, 20)
    wells = aggregate_wells(objects, ["plate", "well"])
    same = compare_features(wells, wells, objects, objects).iloc[0]
    assert same.nmae == 0 and same.pearson_r == 1 and same.wasserstein == 0
    shifted_wells = wells + 3.0
    shifted = compare_features(wells, shifted_wells).iloc[0]
    # MAE is exactly 3; the normaliser is the real feature's std across the six wells
    assert shifted.nmae == pytest.approx(3.0 / wells["Nuclei_Area"].std(ddof=0))
    assert shifted.pearson_r == pytest.approx(1.0)


def test_per_well_medians_and_mean_counts():
    objects = pd.DataFrame(
        {
            "plate": ["P1"] * 5,
            "well": ["A01", "A01", "A01", "A02", "A02"],
            "Nuclei_Area": [1.0, 5.0, 9.0, 2.0, 4.0],
            "Nuclei_x_FociCount": [0.0, 0.0, 3.0, 1.0, 2.0],
        }
    )
    fields = pd.DataFrame({"plate": ["P1"] * 3, "well": ["A01", "A01", "A02"], "n_nuclei": [10, 20, 7]})
    wells = aggregate_wells(objects, ["plate", "well"], fields)
    assert wells.loc[("P1", "A01")].tolist() == [5.0, 1.0, 15.0]
    assert wells.loc[("P1", "A02")].tolist() == [3.0, 1.5, 7.0]


def test_float_images_outside_unit_range_are_refused():
    assert to_unit(np.array([[0, 65535]], np.uint16)).tolist() == [[0.0, 1.0]]
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        to_unit(np.array([[0.0, 2.0]]))
