"""Every level grades: degraded copies of the small screen's own stains, scored against the originals."""

import numpy as np
import pytest

from vsearch.data.dataset import open_dataset
from vsearch.evaluate.calibration import DEGRADATIONS, evaluate_degraded, level_means
from vsearch.evaluate.features import StainRoles
from vsearch.evaluate.field import EvaluationConfig
from vsearch.evaluate.score import LEVELS

pytestmark = pytest.mark.slow  # Ray jobs: `pytest -m "not slow"` leaves them out


@pytest.fixture(scope="module")
def calibration(small_screen):
    dataset = open_dataset(small_screen)
    config = EvaluationConfig(
        stains=tuple(dataset.info.stains), roles=StainRoles.resolve(dataset.info.stain_roles(), dataset.info.stains)
    )
    table = level_means(evaluate_degraded(dataset.iter_fields(), config, DEGRADATIONS), dataset.manifest, config)
    print("\n" + table.round(4).to_string())
    return table


def test_truth_scores_one_and_all_zeros_nothing(calibration):
    np.testing.assert_allclose(calibration.loc["truth", list(LEVELS)], 1.0)
    assert (calibration.loc["all zeros", list(LEVELS)] <= 0.02).all()


@pytest.mark.parametrize("series", [["noise 1%", "noise 5%", "noise 10%"], ["blur σ=1", "blur σ=2", "blur σ=4"]])
def test_every_level_falls_as_the_prediction_degrades(calibration, series):
    for level in LEVELS:
        values = calibration.loc[series, level].to_numpy()
        assert np.all(np.diff(values) <= 1e-12), (level, values)
    assert (calibration.loc[series[-1], ["pixel", "instance", "feature"]] < 1).all()


def test_mild_degradations_keep_every_level_above_half(calibration):
    assert (calibration.loc[["noise 1%", "blur σ=1"], list(LEVELS)] >= 0.5).all().all()
