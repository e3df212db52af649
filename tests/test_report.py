"""Search reports: generalisation matrices and the Pareto front against hand-computed values, and the HTML file
written locally and on S3 without losing an earlier report."""

import itertools
import json
import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.browser import render
from vsearch.cli import app
from vsearch.data import storage
from vsearch.data.fields import FieldImages
from vsearch.report.examples import example_panels
from vsearch.report.matrix import generalisation_matrix
from vsearch.report.pareto import pareto_front
from vsearch.report.plots import MEAN_OF_STAINS, composition_points, matrix_panels, pareto_points
from vsearch.search.examples import make_example, read_examples, write_examples
from vsearch.search.results import write_trials

NAN = float("nan")


OOM = "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"


def trial(trial_id, status, composite, preset, composition, scores, levels=(0.5, 0.5, 0.5)):
    row = {
        "trial_id": trial_id, "status": status, "error": OOM if status == "failed" else "", "composite": composite,
        "composition_preset": preset,
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
    # the best trial saved no examples here: they are left out, and the page says why
    assert f"No example predictions: {results / 'examples' / 'trial_t-lung'} holds no example predictions" in page
    best_table = page[page.index("<h2>Best trials</h2>") : page.index("<h2>Failed trials</h2>")]
    assert best_table.index("t-lung") < best_table.index("t-mix") and "t-failed" not in best_table
    failed = page[page.index("<h2>Failed trials</h2>") : page.index("<h2>Generalisation")]
    assert "<td>t-failed · all</td>" in failed and f"<td>{OOM}</td>" in failed and "t-stopped" not in failed
    assert sorted(p.name for p in results.iterdir()) == ["report.html", "trials.parquet"]


def test_report_refuses_results_without_completed_trials_and_keeps_the_earlier_report(trials, tmp_path):
    results = tmp_path / "results"
    write_trials(trials[trials.status != "completed"], str(results))
    (results / "report.html").write_text("an earlier report")
    run = CliRunner().invoke(app, ["report", str(results)])
    assert run.exit_code == 2 and "trials.parquet: no completed trial" in run.output
    assert f"trial t-failed failed: {OOM}" in " ".join(run.output.split())
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


def test_matrix_panels_are_the_mean_then_each_stain(trials):
    panels = matrix_panels(trials, "pixel")
    assert list(panels) == [MEAN_OF_STAINS, "nuclei", "cytoplasm"]
    np.testing.assert_allclose(panels["nuclei"].to_numpy(), [[0.9, 0.1], [0.8, 0.2]])  # t-lung, t-mix rows
    np.testing.assert_allclose(panels[MEAN_OF_STAINS].to_numpy(), [[0.8, 0.2], [0.7, 0.2]])
    unscored = trials.assign(**{"score/lung/toxic/dna_damage/pixel": NAN})  # a stain no trial scored
    assert list(matrix_panels(unscored, "pixel")) == [MEAN_OF_STAINS, "nuclei", "cytoplasm"]


def test_pareto_points_mark_the_trials_no_other_dominates(trials):
    points = pareto_points(trials)
    assert points.label.str.split(" · ").str[0].tolist() == ["t-lung", "t-mix"]
    assert points.on_front.tolist() == [True, True]  # t-lung wins instance, t-mix pixel
    worse = trials.assign(pixel=trials.pixel.where(trials.trial_id != "t-mix", 0.3))
    assert pareto_points(worse).on_front.tolist() == [True, False]  # (0.3, 0.2, 0.1) < (0.4, 0.3, 0.1)


def test_composition_points_pair_each_weight_with_the_trials_composite(trials):
    points = composition_points(trials)
    got = {(label.split(" · ")[0], c): (w, s) for label, c, w, s in points.itertuples(index=False)}
    assert got == {
        ("t-lung", "lung/non_toxic"): (1.0, 0.55), ("t-mix", "lung/non_toxic"): (0.75, 0.40),
        ("t-lung", "breast/non_toxic"): (0.0, 0.55), ("t-mix", "breast/non_toxic"): (0.25, 0.40),
    }  # fmt: skip


def synthetic_field(field_id: str, size: int, offset: int = 0) -> FieldImages:
    ramp = np.add.outer(np.arange(size), np.arange(size)).astype(np.uint16) * 10
    return FieldImages(
        field_id, np.stack([ramp, ramp + 5]), {"nuclei": ramp + offset, "cytoplasm": ramp[::-1] + offset}
    )


def test_examples_are_display_scaled_centre_crops_that_survive_a_round_trip(tmp_path):
    truth = synthetic_field("f1", 300)
    perfect = make_example(truth, synthetic_field("f1", 300), "lung/toxic")
    assert perfect.bright_field.shape == perfect.real["nuclei"].shape == (256, 256)
    assert np.all(perfect.error("nuclei") == 0) and np.all(perfect.error("cytoplasm") == 0)
    # the crop is the field's centre: the ramp's value at the crop's top-left is (22 + 22) * 10
    ramp = np.add.outer(np.arange(300), np.arange(300)) * 10.0
    low, high = np.percentile(ramp, [0.5, 99.5])
    np.testing.assert_allclose(perfect.real["nuclei"][0, 0], (440 - low) / (high - low))
    brighter = make_example(truth, synthetic_field("f1", 300, offset=2000), "lung/toxic")
    assert brighter.error("nuclei").mean() > 0.3  # too bright stays too bright on the real image's scale

    small = make_example(synthetic_field("f2", 96), synthetic_field("f2", 96), "breast/toxic")
    write_examples(str(tmp_path), "t1", [perfect, small])
    back = read_examples(str(tmp_path), "t1")
    assert [(e.condition, e.field_id) for e in back] == [("breast/toxic", "f2"), ("lung/toxic", "f1")]
    assert back[0].real["nuclei"].shape == (96, 96)
    for saved, read in zip([small, perfect], back, strict=True):
        for stain in ("nuclei", "cytoplasm"):
            np.testing.assert_allclose(read.real[stain], saved.real[stain], atol=0.5 / 255 + 1e-6)
        np.testing.assert_allclose(read.bright_field, saved.bright_field, atol=0.5 / 255 + 1e-6)
    columns, rows, images = example_panels(back)
    assert columns == [
        "bright-field",
        *(f"{s} {k}" for s in ("nuclei", "cytoplasm") for k in ("real", "predicted", "|error|")),
    ]
    assert rows == ["breast/toxic<br>f2", "lung/toxic<br>f1"]
    assert [len(r) for r in images] == [7, 7] and all(i.dtype == np.uint8 for r in images for i in r)
    with pytest.raises(FileNotFoundError, match="trial_t2 holds no example predictions"):
        read_examples(str(tmp_path), "t2")


def test_report_draws_the_best_trials_saved_examples(trials, tmp_path):
    results = tmp_path / "results"
    write_trials(trials, str(results))
    write_examples(
        str(results), "t-lung", [make_example(synthetic_field("f1", 64), synthetic_field("f1", 64), "lung/toxic")]
    )
    run = CliRunner().invoke(app, ["report", str(results)])
    assert run.exit_code == 0, run.output
    page = (results / "report.html").read_text()
    assert plotly_divs(page) == 5 and "No example predictions" not in page
    rendered = render(results / "report.html")
    assert rendered.plots == 5 and rendered.console == []  # every figure drawn, no script error
    assert rendered.heatmaps == 5  # pixel: mean, nuclei, cytoplasm; instance: mean, nuclei
    assert r"lung\u002ftoxic\u003cbr\u003ef1" in page  # the row title, as plotly's JSON escapes it
