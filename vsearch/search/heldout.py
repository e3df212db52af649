"""Scoring a trained model on held-out conditions: predict a fixed set of their fields in memory and evaluate
them at every level; no field of a training condition is ever scored."""

from __future__ import annotations

import numpy as np
import pandas as pd

from vsearch.data.dataset import Dataset
from vsearch.data.manifest import conditions_of
from vsearch.evaluate.field import EvaluationConfig, evaluate_field
from vsearch.evaluate.runner import EvaluationResult, assemble
from vsearch.evaluate.score import LEVELS, composite
from vsearch.train.checkpoint import load_model
from vsearch.train.predict import local_checkpoint, predict_fields


def held_out_fields(manifest: pd.DataFrame, conditions: list[str], per_condition: int, seed: int) -> list[str]:
    """Up to ``per_condition`` fields of each held-out condition, from as many different wells as possible, the
    same for every trial (seeded), so trials are compared on identical fields."""
    labels = conditions_of(manifest)
    rng = np.random.default_rng(seed)
    chosen = []
    for condition in sorted(conditions):
        rows = manifest[labels == condition]
        shuffled = rows.iloc[rng.permutation(len(rows))]
        one_per_well = shuffled.drop_duplicates("split_group")
        rest = shuffled[~shuffled.field_id.isin(one_per_well.field_id)]
        chosen += pd.concat([one_per_well, rest]).field_id.head(per_condition).tolist()
    return chosen


def score_held_out(
    checkpoint: str,
    dataset: Dataset,
    field_ids: list[str],
    config: EvaluationConfig,
    weights: dict[str, float],
    device: str = "cpu",
) -> tuple[dict[str, float], EvaluationResult]:
    """(scores, evaluation tables): ``objective`` (the composite of the level means with ``weights``; a level
    without a weight counts 0), the mean of each level over held-out condition × stain, and
    ``<cell_type>/<phenotype>/<stain>/<level>`` for each summary cell."""
    with local_checkpoint(checkpoint) as folder:
        model, meta = load_model(folder, device)
    truth = {f.field_id: f for f in dataset.iter_fields(field_ids)}
    results = [
        evaluate_field(truth[pred.field_id], pred, config)
        for pred in predict_fields(model, meta, truth.values(), device=device)
    ]
    evaluation = assemble(results, dataset.manifest, config, weights)
    summary = evaluation.summary
    scores = {
        f"{r.cell_type}/{r.phenotype}/{r.stain}/{level}": float(getattr(r, level))
        for r in summary.itertuples()
        for level in LEVELS
    }
    level_means = {level: float(summary[level].mean()) for level in LEVELS}
    scores |= level_means
    scores["objective"] = composite(level_means, weights)
    return scores, evaluation
