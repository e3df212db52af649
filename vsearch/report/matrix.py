"""Generalisation matrices from a search's trials table (``trials.parquet``): rows are training sets (trials),
columns held-out test conditions, cells one level's score."""

from __future__ import annotations

import json

import pandas as pd

from vsearch.search.composition import SAMPLED

SCORE_PREFIX = "score/"


def score_columns(trials: pd.DataFrame) -> pd.DataFrame:
    """The per-condition score columns ``score/<cell_type>/<phenotype>/<stain>/<level>`` as rows
    ``column, condition, stain, level``, in table order."""
    rows = []
    for column in trials.columns:
        if column.startswith(SCORE_PREFIX):
            cell_type, phenotype, stain, level = column.removeprefix(SCORE_PREFIX).split("/")
            rows.append({"column": column, "condition": f"{cell_type}/{phenotype}", "stain": stain, "level": level})
    return pd.DataFrame(rows, columns=["column", "condition", "stain", "level"])


def ranked_completed(trials: pd.DataFrame) -> pd.DataFrame:
    """Completed trials, best composite first (ties by trial id)."""
    done = trials[trials.status == "completed"]
    return done.sort_values(["composite", "trial_id"], ascending=[False, True], na_position="last")


def training_set_label(trial: pd.Series) -> str:
    """``trial_id · mix``: the composition preset's name, or the non-zero weights of a sampled mix."""
    mix = trial.composition_preset
    if mix in ("", SAMPLED):
        weights = json.loads(trial.composition)
        mix = ", ".join(f"{condition} {weight:.2f}" for condition, weight in weights.items() if weight > 0)
    return f"{trial.trial_id} · {mix}"


def training_set_labels(trials: pd.DataFrame) -> list[str]:
    return [training_set_label(trial) for _, trial in trials.iterrows()]


def generalisation_matrix(trials: pd.DataFrame, level: str, stain: str | None = None) -> pd.DataFrame:
    """Completed trials (best composite first, labelled by ``training_set_label``) × held-out conditions: the
    level's score for ``stain``, or its mean over the stains scored (missing scores skipped) when ``stain`` is
    None. A level or stain that the trials do not have raises ``KeyError`` naming it."""
    columns = score_columns(trials)
    if level not in set(columns.level):
        raise KeyError(f"no {level!r} scores in the trials (levels: {sorted(set(columns.level))})")
    columns = columns[columns.level == level]
    if stain is not None:
        if stain not in set(columns.stain):
            raise KeyError(f"no scores for stain {stain!r} in the trials (stains: {sorted(set(columns.stain))})")
        columns = columns[columns.stain == stain]
    done = ranked_completed(trials)
    conditions = list(dict.fromkeys(columns.condition))
    matrix = pd.DataFrame(
        {c: done[columns.column[columns.condition == c]].mean(axis=1, skipna=True) for c in conditions},
        columns=conditions,
    )
    matrix.index = training_set_labels(done)
    matrix.index.name, matrix.columns.name = "training set", "test condition"
    return matrix
