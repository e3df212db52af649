"""The synthetic screen differs as designed, measured from its stored labels and stains."""

import hashlib
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from skimage.feature import peak_local_max
from skimage.measure import regionprops

from tests.conftest import SMALL_SPEC
from vsearch.data.dataset import open_dataset
from vsearch.data.synth import CAMERA_OFFSET, STAIN_PEAK, SynthSpec, synthesize


def _measure(uri: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per field: cell count and foci per nucleus; per nucleus: area. Foci are local maxima of the stain."""
    ds = open_dataset(uri)
    meta = ds.manifest.set_index("field_id")
    fields, nuclei = [], []
    for f in ds.iter_fields():
        m = meta.loc[f.field_id]
        labels = f.labels["nuclei"]
        areas = [r.area for r in regionprops(labels)]
        peaks = peak_local_max(
            f.stains["dna_damage"].astype(float),
            min_distance=2,
            threshold_abs=CAMERA_OFFSET + 0.4 * STAIN_PEAK["dna_damage"],
            labels=(labels > 0).astype(int),
        )
        key = {"cell_type": m.cell_type, "phenotype": m.phenotype, "is_control": m.is_control}
        fields.append({**key, "cells": len(np.unique(f.labels["cells"])) - 1, "foci": len(peaks) / max(1, len(areas))})
        nuclei += [{**key, "area": a} for a in areas]
    return pd.DataFrame(fields), pd.DataFrame(nuclei)


@pytest.fixture(scope="module")
def measured(default_screen):
    return _measure(default_screen)


@pytest.mark.parametrize("cell_type", ["lung", "ovarian", "breast"])
def test_toxic_fields_have_fewer_cells_smaller_nuclei_more_foci(measured, cell_type):
    fields, nuclei = measured
    tox = fields[(fields.cell_type == cell_type) & (fields.phenotype == "toxic")]
    ok = fields[(fields.cell_type == cell_type) & (fields.phenotype == "non_toxic")]
    assert tox.cells.mean() < 0.8 * ok.cells.mean()
    assert stats.mannwhitneyu(tox.cells, ok.cells, alternative="less").pvalue < 1e-3
    assert tox.foci.mean() > 2.5 * ok.foci.mean()
    assert stats.mannwhitneyu(tox.foci, ok.foci, alternative="greater").pvalue < 1e-3
    tox_area = nuclei[(nuclei.cell_type == cell_type) & (nuclei.phenotype == "toxic")].area
    ok_area = nuclei[(nuclei.cell_type == cell_type) & (nuclei.phenotype == "non_toxic")].area
    assert tox_area.median() < 0.85 * ok_area.median()


def test_cell_types_have_different_nucleus_areas(measured):
    _, nuclei = measured
    untreated = nuclei[nuclei.phenotype == "non_toxic"]
    areas = {t: untreated[untreated.cell_type == t].area for t in ("breast", "lung", "ovarian")}
    assert areas["breast"].median() < areas["lung"].median() < areas["ovarian"].median()
    for a, b in (("breast", "lung"), ("lung", "ovarian"), ("breast", "ovarian")):
        assert stats.ks_2samp(areas[a], areas[b]).pvalue < 1e-6, (a, b)


def test_every_plate_has_negative_and_positive_controls(default_screen):
    m = open_dataset(default_screen).manifest
    for _, plate in m.groupby("plate"):
        for cell_type, wells in plate.groupby("cell_type"):
            assert set(wells.is_control) == {"neg", "pos", "none"}, cell_type
            assert set(wells[wells.is_control == "pos"].phenotype) == {"toxic"}
            assert set(wells[wells.is_control == "neg"].phenotype) == {"non_toxic"}


def test_labels_nest_cells_around_nuclei(small_screen):
    for f in open_dataset(small_screen).iter_fields():
        nuclei, cells = f.labels["nuclei"], f.labels["cells"]
        inside = nuclei > 0
        assert np.array_equal(cells[inside], nuclei[inside])  # each nucleus lies in the cell with its label
        assert set(np.unique(nuclei)) <= set(np.unique(cells))


def _digest(uri: str) -> list[str]:
    out = []
    for f in open_dataset(uri).iter_fields():
        h = hashlib.sha256(f.bf.tobytes())
        for name in sorted(f.stains):
            h.update(f.stains[name].tobytes())
        for name in sorted(f.labels):
            h.update(f.labels[name].tobytes())
        out.append(f"{f.field_id}:{h.hexdigest()}")
    return out


def test_same_seed_same_bytes_other_seed_different(tmp_path, small_screen):
    synthesize(SMALL_SPEC, str(tmp_path / "again"))
    synthesize(replace(SMALL_SPEC, seed=SMALL_SPEC.seed + 1), str(tmp_path / "other"))
    first, again, other = _digest(small_screen), _digest(str(tmp_path / "again")), _digest(str(tmp_path / "other"))
    assert first == again
    assert len(first) == len(other)
    assert all(a != b for a, b in zip(first, other, strict=True))


def test_unknown_cell_type_is_refused():
    with pytest.raises(ValueError, match="unknown cell type 'liver'; known: lung, ovarian, breast"):
        SynthSpec(cell_types=("liver",))
