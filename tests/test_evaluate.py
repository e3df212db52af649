"""`vsearch evaluate` end to end on real Ray: perfect against itself, worse at every level against a blurred copy;
the default segmenter and the assay on the synthetic screen."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage
from typer.testing import CliRunner

from vsearch.cli import app
from vsearch.data.dataset import DatasetWriter, open_dataset
from vsearch.data.fields import FieldImages
from vsearch.evaluate.field import EvaluationConfig
from vsearch.evaluate.runner import evaluate_datasets

pytestmark = pytest.mark.slow  # Ray jobs: `pytest -m "not slow"` leaves them out

LEVELS = ["pixel", "instance", "feature"]


def blurred_copy(uri: str, out: str, sigma: float) -> None:
    source = open_dataset(uri)
    info = source.info.model_copy(update={"labels": [], "name": "blurred"})
    meta_columns = ["plate", "well", "site", "tile", "origin_y", "origin_x", "cell_type", "phenotype", "treatment",
                    "concentration", "is_control", "split_group"]  # fmt: skip
    meta = source.manifest.set_index("field_id")[meta_columns]
    with DatasetWriter(out, info) as writer:
        for field in source.iter_fields():
            stains = {
                k: np.rint(ndimage.gaussian_filter(v.astype(np.float64), sigma)).astype(np.uint16)
                for k, v in field.stains.items()
            }
            writer.add(meta.loc[field.field_id].to_dict(), FieldImages(field.field_id, field.bf, stains))


def run_evaluate(truth: str, pred: str, out: Path, *options: str):
    """``vsearch evaluate`` through the CLI; its result (exit code and output)."""
    return CliRunner().invoke(app, ["evaluate", "--truth", truth, "--pred", pred, "--out", str(out), *options])


def test_cli_self_is_perfect_and_blurred_is_worse_at_every_level(small_screen, tmp_path, ray_local):
    blurred_copy(small_screen, str(tmp_path / "blurred"), sigma=2.0)
    for name, pred in (("self", small_screen), ("blurred", str(tmp_path / "blurred"))):
        result = run_evaluate(small_screen, pred, tmp_path / f"{name}.parquet")
        assert result.exit_code == 0, result.output
        assert "scores per condition and stain" in result.output
    same = pd.read_parquet(tmp_path / "self_summary.parquet")
    blur = pd.read_parquet(tmp_path / "blurred_summary.parquet")
    assert len(same) == len(blur) == 6 * 3
    for level in [*LEVELS, "assay", "composite"]:
        values = same[level].dropna()
        assert len(values) and np.allclose(values, 1.0), level
    for level in LEVELS:
        assert blur[level].mean() < same[level].mean() - 0.05, level
    assert (blur["pixel"] < 1).all()

    metrics = pd.read_parquet(tmp_path / "blurred.parquet")
    assert set(metrics.columns) >= {
        "field_id",
        "plate",
        "well",
        "cell_type",
        "phenotype",
        "stain",
        "level",
        "metric",
        "value",
    }
    fields = open_dataset(small_screen).manifest
    pixel = metrics[metrics.level == "pixel"]
    assert len(pixel) == len(fields) * 3 * 6  # fields x stains x (mae, mse, psnr, ssim, pearson_r, flat)
    wells = pd.read_parquet(tmp_path / "blurred_wells.parquet")
    assert set(wells.source) == {"real", "pred"} and "Nuclei_nuclei_MeanIntensity" in wells


def test_cli_refuses_mismatched_prediction(small_screen, tmp_path):
    result = run_evaluate(small_screen, small_screen, tmp_path / "x.parquet", "--stains", "nuclei,phalloidin")
    assert result.exit_code == 2
    assert "has no stain 'phalloidin'" in result.output


@pytest.fixture(scope="module")
def screen_evaluation(default_screen, ray_local):
    config = EvaluationConfig(stains=("nuclei", "cytoplasm", "dna_damage"))
    return evaluate_datasets(default_screen, default_screen, config)


def test_default_segmenter_recovers_stored_nuclei(screen_evaluation):
    m = screen_evaluation.metrics
    check = m[(m.level == "segmenter") & (m.metric == "f1_50")]
    per_condition = check.groupby(["cell_type", "phenotype"]).value.mean()
    print("\nsegmenter F1@0.5 against stored nuclei labels:\n" + per_condition.round(3).to_string())
    assert len(per_condition) == 6
    assert (per_condition >= 0.85).all()


def test_real_features_separate_controls(screen_evaluation):
    assay = screen_evaluation.assay.set_index(["cell_type", "feature"])
    print("\nrobust Z' of real features:\n" + assay["z_prime_real"].round(3).to_string())
    for cell_type in ("lung", "ovarian", "breast"):
        assert assay.loc[(cell_type, "Nuclei_dna_damage_FociCount"), "z_prime_real"] > 0
        assert assay.loc[(cell_type, "Nuclei_Area"), "z_prime_real"] > 0


def test_prediction_of_another_size_is_refused(small_screen, tmp_path):
    from dataclasses import replace

    from tests.conftest import SMALL_SPEC
    from vsearch.data.synth import synthesize

    synthesize(replace(SMALL_SPEC, size=80), str(tmp_path / "other"))
    config = EvaluationConfig(stains=("nuclei", "cytoplasm", "dna_damage"))
    with pytest.raises(ValueError, match=r"field 'P01-.*' differs in size between"):
        evaluate_datasets(small_screen, str(tmp_path / "other"), config)
