"""Faults a search must survive or report: every trial failing, recorded once each with the error's last line."""

import re
import shutil
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.test_search import write_space
from vsearch.cli import app
from vsearch.search.results import read_trials
from vsearch.train.watchdog import Heartbeat, ProgressBoard, TrialStalled, watched_fit

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


class CpuHolder:
    """An actor that holds CPUs until killed: the cluster has them, but no trial can get them."""

    def ready(self) -> bool:
        return True


def test_a_search_whose_trials_cannot_start_stops_at_the_first_stall_naming_what_it_waited_for(
    small_screen, tmp_path, ray_local
):
    import ray

    results = tmp_path / "results"
    path = write_space(
        tmp_path / "s.yaml", small_screen, str(results), num_trials=3,
        trial={"cpus_per_worker": 0.5, "max_failures": 0, "stall_timeout_s": 15},
        optim={"lr": 0.002, "batch_size": [8], "epochs": 1},
    )  # fmt: skip
    holder = ray.remote(num_cpus=2)(CpuHolder).remote()
    ray.get(holder.ready.remote())
    try:
        ran = CliRunner().invoke(app, ["run", str(path)])
    finally:
        ray.kill(holder)
    # the stalled trial's placement group, still pending when its trial failed, is gone: both CPUs come back
    deadline = time.monotonic() + 20
    while ray.available_resources().get("CPU", 0) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert ray.available_resources().get("CPU", 0) == 2, ray.util.placement_group_table()
    assert ran.exit_code == 1, ran.output
    output = " ".join(ran.output.split())
    assert "the search stopped, as no trial could make progress on this cluster" in output
    trials = read_trials(str(results))
    failed = trials[trials.status == "failed"]
    assert len(failed) == 1 and not (trials.status == "completed").any()  # the others were not waited out
    [error] = failed.error
    assert re.fullmatch(
        rf".*TrialStalled: trial {failed.trial_id.iloc[0]} made no progress for 1[5-9] s since it started: it waited "
        r"for its training workers to start and get their first batch from the data stream; it asks 1 worker\(s\) of "
        r"0.5 CPU and 0 GPU; the cluster has CPU 0 of 2 free, no GPU",
        error,
    ), error


def test_the_watchdog_fails_a_fit_that_stops_beating_and_lets_a_beating_one_finish(ray_local):
    board = ProgressBoard.remote()
    heartbeat = Heartbeat(board)

    def stalls_mid_stream() -> None:
        for _ in heartbeat.batches(range(3)):
            pass
        time.sleep(30)  # the next batch never comes

    with pytest.raises(TrialStalled) as stalled:
        watched_fit(stalls_mid_stream, board, trial="t1", stall_timeout_s=3, asks="1 worker(s) of 1 CPU and 0 GPU")
    assert re.fullmatch(
        r"trial t1 made no progress for [3-5] s after its last progress \(training batch\): it waited for the next "
        r"training batch from the data stream; it asks 1 worker\(s\) of 1 CPU and 0 GPU; the cluster has CPU [\d.]+ "
        r"of 2 free, no GPU",
        str(stalled.value),
    ), stalled.value

    def beats_for_6_s() -> str:
        for _ in heartbeat.batches(range(12)):
            time.sleep(0.5)
        return "trained"

    fresh = ProgressBoard.remote()
    heartbeat = Heartbeat(fresh)
    assert watched_fit(beats_for_6_s, fresh, trial="t2", stall_timeout_s=3, asks="") == "trained"

    def fails() -> None:
        raise ValueError("shard 3 is unreadable")

    with pytest.raises(ValueError, match="shard 3 is unreadable"):
        watched_fit(fails, ProgressBoard.remote(), trial="t3", stall_timeout_s=3, asks="")
