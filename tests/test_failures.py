"""Faults a search must survive or report: every trial failing, recorded once each with the error's last line."""

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.test_search import write_space
from vsearch.cli import app
from vsearch.search.results import read_trials

pytestmark = pytest.mark.slow  # Ray jobs: `pytest -m "not slow"` leaves them out


def tune_failures(results: Path) -> dict[str, int]:
    """Failures Tune logged per trial directory (its ``error.txt`` gets a "Failure # N" entry for each)."""
    return {
        error.parent.name: error.read_text().count("Failure # ") for error in (results / "search").glob("*/error.txt")
    }


def test_a_search_whose_every_trial_fails_records_each_once_with_its_error_and_exits_non_zero(
    small_screen, tmp_path, ray_local
):
    screen = tmp_path / "screen"
    shutil.copytree(small_screen, screen)
    shards = sorted((screen / "shards").rglob("*.parquet"))
    for shard in shards:  # the manifest plans the search; the images themselves cannot be read
        shard.write_bytes(b"not a parquet file")
    results = tmp_path / "results"
    path = write_space(
        tmp_path / "s.yaml", str(screen), str(results), num_trials=2, trial={"max_failures": 0},
        optim={"lr": 0.002, "batch_size": [8], "epochs": 1},
    )  # fmt: skip
    ran = CliRunner().invoke(app, ["run", str(path)])
    assert ran.exit_code == 1, ran.output
    assert "every trial failed (2)" in ran.output
    trials = read_trials(str(results))
    assert len(trials) == 2 and (trials.status == "failed").all()
    for error in trials.error:  # the last line of the trial's traceback: what went wrong
        assert (
            error == "pyarrow.lib.ArrowInvalid: Parquet magic bytes not found in footer. Either the file is "
            "corrupted or this is not a parquet file."
        )
    assert sorted(tune_failures(results).values()) == [1, 1]  # max_failures 0: no trial was tried again
    assert all(f"trial {t} failed" in ran.output for t in trials.trial_id)
