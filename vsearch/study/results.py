"""A study's results folder (local or ``s3://``): ``matrix.parquet`` (the long generalisation matrix),
``cells.parquet`` (one row per trained model), ``fields/trial_<id>.json`` (the fields each model trained,
validated and was scored on), checkpoints in ``runs/`` and Tune's state in ``study/``."""

from __future__ import annotations

import json

import pandas as pd

from vsearch.data import storage

MATRIX_FILE = "matrix.parquet"
CELLS_FILE = "cells.parquet"
FIELDS_FOLDER = "fields"


def _read_table(results: str, name: str) -> pd.DataFrame:
    fs, root = storage.filesystem(results)
    if not fs.exists(f"{root}/{name}"):
        raise FileNotFoundError(f"{storage.join(results, name)} not found: was {results} written by a study?")
    with fs.open(f"{root}/{name}", "rb") as f:
        return pd.read_parquet(f)


def read_matrix(results: str) -> pd.DataFrame:
    return _read_table(results, MATRIX_FILE)


def read_cells(results: str) -> pd.DataFrame:
    return _read_table(results, CELLS_FILE)


def write_fields(results: str, trial_id: str, fields: dict[str, list[str]]) -> str:
    return storage.publish(storage.join(results, FIELDS_FOLDER, f"trial_{trial_id}.json"), json.dumps(fields).encode())


def read_fields(results: str, trial_id: str) -> dict[str, list[str]]:
    fs, root = storage.filesystem(results)
    with fs.open(f"{root}/{FIELDS_FOLDER}/trial_{trial_id}.json", "r") as f:
        return json.load(f)


def is_study(results: str) -> bool:
    fs, root = storage.filesystem(results)
    return fs.exists(f"{root}/{MATRIX_FILE}")
