"""Scoring a trained model on held-out conditions: predict a fixed set of their fields in memory and evaluate
them at every level; no field of a training condition is ever scored."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from vsearch.data.dataset import Dataset, open_dataset, open_dataset_cached
from vsearch.data.fields import FieldImages
from vsearch.data.manifest import conditions_of
from vsearch.evaluate.features import StainRoles
from vsearch.evaluate.field import EvaluationConfig, evaluate_field
from vsearch.evaluate.runner import EvaluationResult, assemble
from vsearch.evaluate.score import LEVELS, composite
from vsearch.search.examples import make_example, write_examples
from vsearch.train.checkpoint import unwrap
from vsearch.train.prediction import predict_fields

OBJECTIVE = "objective"


def scored_dataset(uri: str, stains: list[str], roles: dict | None) -> tuple[Dataset, StainRoles]:
    """The dataset at ``uri`` and its stain roles over the scored ``stains`` (``roles`` overriding the dataset's);
    refuses a stain the dataset lacks, naming it."""
    dataset = open_dataset(uri)
    missing = [s for s in stains if s not in dataset.info.stains]
    if missing:
        raise ValueError(f"stains: {missing[0]!r} is not a stain of {uri} ({dataset.info.stains})")
    return dataset, StainRoles.resolve(dataset.info.stain_roles(), stains, roles)


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


@dataclass
class HeldOutScores:
    scores: dict[str, float]  # see score_model
    evaluation: EvaluationResult
    truth: dict[str, FieldImages]  # by field id
    predictions: dict[str, FieldImages]


def score_model(
    model: nn.Module,
    meta: dict,
    dataset: Dataset,
    field_ids: list[str],
    config: EvaluationConfig,
    weights: dict[str, float],
    device: torch.device | str = "cpu",
) -> HeldOutScores:
    """Predicts ``field_ids`` with ``model`` (in eval mode; ``meta`` as a checkpoint stores it) and scores them.
    The scores are ``objective`` (the composite of the level means with ``weights``; a level without a weight
    counts 0), the mean of each level over held-out condition × stain, and ``<cell_type>/<phenotype>/<stain>/<level>``
    for each summary cell."""
    truth = {f.field_id: f for f in dataset.iter_fields(field_ids)}
    predictions = {p.field_id: p for p in predict_fields(model, meta, truth.values(), device=device)}
    results = [evaluate_field(truth[field_id], prediction, config) for field_id, prediction in predictions.items()]
    evaluation = assemble(results, dataset.manifest, config, weights)
    summary = evaluation.summary
    scores = {
        f"{r.cell_type}/{r.phenotype}/{r.stain}/{level}": float(getattr(r, level))
        for r in summary.itertuples()
        for level in LEVELS
    }
    level_means = {level: float(summary[level].mean()) for level in LEVELS}
    scores |= level_means
    scores[OBJECTIVE] = composite(level_means, weights)
    return HeldOutScores(scores, evaluation, truth, predictions)


def held_out_scores(metrics: dict) -> dict[str, float]:
    """The entries of a report's ``metrics`` that ``score_model`` made."""
    return {k: v for k, v in metrics.items() if k in (OBJECTIVE, *LEVELS) or k.count("/") == 3}


@dataclass(frozen=True)
class HeldOutScoring:
    """What a trial's rank-0 worker does with its model after the last epoch, on its own device: scores the
    held-out ``fields`` (condition → field ids) and saves the first field of each condition as the trial's
    example prediction in ``results``. Its scores join the last epoch's report."""

    dataset: str
    fields: dict[str, list[str]]
    config: EvaluationConfig
    weights: dict[str, float]
    results: str
    trial_id: str

    def __call__(self, model: nn.Module, meta: dict, device: torch.device) -> dict[str, float]:
        ids = [field_id for ids in self.fields.values() for field_id in ids]
        model = unwrap(model).eval()
        scored = score_model(model, meta, open_dataset_cached(self.dataset), ids, self.config, self.weights, device)
        examples = [
            make_example(scored.truth[ids[0]], scored.predictions[ids[0]], condition)
            for condition, ids in self.fields.items()
        ]
        write_examples(self.results, self.trial_id, examples)
        return scored.scores
