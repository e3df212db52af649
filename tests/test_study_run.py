"""`vsearch study` on real Ray: a 2-training-set × 2-seed study of a tiny screen gives the full matrix, scored on
wells no model trained on, resumes after a kill without rerunning finished models, and its report renders."""

import json
import re
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.browser import render
from tests.conftest import SMALL_SPEC
from tests.processes import kill_session
from vsearch.data.dataset import open_dataset
from vsearch.data.synth import synthesize
from vsearch.evaluate.score import LEVELS
from vsearch.study.matrix import IN_DISTRIBUTION
from vsearch.study.results import read_fields

pytestmark = pytest.mark.slow  # Ray jobs

VSEARCH = str(Path(sys.executable).parent / "vsearch")
CONDITIONS = ["lung/non_toxic", "lung/toxic"]
STAINS = ["nuclei", "cytoplasm", "dna_damage"]


@pytest.fixture(scope="module")
def lung_screen(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = str(tmp_path_factory.mktemp("screen") / "lung")
    synthesize(replace(SMALL_SPEC, cell_types=("lung",)), out)
    return out


def terminated_trials(results: Path) -> int:
    """Trials Tune has recorded as finished in its experiment state (what a resumed study will not rerun)."""
    try:
        state = json.loads(max((results / "study").glob("experiment_state*.json")).read_text())
    except (ValueError, FileNotFoundError, json.JSONDecodeError):  # not written yet, or being written
        return 0
    return sum('"status": "TERMINATED"' in trial for trial, _ in state["trial_data"])


def test_study_matrix_is_full_scored_on_held_out_wells_resumes_after_a_kill_and_renders(lung_screen, tmp_path):
    results = tmp_path / "results"
    spec = {
        "dataset": lung_screen, "training_sets": {"singles": True}, "seeds": [0, 1], "budget": 8, "patch": 48,
        "patches_per_field": 2, "test_fields_per_condition": 2, "results": str(results),
        "models": [{"model": {"depth": 2, "base_width": 8}, "epochs": 2, "batch_size": 8}],
    }  # fmt: skip
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(spec))
    driver = subprocess.Popen(
        [VSEARCH, "study", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 400
    while terminated_trials(results) < 2:
        assert driver.poll() is None, "the study ended before it could be killed"
        assert time.monotonic() < deadline, "two models did not finish in time"
        time.sleep(0.5)
    kill_session(driver.pid)
    driver.wait()
    finished = {p.name: p.read_bytes() for p in (results / "fields").glob("*.json")}
    assert len(finished) >= 2

    resumed = subprocess.run([VSEARCH, "study", str(path), "--resume"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "4 of 4 models scored" in resumed.stdout
    assert "the paper's questions" in resumed.stdout and "Does non-toxic training transfer" in resumed.stdout
    for name, record in finished.items():  # the models finished before the kill were not trained again
        assert (results / "fields" / name).read_bytes() == record

    matrix = pd.read_parquet(results / "matrix.parquet")
    assert matrix.trial_id.nunique() == 4
    expected = {(t, seed, c, s, lv) for t in CONDITIONS for seed in (0, 1) for c in CONDITIONS for s in STAINS
                for lv in LEVELS}  # fmt: skip
    assert (
        set(zip(matrix.training_set, matrix.seed, matrix.test_condition, matrix.stain, matrix.level, strict=True))
        == expected
    )
    assert len(matrix) == len(expected)
    pixel = matrix[matrix.level == "pixel"]
    assert pixel.score.between(0, 1).all()
    diagonal = pixel[pixel["shift"] == IN_DISTRIBUTION]
    assert set(zip(diagonal.training_set, diagonal.test_condition, strict=True)) == {(c, c) for c in CONDITIONS}

    wells = open_dataset(lung_screen).manifest.set_index("field_id").split_group
    for trial_id in matrix.trial_id.unique():  # the diagonal is scored on wells the model never trained on
        fields = read_fields(str(results), trial_id)
        trained, scored = set(wells[fields["trained"]]), set(wells[fields["scored"]])
        assert trained and scored and not trained & scored and not set(wells[fields["validated"]]) & scored

    report = subprocess.run([VSEARCH, "report", str(results)], capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stdout + report.stderr
    page = (results / "report.html").read_text()
    written = len(re.findall(r'<div id="[^"]+" class="plotly-graph-div"', page))
    rendered = render(results / "report.html")
    assert rendered.plots == written >= 2 and rendered.console == []  # every figure drawn, no script error
    assert rendered.heatmaps >= 4  # the pixel matrix: mean of stains, three stains and the gap column
    assert "trained on (rows)" in page
