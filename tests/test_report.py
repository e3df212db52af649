"""Search reports: generalisation matrices and the Pareto front against hand-computed values, and the HTML file
written locally and on S3 without losing an earlier report."""

import itertools
import json
import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from vsearch.cli import app
from vsearch.data import storage
from vsearch.report.matrix import generalisation_matrix
from vsearch.report.pareto import pareto_front
from vsearch.search.results import write_trials

NAN = float("nan")


def trial(trial_id, status, composite, preset, composition, scores, levels=(0.5, 0.5, 0.5)):
    row = {
        "trial_id": trial_id, "status": status, "composite": composite, "composition_preset": preset,
        "composition": json.dumps(composition), "config": json.dumps({"depth": 2, "lr": 0.001}),
        "pixel": levels[0], "instance": levels[1], "feature": levels[2],
        "held_out": json.dumps(["lung/toxic", "breast/toxic"]),
        "w/lung/non_toxic": composition.get("lung/non_toxic", 0.0),
        "w/breast/non_toxic": composition.get("breast/non_toxic", 0.0),
    }  # fmt: skip
    return row | {f"score/{key}": value for key, value in scores.items()}


def scores(lung_nuclei, lung_cyto, breast_nuclei, breast_cyto, instance=0.3):
    return {
        "lung/toxic/nuclei/pixel": lung_nuclei, "lung/toxic/cytoplasm/pixel": lung_cyto,
        "breast/toxic/nuclei/pixel": breast_nuclei, "breast/toxic/cytoplasm/pixel": breast_cyto,
        "lung/toxic/nuclei/instance": instance, "breast/toxic/nuclei/instance": instance,
    }  # fmt: skip


@pytest.fixture
def trials() -> pd.DataFrame:
    return pd.DataFrame(
        [
            trial("t-mix", "completed", 0.40, "sampled", {"lung/non_toxic": 0.75, "breast/non_toxic": 0.25},
                  scores(0.8, 0.6, 0.2, NAN), levels=(0.5, 0.2, 0.1)),
            trial("t-failed", "failed", NAN, "all", {"lung/non_toxic": 0.5, "breast/non_toxic": 0.5},
                  scores(NAN, NAN, NAN, NAN)),
            trial("t-lung", "completed", 0.55, "single:lung/non_toxic", {"lung/non_toxic": 1, "breast/non_toxic": 0},
                  scores(0.9, 0.7, 0.1, 0.3), levels=(0.4, 0.3, 0.1)),
            trial("t-stopped", "stopped_early", NAN, "sampled", {"lung/non_toxic": 1.0}, scores(1, 1, 1, 1)),
        ]
    )  # fmt: skip


def test_matrix_rows_are_completed_trials_best_first_cells_the_mean_over_stains(trials):
    matrix = generalisation_matrix(trials, "pixel")
    assert list(matrix.index) == [
        "t-lung · single:lung/non_toxic",
        "t-mix · lung/non_toxic 0.75, breast/non_toxic 0.25",
    ]
    assert list(matrix.columns) == ["lung/toxic", "breast/toxic"]
    # by hand: (0.9 + 0.7) / 2, (0.1 + 0.3) / 2; (0.8 + 0.6) / 2, and breast's one scored stain
    np.testing.assert_allclose(matrix.to_numpy(), [[0.8, 0.2], [0.7, 0.2]])
    np.testing.assert_allclose(generalisation_matrix(trials, "pixel", "cytoplasm").to_numpy(), [[0.7, 0.3], [0.6, NAN]])


def test_matrix_names_a_missing_level_or_stain(trials):
    with pytest.raises(KeyError, match=r"'assay'.*levels: \['instance', 'pixel'\]"):
        generalisation_matrix(trials, "assay")
    with pytest.raises(KeyError, match="stain 'cytoplasm'"):
        generalisation_matrix(trials, "instance", "cytoplasm")


def naive_front(points: np.ndarray) -> list[bool]:
    def dominates(a, b):
        return all(x >= y for x, y in zip(a, b, strict=True)) and any(x > y for x, y in zip(a, b, strict=True))

    return [not np.isnan(p).any() and not any(dominates(q, p) for q in points if not np.isnan(q).any()) for p in points]


def test_pareto_front_by_hand_and_against_pairwise_comparison():
    points = np.array([[1, 0], [0, 1], [0.5, 0.5], [0.4, 0.4], [1, 0], [NAN, 2], [0.4, 0.5]])
    assert pareto_front(points).tolist() == [True, True, True, False, True, False, False]
    rng = np.random.default_rng(3)
    for n, k in itertools.product([1, 5, 40], [1, 2, 3]):
        points = rng.integers(0, 4, (n, k)).astype(float)  # small integers: many ties
        points[rng.random((n, k)) < 0.05] = NAN
        assert pareto_front(points).tolist() == naive_front(points)


def plotly_divs(page: str) -> int:
    return len(re.findall(r'<div id="[^"]+" class="plotly-graph-div"', page))


def test_report_is_one_self_contained_page_and_replaces_an_earlier_one_whole(trials, tmp_path):
    results = tmp_path / "results"
    write_trials(trials, str(results))
    (results / "report.html").write_text("an earlier report")
    run = CliRunner().invoke(app, ["report", str(results)])
    assert run.exit_code == 0, run.output
    page = (results / "report.html").read_text()
    assert str(results / "report.html") in run.output
    assert "<script src=" not in page and "plotly.js" in page.lower()  # plotly.js inlined, no network needed
    assert plotly_divs(page) == 4  # pixel and instance matrices, the Pareto front, the composition response
    # no checkpoints in this folder: the example predictions are left out, and the page says why
    assert f"No example predictions: {results / 'runs' / 'trial_t-lung'} holds no vsearch checkpoint" in page
    best_table = page[page.index("<h2>Best trials</h2>") : page.index("<h2>Generalisation")]
    assert best_table.index("t-lung") < best_table.index("t-mix") and "t-failed" not in best_table
    assert sorted(p.name for p in results.iterdir()) == ["report.html", "trials.parquet"]


def test_report_refuses_results_without_completed_trials_and_keeps_the_earlier_report(trials, tmp_path):
    results = tmp_path / "results"
    write_trials(trials[trials.status != "completed"], str(results))
    (results / "report.html").write_text("an earlier report")
    run = CliRunner().invoke(app, ["report", str(results)])
    assert run.exit_code == 2 and "trials.parquet: no completed trial" in run.output
    assert (results / "report.html").read_text() == "an earlier report"
    run = CliRunner().invoke(app, ["report", str(tmp_path / "missing")])
    assert run.exit_code == 2 and f"{tmp_path / 'missing' / 'trials.parquet'} not found" in run.output


def test_report_reads_and_writes_s3(trials, s3_bucket, tmp_path):
    results = f"{s3_bucket}/search"
    write_trials(trials, results)
    run = CliRunner().invoke(app, ["report", results])
    assert run.exit_code == 0, run.output
    fs, path = storage.filesystem(f"{results}/report.html")
    page = fs.cat_file(path).decode()
    assert page.startswith("<!DOCTYPE html>") and plotly_divs(page) == 4
