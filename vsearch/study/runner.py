"""``vsearch study``: every training set × model × seed of a design as a Ray Tune trial (the search's trainer
and scorer), each scored on the test wells of every condition; writes ``matrix.parquet`` and resumes like a
search."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Any

import pandas as pd
import ray
import ray.tune

from vsearch.cluster import (
    cluster_capacity,
    connect,
    full_scale_nodes,
    refuse_node_local_paths,
    releasing_leftover_placement_groups,
)
from vsearch.data import storage
from vsearch.data.manifest import conditions_of
from vsearch.data.splits import assign_splits
from vsearch.evaluate.features import StainRoles
from vsearch.evaluate.field import EvaluationConfig
from vsearch.lock import results_lock
from vsearch.search.heldout import OBJECTIVE, HeldOutScoring, held_out_fields, scored_dataset
from vsearch.search.results import RUNS_FOLDER, read_trials, write_held_out_fields
from vsearch.search.stalls import SearchStalled, StallWatch
from vsearch.search.tuner import (
    error_line,
    experiment_config,
    fit_and_score,
    max_concurrent,
    refuse_unless_a_trial_fits,
    report_scored,
    restored_tuner,
    trial_driver,
)
from vsearch.study.matrix import MATRIX_COLUMNS, matrix_rows
from vsearch.study.results import CELLS_FILE, MATRIX_FILE, write_fields
from vsearch.study.spec import StudySpec, cell_train_config, models_from_trials

EXPERIMENT = "study"


@dataclass
class StudyPlan:
    spec: StudySpec
    cells: list[dict[str, Any]]  # training_set, composition, model (a StudyModel's dump), model_label, seed
    test_fields: dict[str, list[str]]  # condition -> the test-well fields every model is scored on
    results: str
    roles: StainRoles


def plan_study(spec: StudySpec, results: str | None = None) -> StudyPlan:
    """Every check that needs no Ray: stains, roles, training sets, that each condition has test wells and each
    training set validation wells; the fields every model is scored on."""
    spec = spec.model_copy(update={"dataset": storage.absolute(spec.dataset)})
    dataset, roles = scored_dataset(spec.dataset, spec.stains, spec.roles)
    manifest = dataset.manifest
    labels = conditions_of(manifest)
    conditions = sorted(set(labels))
    training_sets = spec.training_sets.expand(conditions)
    splits = assign_splits(manifest, spec.val_fraction, spec.test_fraction, spec.split_seed)
    for condition in conditions:
        if not ((labels == condition) & (splits == "test")).any():
            raise ValueError(f"{condition} has no test well: raise test_fraction or add wells (it needs three or more)")
    for name, composition in training_sets.items():
        if not (labels.isin(list(composition)) & (splits == "val")).any():
            raise ValueError(f"training set {name!r} has no validation well: raise val_fraction or add wells")
    test = manifest[splits == "test"]
    chosen = held_out_fields(test, conditions, spec.test_fields_per_condition, spec.split_seed)
    condition_of_field = dict(zip(manifest.field_id, labels, strict=True))
    test_fields: dict[str, list[str]] = {}
    for field_id in chosen:
        test_fields.setdefault(condition_of_field[field_id], []).append(field_id)
    models = spec.models
    if spec.models_from_search is not None:
        source = spec.models_from_search
        models = models_from_trials(read_trials(source.results), source.best, source.epochs)
    cells = [
        {"training_set": name, "composition": composition, "model": model.model_dump(), "model_label": model.label(),
         "seed": seed}
        for (name, composition), model, seed in itertools.product(training_sets.items(), models, spec.seeds)
    ]  # fmt: skip
    return StudyPlan(spec, cells, test_fields, storage.absolute(results or spec.results), roles)


def run_cell(config: dict[str, Any], *, plan: StudyPlan) -> None:
    """One Tune trial of a study: train one cell's model, score it on every condition's test fields."""
    cell = config["cell"]
    trial_id = ray.tune.get_context().get_trial_id()
    train_config = cell_train_config(
        plan.spec, cell, name=f"trial_{trial_id}", storage=storage.join(plan.results, RUNS_FOLDER)
    )
    scoring = HeldOutScoring(
        plan.spec.dataset,
        plan.test_fields,
        EvaluationConfig(stains=tuple(plan.spec.stains), roles=plan.roles),
        plan.spec.weights,
        plan.results,
        trial_id,
    )
    training, result, seconds = fit_and_score(train_config, scoring, plan.spec.trial.stall_timeout_s)
    scored = [f for ids in plan.test_fields.values() for f in ids]
    write_fields(
        plan.results,
        trial_id,
        {"trained": training.sample.field_id.tolist(), "validated": training.val_ids, "scored": scored},
    )
    report_scored(result, seconds, train_config.epochs, plan.spec.trial)


def build_study_tuner(
    plan: StudyPlan, watch: StallWatch, callbacks: list | None = None, resume: bool = False
) -> ray.tune.Tuner:
    trainable = trial_driver(run_cell, plan=plan)
    if resume:
        return restored_tuner(plan.results, EXPERIMENT, trainable)
    return ray.tune.Tuner(
        trainable,
        param_space={"cell": ray.tune.grid_search(plan.cells)},
        tune_config=ray.tune.TuneConfig(
            max_concurrent_trials=max_concurrent(plan.spec.trial, cluster_capacity()),
            trial_dirname_creator=lambda trial: f"cell_{trial.trial_id}",
        ),
        run_config=experiment_config(plan.results, EXPERIMENT, plan.spec.trial.max_failures, callbacks, watch),
    )


def study_tables(results_grid) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(matrix, cells): the long matrix of every scored model, and one row per trial with its status."""
    rows, cells = [], []
    for result in results_grid:
        metrics, cell = result.metrics or {}, (result.config or {}).get("cell", {})
        trial_id = metrics.get("trial_id") or result.path.rsplit("_", 1)[-1]
        scored = bool(metrics.get("held_out_scored"))
        status = "failed" if result.error is not None else "completed" if scored else "stopped_early"
        cells.append(
            {
                "trial_id": trial_id, "training_set": cell.get("training_set"), "model": cell.get("model_label"),
                "seed": cell.get("seed"), "composition": json.dumps(cell.get("composition", {}), sort_keys=True),
                "status": status, "error": error_line(result.error),
                "composite": metrics.get(OBJECTIVE, float("nan")),
                "train_seconds": metrics.get("train_seconds", float("nan")),
            }
        )  # fmt: skip
        if scored:
            rows += matrix_rows(
                metrics, training_set=cell["training_set"], composition=cell["composition"],
                model=cell["model_label"], seed=cell["seed"], trial_id=trial_id,
            )  # fmt: skip
    return pd.DataFrame(rows, columns=MATRIX_COLUMNS), pd.DataFrame(cells)


def run_study(
    spec: StudySpec,
    *,
    results: str | None = None,
    resume: bool = False,
    callbacks: list | None = None,
    address: str | None = None,
) -> tuple[pd.DataFrame, str]:
    """Run (or resume) the study on the cluster at ``address``, holding the results folder's lock; returns the
    long matrix and where it was written. Refuses local dataset and results paths on a cluster of more than one
    node, before writing anything."""
    plan = plan_study(spec, results)
    connect(address)
    refuse_node_local_paths({"dataset": plan.spec.dataset, "results": plan.results}, full_scale_nodes())
    refuse_unless_a_trial_fits(plan.spec.trial, cluster_capacity())
    with results_lock(plan.results, resume=resume, command="vsearch study"):
        write_held_out_fields(plan.results, plan.test_fields)
        watch = StallWatch()
        with releasing_leftover_placement_groups():
            grid = build_study_tuner(plan, watch, callbacks, resume).fit()
        matrix, cells = study_tables(grid)
        storage.publish_table(storage.join(plan.results, CELLS_FILE), cells)
        where = storage.publish_table(storage.join(plan.results, MATRIX_FILE), matrix)
    if watch.stall:
        raise SearchStalled(f"the study stopped, as no model could make progress on this cluster: {watch.stall}")
    return matrix, where
