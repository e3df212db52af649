"""Stain roles live in the dataset: a screen whose stains are called DAPI, FITC and Cy5, with roles set at ingest,
goes through evaluate and a search; bad roles are refused before any work, with the stain named."""

import csv
import json
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import tifffile
from typer.testing import CliRunner

from tests.test_evaluate import run_evaluate
from tests.test_search import write_space
from vsearch.cli import app
from vsearch.config import load_yaml
from vsearch.data.dataset import open_dataset
from vsearch.data.manifest import MANIFEST_FILE
from vsearch.search.space import SearchSpace
from vsearch.search.tuner import plan_search, run_search

pytestmark = pytest.mark.slow  # Ray jobs: `pytest -m "not slow"` leaves them out

RENAMED = {"nuclei": "DAPI", "cytoplasm": "FITC", "dna_damage": "Cy5"}
ROLES = "nuclei=DAPI,cytoplasm=FITC,foci=Cy5"


def export_layout(screen: str, folder: Path) -> Path:
    """The screen as TIFF files and a layout CSV whose stain channels are DAPI, FITC and Cy5."""
    dataset = open_dataset(screen)
    meta = dataset.manifest.set_index("field_id")
    header = ["plate", "well", "site", "cell_type", "phenotype", "treatment", "concentration", "is_control",
              "channel", "path"]  # fmt: skip
    rows = []
    for field in dataset.iter_fields():
        m = meta.loc[field.field_id]
        keys = [m.plate, m.well, m.site, m.cell_type, m.phenotype, m.treatment, m.concentration, m.is_control]
        images = {f"bf:{z}": plane for z, plane in enumerate(field.bf)}
        images |= {RENAMED[name]: image for name, image in field.stains.items()}
        for channel, image in images.items():
            path = folder / f"{field.field_id}_{channel.replace(':', '')}.tif"
            tifffile.imwrite(path, image)
            rows.append([*keys, channel, path.name])
    layout = folder / "layout.csv"
    with layout.open("w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    return layout


@pytest.fixture(scope="module")
def renamed_screen(small_screen, tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("renamed")
    layout = export_layout(small_screen, folder)
    out = str(folder / "ds")
    result = CliRunner().invoke(app, ["data", "ingest", str(layout), "--out", out, "--roles", ROLES])
    assert result.exit_code == 0, result.output
    assert "DAPI (nuclei), FITC (cytoplasm), Cy5 (foci)" in result.output
    return out


def test_roles_are_recorded_at_ingest(renamed_screen):
    info = json.loads((Path(renamed_screen) / "dataset.json").read_text())
    assert info["stains"] == ["DAPI", "FITC", "Cy5"]
    assert info["roles"] == {"nuclei": "DAPI", "cytoplasm": "FITC", "foci": "Cy5"}


def test_ingest_refuses_a_role_naming_a_missing_stain(small_screen, tmp_path):
    layout = export_layout(small_screen, tmp_path)
    out = tmp_path / "ds"
    result = CliRunner().invoke(app, ["data", "ingest", str(layout), "--out", str(out), "--roles", "nuclei=Hoechst"])
    assert result.exit_code == 2
    assert "'Hoechst' is not among the stains ['DAPI', 'FITC', 'Cy5']" in result.output
    assert not (out / MANIFEST_FILE).exists()
    result = CliRunner().invoke(app, ["data", "ingest", str(layout), "--out", str(out), "--roles", "nucleus=DAPI"])
    assert result.exit_code == 2 and "unknown role 'nucleus'" in result.output


def test_evaluate_reads_the_roles_of_the_dataset(renamed_screen, small_screen, tmp_path, ray_local):
    for name, truth in (("renamed", renamed_screen), ("original", small_screen)):
        result = run_evaluate(truth, truth, tmp_path / f"{name}.parquet")
        assert result.exit_code == 0, result.output
    renamed = pd.read_parquet(tmp_path / "renamed_features.parquet")
    original = pd.read_parquet(tmp_path / "original_features.parquet")
    # the same measurements under the new stain names: Nuclei_nuclei_MeanIntensity is Nuclei_DAPI_MeanIntensity
    names = {f"_{old}_": f"_{new}_" for old, new in RENAMED.items()}
    expected = set()
    for feature in original.feature:
        for old, new in names.items():
            feature = feature.replace(old, new)
        expected.add(feature)
    assert set(renamed.feature) == expected and len(expected) > 50
    summary = pd.read_parquet(tmp_path / "renamed_summary.parquet").set_index("stain")
    assert summary.role.to_dict() == {"DAPI": "nuclei", "FITC": "cytoplasm", "Cy5": "foci"}
    for stain, levels in {"DAPI": ["pixel", "instance", "feature"], "FITC": ["pixel", "instance", "feature"],
                          "Cy5": ["pixel", "feature"]}.items():  # fmt: skip
        np.testing.assert_allclose(summary.loc[stain, levels].to_numpy(np.float64), 1.0)


def test_a_stain_without_a_role_is_scored_at_the_pixel_level(renamed_screen, tmp_path, ray_local):
    options = ["--roles", "foci=none", "--levels", "pixel,feature"]
    result = run_evaluate(renamed_screen, renamed_screen, tmp_path / "x.parquet", *options)
    assert result.exit_code == 0, result.output
    assert "no role (scored at the pixel level only): Cy5" in result.output
    summary = pd.read_parquet(tmp_path / "x_summary.parquet")
    cy5 = summary[summary.stain == "Cy5"]
    assert cy5.role.isna().all() and (cy5.pixel == 1).all() and cy5.feature.isna().all()
    features = pd.read_parquet(tmp_path / "x_features.parquet")
    assert not features.feature.str.contains("Cy5").any()


def test_evaluate_refuses_a_role_naming_a_missing_stain_before_scoring(renamed_screen, tmp_path):
    result = run_evaluate(renamed_screen, renamed_screen, tmp_path / "x.parquet", "--roles", "nuclei=Hoechst")
    assert result.exit_code == 2
    assert "the nuclei stain 'Hoechst' is not among the stains ['DAPI', 'FITC', 'Cy5']" in result.output
    assert "evaluating fields" not in result.output and not (tmp_path / "x.parquet").exists()


def test_search_of_two_worker_trials_on_renamed_stains_scores_every_level_and_repeats_the_config_at_a_second_seed(
    renamed_screen, tmp_path, ray_local
):
    path = write_space(
        tmp_path / "s.yaml", renamed_screen, str(tmp_path / "results"), stains=["DAPI", "FITC", "Cy5"],
        objective={"eval_fields_per_condition": 1, "weights": {"pixel": 1, "feature": 2}},
        optim={"lr": 0.004, "batch_size": [8], "epochs": 1}, num_trials=1, seed=3, seeds_per_config=2,
        trial={"workers": 2, "cpus_per_worker": 0.5},  # data-parallel trials, scored as one-worker ones are
    )  # fmt: skip
    _, where = run_search(load_yaml(path, SearchSpace))
    trials = pd.read_parquet(where)
    assert len(trials) == 2 and set(trials.status) == {"completed"}
    assert trials.val_score.between(0, 1).all()
    assert list(trials.cpu_seconds) == pytest.approx(list(2 * trials.train_seconds))  # 2 x 0.5 CPU + 1 for the stream
    configs = [json.loads(c) for c in trials.config]
    assert sorted(c.pop("seed") for c in configs) == [3, 4] and configs[0] == configs[1]
    assert trials.composite.nunique() == 2  # the seed reached training
    study = optuna.load_study(study_name="vsearch", storage=f"sqlite:///{tmp_path / 'results' / 'optuna.db'}")
    [told] = study.trials  # one Optuna trial for the configuration, told the mean of its two runs
    assert told.value == pytest.approx(trials.composite.mean())
    for level in ("pixel", "instance", "feature"):  # scored (an untrained model may find no nuclei: 0)
        assert trials[level].between(0, 1).all(), level
    assert any(c.endswith("/DAPI/instance") for c in trials) and any(c.endswith("/Cy5/feature") for c in trials)
    for row in trials.itertuples():  # the objective uses the weights given, the instance level counts 0
        assert json.loads(row.objective_weights) == {"feature": 2, "pixel": 1}
        assert row.composite == pytest.approx((row.pixel + 2 * row.feature) / 3)


def test_search_refuses_roles_naming_a_stain_it_does_not_score(renamed_screen, tmp_path):
    path = write_space(
        tmp_path / "s.yaml", renamed_screen, str(tmp_path / "results"), stains=["DAPI", "FITC"],
        roles={"foci": "Cy5"},
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"the foci stain 'Cy5' is not among the stains \['DAPI', 'FITC'\]"):
        plan_search(load_yaml(path, SearchSpace))
