"""A search's results folder (local or ``s3://``): the space it ran (``RESULTS/space.yaml``), the trials table
``RESULTS/trials.parquet`` and each trial's
Ray Train run (checkpoints) in ``RESULTS/runs/trial_<id>`` and its example predictions in
``RESULTS/examples/trial_<id>`` (``vsearch.search.examples``)."""

from __future__ import annotations

import json

import pandas as pd
import yaml

from vsearch.data import storage
from vsearch.evaluate.score import FIELD_LEVELS
from vsearch.report.pareto import pareto_front

TRIALS_FILE = "trials.parquet"
SPACE_FILE = "space.yaml"
HELD_OUT_FILE = "held_out_fields.json"  # condition -> the field ids every trial is scored on
RUNS_FOLDER = "runs"


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


def write_space(results: str, space: dict) -> str:
    """The search space as run (``SearchSpace.model_dump(mode="json")``), for `vsearch recommend` to continue."""
    return storage.publish(storage.join(results, SPACE_FILE), yaml.safe_dump(space, sort_keys=False).encode())


def read_space(results: str) -> dict:
    return yaml.safe_load(_read_text(results, SPACE_FILE, "a `vsearch run` of this version"))


def _read_text(results: str, name: str, writer: str) -> str:
    fs, root = storage.filesystem(results)
    try:
        with fs.open(f"{root}/{name}", "r") as f:
            return f.read()
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{storage.join(results, name)} not found: was {results} written by {writer}?"
        ) from None


def write_held_out_fields(results: str, fields: dict[str, list[str]]) -> str:
    return storage.publish(storage.join(results, HELD_OUT_FILE), json.dumps(fields, indent=2).encode())


def read_held_out_fields(results: str) -> dict[str, list[str]]:
    """The held-out fields the search scored, by condition, as it saved them."""
    return json.loads(_read_text(results, HELD_OUT_FILE, "a `vsearch run`"))


def best_trials(table: pd.DataFrame, mode: str) -> pd.DataFrame:
    """The completed trials a user should look at first, one row each with ``why`` it is shown: for a composite
    objective the best trial by the composite and by each level that any trial scored (a level that is NaN for
    every trial, such as instance without a nuclei stain, is left out); for a multi-objective search the Pareto
    front over the field levels, best composite first."""
    done = table[table.status == "completed"]
    if done.empty:
        return done.assign(why=[])
    if mode == "multi":
        front = done[pareto_front(done[list(FIELD_LEVELS)].to_numpy())]
        return front.sort_values("composite", ascending=False).assign(why="Pareto front")
    rows = []
    for objective in ("composite", *FIELD_LEVELS):
        scored = done[objective].dropna()
        if not scored.empty:
            rows.append(done.loc[[scored.idxmax()]].assign(why=f"best {objective}"))
    return pd.concat(rows) if rows else done.iloc[:0].assign(why=[])
