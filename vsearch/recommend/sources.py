"""The scored mixes of a finished search (its held-out objective) or study (its scores on the conditions no
training set trains on), as ``MixScores`` for a recommendation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from vsearch.evaluate.score import FIELD_LEVELS, composite
from vsearch.recommend.mixes import MixScores
from vsearch.search.results import read_trials
from vsearch.study.results import is_study, read_cells, read_matrix

OBJECTIVES = ("composite", *FIELD_LEVELS)
SETTINGS_KEYS = ("family", "depth", "base_width", "norm", "upsampling", "residual", "lr", "epochs", "batch_size",
                 "loss")  # fmt: skip


def _check_objective(objective: str) -> None:
    if objective not in OBJECTIVES:
        raise ValueError(f"objective {objective!r} is not one of {', '.join(OBJECTIVES)}")


def search_mix_scores(trials: pd.DataFrame, objective: str = "composite") -> MixScores:
    """Completed trials with a finite ``objective``; the mix weights are the ``w/<condition>`` columns."""
    _check_objective(objective)
    done = trials[(trials.status == "completed") & np.isfinite(trials[objective].astype(float))]
    conditions = sorted(c.removeprefix("w/") for c in trials.columns if c.startswith("w/"))
    configs = [json.loads(c) for c in done.config]
    return MixScores(
        conditions=conditions,
        weights=done[[f"w/{c}" for c in conditions]].to_numpy(float),
        scores=done[objective].to_numpy(float),
        settings=[{k: v for k, v in c.items() if k in SETTINGS_KEYS} for c in configs],
        seeds=[c.get("seed", 0) for c in configs],  # searches before seeds_per_config ran every trial at one seed
        trial_ids=done.trial_id.astype(str).tolist(),
        objective=objective,
    )


def study_objective_conditions(cells: pd.DataFrame, matrix: pd.DataFrame) -> list[str]:
    """The test conditions no training set of the study trains on, or every test condition if there is none."""
    trained = {c for composition in cells.composition for c, w in json.loads(composition).items() if w > 0}
    tested = sorted(set(matrix.test_condition))
    return [c for c in tested if c not in trained] or tested


def study_mix_scores(cells: pd.DataFrame, matrix: pd.DataFrame, objective: str = "composite") -> MixScores:
    """Each scored model of a study: its mean score over ``study_objective_conditions`` and their stains, per
    level, or their composite (field levels weighted equally)."""
    _check_objective(objective)
    scored = cells[cells.status == "completed"]
    conditions = sorted({c for composition in scored.composition for c in json.loads(composition)})
    on = matrix[matrix.test_condition.isin(study_objective_conditions(scored, matrix))]
    levels = on.groupby(["trial_id", "level"]).score.mean().unstack()
    rows = []
    for cell in scored.itertuples():
        by_level = levels.loc[cell.trial_id].to_dict() if cell.trial_id in levels.index else {}
        value = composite({lv: by_level.get(lv, np.nan) for lv in FIELD_LEVELS}, dict.fromkeys(FIELD_LEVELS, 1.0))
        rows.append(value if objective == "composite" else by_level.get(objective, np.nan))
    scores = np.asarray(rows, float)
    keep = np.isfinite(scores)
    weights = np.array([[json.loads(c).get(k, 0.0) for k in conditions] for c in scored.composition], float)
    return MixScores(
        conditions=conditions,
        weights=weights[keep].reshape(-1, len(conditions)),
        scores=scores[keep],
        settings=[{"model": m} for m, k in zip(scored.model, keep, strict=True) if k],
        seeds=[int(s) for s, k in zip(scored.seed, keep, strict=True) if k],
        trial_ids=[t for t, k in zip(scored.trial_id.astype(str), keep, strict=True) if k],
        objective=objective,
    )


def read_mix_scores(results: str, objective: str = "composite") -> MixScores:
    """The scored mixes of the search or study whose results are at ``results``."""
    if is_study(results):
        return study_mix_scores(read_cells(results), read_matrix(results), objective)
    return search_mix_scores(read_trials(results), objective)
