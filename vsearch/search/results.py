"""A search's results folder (local or ``s3://``): the trials table ``RESULTS/trials.parquet`` and each trial's
Ray Train run (checkpoints) in ``RESULTS/runs/trial_<id>``."""

from __future__ import annotations

import pandas as pd

from vsearch.data import storage

TRIALS_FILE = "trials.parquet"
RUNS_FOLDER = "runs"


def trial_run(results: str, trial_id: str) -> str:
    """Where a trial's checkpoints are."""
    return storage.join(results, RUNS_FOLDER, f"trial_{trial_id}")


def write_trials(table: pd.DataFrame, results: str) -> str:
    storage.publish_table(storage.join(results, TRIALS_FILE), table)
    return storage.join(results, TRIALS_FILE)


def read_trials(results: str) -> pd.DataFrame:
    fs, root = storage.filesystem(results)
    path = f"{root}/{TRIALS_FILE}"
    if not fs.exists(path):
        where = storage.join(results, TRIALS_FILE)
        raise FileNotFoundError(f"{where} not found: is {results} the results folder of a `vsearch run`?")
    with fs.open(path, "rb") as f:
        return pd.read_parquet(f)
