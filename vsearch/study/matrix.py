"""The generalisation matrix of a study as a long table (``matrix.parquet``: one row per training set, model,
seed, test condition, stain and level), and its summaries: mean ± sd over seeds per cell, the generalisation
gap of each training set, and scores grouped by distribution shift. Pure functions on DataFrames."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

IN_DISTRIBUTION = "in distribution"
UNSEEN_PHENOTYPE = "unseen phenotype"  # the cell type was trained on, the phenotype was not
UNSEEN_CELL_TYPE = "unseen cell type"
UNSEEN_BOTH = "unseen cell type and phenotype"
UNSEEN_COMBINATION = "unseen combination"  # type and phenotype each trained on, never together
SHIFTS = (IN_DISTRIBUTION, UNSEEN_COMBINATION, UNSEEN_PHENOTYPE, UNSEEN_CELL_TYPE, UNSEEN_BOTH)
MATRIX_COLUMNS = [
    "training_set", "composition", "model", "seed", "trial_id", "test_condition", "stain", "level", "score", "shift",
]  # fmt: skip
CELL_KEYS = ["training_set", "model"]
MEAN_OF_STAINS = "mean of stains"


def shift_of(test_condition: str, trained: Iterable[str]) -> str:
    """How a test condition differs from the conditions a model was trained on."""
    trained = set(trained)
    if test_condition in trained:
        return IN_DISTRIBUTION
    cell_type, phenotype = test_condition.split("/")
    type_seen = any(c.split("/")[0] == cell_type for c in trained)
    phenotype_seen = any(c.split("/")[1] == phenotype for c in trained)
    if type_seen and phenotype_seen:
        return UNSEEN_COMBINATION
    if type_seen:
        return UNSEEN_PHENOTYPE
    return UNSEEN_CELL_TYPE if phenotype_seen else UNSEEN_BOTH


def matrix_rows(
    scores: Mapping[str, float], *, training_set: str, composition: Mapping[str, float], model: str, seed: int,
    trial_id: str,
) -> list[dict[str, object]]:  # fmt: skip
    """The long rows of one trained model from its scores ``<cell_type>/<phenotype>/<stain>/<level>``."""
    trained = [c for c, w in composition.items() if w > 0]
    rows = []
    for key, score in scores.items():
        if key.count("/") != 3:
            continue
        cell_type, phenotype, stain, level = key.split("/")
        test_condition = f"{cell_type}/{phenotype}"
        rows.append(
            {
                "training_set": training_set, "composition": json.dumps(dict(composition), sort_keys=True),
                "model": model, "seed": seed, "trial_id": trial_id, "test_condition": test_condition,
                "stain": stain, "level": level, "score": float(score), "shift": shift_of(test_condition, trained),
            }
        )  # fmt: skip
    return rows


def per_seed_scores(matrix: pd.DataFrame, level: str, stain: str | None) -> pd.DataFrame:
    """Scores of one level per training set, model, seed and test condition: one stain's, or the mean over
    stains (missing scores skipped)."""
    rows = matrix[matrix.level == level]
    if rows.empty:
        raise KeyError(f"no {level!r} scores in the matrix (levels: {sorted(set(matrix.level))})")
    if stain is not None:
        if stain not in set(rows.stain):
            raise KeyError(f"no scores for stain {stain!r} in the matrix (stains: {sorted(set(rows.stain))})")
        rows = rows[rows.stain == stain]
    keys = [*CELL_KEYS, "seed", "test_condition", "shift"]
    return rows.groupby(keys, sort=False).score.mean().reset_index()


def _spread(groups) -> pd.DataFrame:
    stats = groups.score.agg(["mean", "std", "count"]).rename(columns={"std": "sd", "count": "seeds"})
    return stats.reset_index()


def cell_summary(matrix: pd.DataFrame, level: str, stain: str | None = None) -> pd.DataFrame:
    """Per training set, model and test condition: ``mean``, ``sd`` (sample sd over seeds; NaN for one seed),
    ``seeds`` and the ``shift``."""
    per_seed = per_seed_scores(matrix, level, stain)
    return _spread(per_seed.groupby([*CELL_KEYS, "test_condition", "shift"], sort=False))


def generalisation_gap(matrix: pd.DataFrame, level: str, stain: str | None = None) -> pd.DataFrame:
    """Per training set and model: in-distribution score minus the mean out-of-distribution score, computed per
    seed, then ``mean`` and ``sd`` over seeds (NaN for a training set with no in-distribution or no
    out-of-distribution test condition)."""
    per_seed = per_seed_scores(matrix, level, stain)
    inside = per_seed["shift"] == IN_DISTRIBUTION
    by_seed = [*CELL_KEYS, "seed"]
    ind = per_seed[inside].groupby(by_seed).score.mean()
    ood = per_seed[~inside].groupby(by_seed).score.mean()
    gaps = (ind - ood).rename("score").reset_index()
    order = list(dict.fromkeys(zip(per_seed.training_set, per_seed.model, strict=True)))
    summary = _spread(gaps.dropna(subset=["score"]).groupby(CELL_KEYS))
    summary = pd.DataFrame(order, columns=CELL_KEYS).merge(summary, on=CELL_KEYS, how="left")
    return summary.fillna({"seeds": 0}).astype({"seeds": int})


def shift_summary(matrix: pd.DataFrame, level: str, stain: str | None = None) -> pd.DataFrame:
    """Per training set, model and shift: the mean over the shift's test conditions per seed, then ``mean`` and
    ``sd`` over seeds."""
    per_seed = per_seed_scores(matrix, level, stain)
    by_shift = per_seed.groupby([*CELL_KEYS, "shift", "seed"], sort=False).score.mean().reset_index()
    return _spread(by_shift.groupby([*CELL_KEYS, "shift"], sort=False))


def matrix_grid(summary: pd.DataFrame, column: str = "mean") -> pd.DataFrame:
    """``cell_summary`` as a grid: columns the test conditions (sorted); rows ``training set · model``, first the
    training sets named after a test condition in column order (so single conditions form the diagonal), then
    the others by name."""
    columns = sorted(set(summary.test_condition))
    rank = {c: i for i, c in enumerate(columns)}
    keys = summary[CELL_KEYS].drop_duplicates()
    keys = keys.assign(rank=keys.training_set.map(rank).fillna(len(rank))).sort_values(["rank", *CELL_KEYS])
    labels = summary.training_set + " · " + summary.model
    grid = summary.assign(row=labels).pivot(index="row", columns="test_condition", values=column)
    return grid.reindex(index=list(keys.training_set + " · " + keys.model), columns=columns)


def paired_difference(a: pd.Series, b: pd.Series) -> tuple[float, float, int]:
    """(mean, standard error, n) of ``a − b`` over the seeds both have (indexed by seed)."""
    diff = (a - b).dropna()
    n = len(diff)
    if n == 0:
        return float("nan"), float("nan"), 0
    se = float(diff.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    return float(diff.mean()), se, n
