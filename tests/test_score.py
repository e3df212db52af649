"""The level scores grade: the feature level's scale and bound, explicit objective weights, the assay's missing
calls, and flat real fields."""

import numpy as np
import pandas as pd
import pytest

from vsearch.data.fields import FieldImages
from vsearch.evaluate.assay import assay_table
from vsearch.evaluate.features import StainRoles, aggregate_wells, compare_features, feature_scales
from vsearch.evaluate.field import EvaluationConfig, evaluate_field
from vsearch.evaluate.pixel import normalise_pair
from vsearch.evaluate.runner import assemble
from vsearch.evaluate.score import composite, feature_agreement, feature_score

KEYS = ["plate", "well"]


def replicate_wells(rng: np.random.Generator, wells: int = 4, per_well: int = 50) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "plate": "P1",
            "well": np.repeat([f"A{i:02d}" for i in range(wells)], per_well),
            "Nuclei_x_MeanIntensity": rng.normal(0.3, 0.05, wells * per_well),
        }
    )


def test_scale_of_replicate_wells_is_the_cell_to_cell_spread():
    objects = replicate_wells(np.random.default_rng(3))
    wells = aggregate_wells(objects, KEYS)
    per_well_sd = [np.std(group.Nuclei_x_MeanIntensity) for _, group in objects.groupby("well")]
    scale = feature_scales(wells, objects, KEYS)["Nuclei_x_MeanIntensity"]
    assert wells.Nuclei_x_MeanIntensity.std(ddof=0) < 0.01  # replicates: the medians differ by noise only
    assert scale == pytest.approx(np.median(per_well_sd))
    # a shift of a fifth of the cell-to-cell spread is over one of the paper's N-MAE (the replicates' spread)
    shifted = compare_features(wells, wells + 0.01, scales=feature_scales(wells, objects, KEYS)).iloc[0]
    assert shifted.nmae > 1
    assert shifted.error == pytest.approx(0.01 / scale)
    assert feature_agreement([shifted.error], [shifted.coverage])[0] == pytest.approx(np.exp(-0.01 / scale))


def test_scale_across_conditions_is_the_spread_of_the_wells():
    rng = np.random.default_rng(4)
    objects = replicate_wells(rng)
    objects["Nuclei_x_MeanIntensity"] += np.repeat([0.0, 0.0, 0.5, 0.5], 50)  # two conditions far apart
    wells = aggregate_wells(objects, KEYS)
    scale = feature_scales(wells, objects, KEYS)["Nuclei_x_MeanIntensity"]
    assert scale == pytest.approx(np.std(wells.Nuclei_x_MeanIntensity.to_numpy())) and scale > 0.2


def test_nuclei_count_is_not_measured_where_no_nucleus_was_found():
    objects = pd.DataFrame({"plate": ["P1"], "well": ["A01"], "Nuclei_Area": [50.0]})
    fields = pd.DataFrame({"plate": ["P1"] * 3, "well": ["A01", "A02", "A02"], "n_nuclei": [4, 0, 0]})
    wells = aggregate_wells(objects, KEYS, fields)
    assert wells.loc[("P1", "A01"), "Count_Nuclei"] == 4
    assert np.isnan(wells.loc[("P1", "A02"), "Count_Nuclei"])
    # its floor is the Poisson spread of the real count
    assert feature_scales(wells.iloc[:1], objects, KEYS, fields[:1])["Count_Nuclei"] == pytest.approx(2.0)


def test_no_single_feature_moves_the_level_by_more_than_its_share():
    errors, coverage = np.array([0.1] * 29 + [100.0]), np.ones(30)
    level = feature_score(errors, coverage)
    assert level == pytest.approx((29 * np.exp(-0.1) + np.exp(-100)) / 30)
    assert feature_score(errors[:29], coverage[:29]) - level <= 1 / 30
    # each feature is in [0, 1] and falls as its error grows; an unmeasured feature scores 0
    scores = feature_agreement([0, 0.5, 1, 3, np.inf, 1], [1, 1, 1, 1, 1, 0])
    assert scores[0] == 1 and np.all(np.diff(scores[:5]) < 0) and scores[5] == 0
    assert scores[2] == pytest.approx(np.exp(-1))
    assert np.isnan(feature_agreement([np.nan], [np.nan])[0])  # no real value to compare


def test_levels_without_a_weight_count_zero_when_weights_are_given():
    scores = {"pixel": 0.5, "instance": 0.9, "feature": 0.3, "assay": 0.1}
    assert composite(scores, {"pixel": 1, "instance": 1}) == pytest.approx(0.7)
    assert composite(scores, {"pixel": 1, "feature": 3}) == pytest.approx((0.5 + 0.9) / 4)
    assert composite(scores) == pytest.approx(np.mean(list(scores.values())))
    assert composite({**scores, "pixel": np.nan}, {"pixel": 1, "instance": 1}) == pytest.approx(0.9)


def test_treated_wells_the_prediction_cannot_call_disagree():
    rows = []
    for i, kind in enumerate(["neg", "neg", "pos", "pos", "none", "none"]):
        value = [0.0, 0.5, 10.0, 10.5, 1.0, 9.0][i]
        rows.append(
            {"source": "real", "cell_type": "lung", "plate": "P", "well": f"W{i}", "is_control": kind, "f": value}
        )
        if kind != "none" or i == 4:  # the prediction has its controls and one treated well
            rows.append({"source": "pred", "cell_type": "lung", "plate": "P", "well": f"W{i}", "is_control": kind,
                         "f": value})  # fmt: skip
    row = assay_table(pd.DataFrame(rows), ["f"]).iloc[0]
    assert row.call_agreement == 0.5 and row.wells_called == 2
    nothing = assay_table(pd.DataFrame([r for r in rows if r["source"] == "real"]), ["f"]).iloc[0]
    assert nothing.call_agreement == 0.0  # a prediction with no objects calls no well


def test_flat_real_stain_is_left_out_of_the_pixel_level_and_counted():
    rng = np.random.default_rng(0)
    structured = rng.integers(100, 4000, (64, 64)).astype(np.uint16)
    blank = np.full((64, 64), 300, np.uint16)
    truth = FieldImages("f1", np.zeros((1, 64, 64), np.uint16), {"nuclei": structured, "cytoplasm": blank})
    pred = FieldImages("f1", truth.bf, {"nuclei": structured, "cytoplasm": blank + np.uint16(2)})
    _, normalised = normalise_pair(blank, blank + np.uint16(2))
    np.testing.assert_allclose(normalised, 2.0)  # one grey level per unit, not a 1e12-fold blow-up
    config = EvaluationConfig(stains=("nuclei", "cytoplasm"), roles=StainRoles(foci=None), levels=("pixel",))
    evaluation = evaluate_field(truth, pred, config)
    values = {(r["stain"], r["metric"]): r["value"] for r in evaluation.metrics}
    assert values[("cytoplasm", "flat")] == 1 and np.isnan(values[("cytoplasm", "ssim")])
    assert values[("nuclei", "flat")] == 0 and values[("nuclei", "ssim")] == pytest.approx(1.0)
    manifest = pd.DataFrame([{"field_id": "f1", "plate": "P", "well": "A01", "cell_type": "lung",
                              "phenotype": "non_toxic", "is_control": "none", "split_group": "P/A01"}])  # fmt: skip
    summary = assemble([evaluation], manifest, config).summary.set_index("stain")
    assert summary.loc["cytoplasm", "flat_fields"] == 1 and np.isnan(summary.loc["cytoplasm", "pixel"])
    assert summary.loc["nuclei", "flat_fields"] == 0 and summary.loc["nuclei", "pixel"] == pytest.approx(1.0)
