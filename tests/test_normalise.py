"""Percentiles from histograms agree with numpy's; normalisation maps the chosen percentiles to 0 and 1."""

import numpy as np
import pytest

from vsearch.data.dataset import open_dataset
from vsearch.data.normalise import (
    normalise_inputs,
    normalise_targets,
    plane_percentiles,
    target_ranges,
)

STAINS = ["nuclei", "cytoplasm", "dna_damage"]


@pytest.mark.parametrize(
    ("dtype", "high", "shape"),
    [
        (np.uint16, 65536, (3, 64, 80)),
        (np.uint16, 40, (2, 33, 17)),
        (np.uint8, 256, (1, 5, 7)),
        (np.uint16, 9, (2, 1, 1)),
    ],
)
def test_plane_percentiles_equal_numpy_linear_interpolation(dtype, high, shape):
    planes = np.random.default_rng(0).integers(0, high, shape).astype(dtype)
    q = (0.0, 0.5, 1.0, 25.0, 50.0, 99.8, 99.9, 100.0)
    expected = np.percentile(planes.reshape(len(planes), -1), q, axis=1)
    np.testing.assert_allclose(plane_percentiles(planes, q), expected, rtol=0, atol=1e-9)


def test_plane_percentiles_refuse_float_images():
    with pytest.raises(TypeError, match="unsigned-integer images, got float32"):
        plane_percentiles(np.zeros((1, 4, 4), np.float32), (1.0,))


def test_inputs_map_their_own_percentiles_to_zero_and_one():
    rng = np.random.default_rng(1)
    bf = np.stack([rng.normal(500, 50, (48, 48)), rng.normal(20000, 3000, (48, 48))]).astype(np.uint16)
    out = normalise_inputs(bf)
    for plane, raw in zip(out, bf, strict=True):
        low, high = np.percentile(raw, (1.0, 99.8))
        np.testing.assert_allclose(plane, (raw - low) / (high - low), rtol=1e-5, atol=1e-6)
    assert out.dtype == np.float32
    assert np.array_equal(normalise_inputs(np.full((1, 8, 8), 7, np.uint16)), np.zeros((1, 8, 8)))


def test_targets_by_dataset_ranges_or_per_field():
    rng = np.random.default_rng(2)
    stains = {s: rng.integers(100, 5000, (16, 16)).astype(np.uint16) for s in STAINS}
    ranges = {"nuclei": [100.0, 1100.0], "cytoplasm": [0.0, 4000.0], "dna_damage": [200.0, 300.0]}
    by_dataset = normalise_targets(stains, ["dna_damage", "nuclei"], ranges)
    np.testing.assert_allclose(by_dataset[0], (stains["dna_damage"] - 200.0) / 100.0, rtol=1e-5)
    np.testing.assert_allclose(by_dataset[1], (stains["nuclei"] - 100.0) / 1000.0, rtol=1e-5)
    per_field = normalise_targets(stains, ["cytoplasm"], None)[0]
    low, high = np.percentile(stains["cytoplasm"], (0.5, 99.9))
    np.testing.assert_allclose(per_field, (stains["cytoplasm"] - low) / (high - low), rtol=1e-5, atol=1e-6)


def test_target_ranges_are_background_and_bright_percentiles(small_screen):
    ds = open_dataset(small_screen)
    ranges = target_ranges(ds, ds.manifest.field_id.tolist(), STAINS)
    for stain in STAINS:
        low, high = ranges[stain]
        assert 90 <= low <= 110 < high  # the camera offset is 100 counts
    fields = list(ds.iter_fields())
    expected = np.median([np.percentile(f.stains["nuclei"], (0.5, 99.9)) for f in fields], axis=0)
    np.testing.assert_allclose(ranges["nuclei"], expected)
