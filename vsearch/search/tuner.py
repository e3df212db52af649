"""Ray Tune + Optuna: each trial samples a composition and model (define-by-run), trains it with a
``TorchTrainer`` (metrics reach Tune through ``TuneReportCallback``), then scores it on held-out conditions."""

from __future__ import annotations

import json
import math
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import ray
import ray.tune
from ray.tune.integration.ray_train import TuneReportCallback
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search.optuna import OptunaSearch

from vsearch.cluster import (
    cluster_capacity,
    connect,
    full_scale_nodes,
    refuse_node_local_paths,
    releasing_leftover_placement_groups,
)
from vsearch.config import TrainConfig
from vsearch.data import storage
from vsearch.data.manifest import conditions_of
from vsearch.evaluate.features import StainRoles
from vsearch.evaluate.field import EvaluationConfig
from vsearch.evaluate.score import FIELD_LEVELS, LEVELS
from vsearch.lock import results_lock
from vsearch.search.heldout import OBJECTIVE, HeldOutScoring, held_out_fields, held_out_scores, scored_dataset
from vsearch.search.results import RUNS_FOLDER, write_held_out_fields, write_space, write_trials
from vsearch.search.space import ResolvedSpace, SearchSpace, TrialResources
from vsearch.search.stalls import SearchStalled, StallWatch
from vsearch.train.resources import fitting_runs, refuse_unless_one_fits, run_needs
from vsearch.train.trainer import build_trainer, plan_training, storage_location
from vsearch.train.watchdog import ProgressBoard, watched_fit

EXPERIMENT = "search"
STUDY = "vsearch"
# carried from the last epoch into the final report: a retried trial resumes after epoch 0 on some node
EPOCH_METRICS_KEPT = ("val_score", "start_epoch", "node_id")


@dataclass
class SearchPlan:
    space: SearchSpace
    resolved: ResolvedSpace
    eval_fields: dict[str, list[str]]  # held-out condition -> the fields every trial is scored on
    results: str
    study_storage: str
    roles: StainRoles

    @property
    def eval_field_ids(self) -> list[str]:
        return [field_id for ids in self.eval_fields.values() for field_id in ids]


def plan_search(space: SearchSpace, results: str | None = None) -> SearchPlan:
    """Every check that needs no Ray: the dataset, stains and their roles, conditions, held-out fields; refuses
    overlaps."""
    space = space.model_copy(update={"dataset": storage.absolute(space.dataset)})
    dataset, roles = scored_dataset(space.dataset, space.stains, space.roles)
    conditions = sorted(set(conditions_of(dataset.manifest)))
    resolved = ResolvedSpace(space, conditions)
    eval_ids = held_out_fields(
        dataset.manifest, resolved.held_out, space.objective.eval_fields_per_condition, space.seed
    )
    condition_of_field = dict(zip(dataset.manifest.field_id, conditions_of(dataset.manifest), strict=True))
    eval_fields: dict[str, list[str]] = {}
    for field_id in eval_ids:
        eval_fields.setdefault(condition_of_field[field_id], []).append(field_id)
    results = storage.absolute(results or space.results)
    study_storage = space.storage or default_study_storage(results)
    return SearchPlan(space, resolved, eval_fields, results, study_storage, roles)


def default_study_storage(results: str) -> str:
    """SQLite inside a local results folder; for remote results, a local cache file (copied there at the end).
    ``run_search`` creates its folder."""
    if storage.is_remote(results):
        cache = Path.home() / ".cache" / "vsearch" / results.replace("://", "_").replace("/", "_")
        return f"sqlite:///{cache / 'optuna.db'}"
    return f"sqlite:///{Path(results).absolute() / 'optuna.db'}"


def fit_and_score(train_config: TrainConfig, scoring: HeldOutScoring, stall_timeout_s: float):
    """Trains one model (its epoch metrics reach Tune through ``TuneReportCallback``); the rank-0 worker scores it
    with ``scoring`` after the last epoch, on its own device. Fails with ``TrialStalled`` when its workers make no
    progress for ``stall_timeout_s``. Returns (training plan, Ray Train result, seconds)."""
    started = time.perf_counter()
    training = plan_training(train_config)
    board = ProgressBoard.remote()
    trainer = build_trainer(
        train_config, training, callbacks=[TuneReportCallback()], after_training=scoring, progress=board
    )
    gpus = train_config.resources_per_worker().get("GPU", 0)
    asks = f"{train_config.workers} worker(s) of {train_config.cpus_per_worker:g} CPU and {gpus:g} GPU"
    result = watched_fit(trainer.fit, board, trial=scoring.trial_id, stall_timeout_s=stall_timeout_s, asks=asks)
    return training, result, time.perf_counter() - started


def report_scored(result, seconds: float, epochs: int, resources: TrialResources) -> None:
    """The trial's final Tune result: its held-out scores, what the last epoch said, and its cost."""
    last_epoch = result.metrics or {}
    reserved_cpus = run_needs(resources.workers, resources.cpus_per_worker, resources.gpus_per_worker)["CPU"]
    ray.tune.report(
        {
            **held_out_scores(last_epoch),
            **{k: last_epoch[k] for k in EPOCH_METRICS_KEPT if k in last_epoch},
            "epoch": epochs - 1,
            "held_out_scored": True,
            "train_seconds": seconds,
            "cpu_seconds": seconds * reserved_cpus,
            "gpu_seconds": seconds * resources.workers * resources.gpus_per_worker,
        }
    )


def run_trial(config: dict[str, Any], *, plan: SearchPlan) -> None:
    """One Tune trial of a search: train the sampled composition and model, score it on the held-out fields."""
    trial_id = ray.tune.get_context().get_trial_id()
    train_config = plan.resolved.train_config(
        config["trial_config"], name=f"trial_{trial_id}", storage=storage.join(plan.results, RUNS_FOLDER)
    )
    scoring = HeldOutScoring(
        plan.space.dataset,
        plan.eval_fields,
        EvaluationConfig(stains=tuple(plan.space.stains), roles=plan.roles),
        plan.space.objective.weights,
        plan.results,
        trial_id,
    )
    _, result, seconds = fit_and_score(train_config, scoring, plan.space.trial.stall_timeout_s)
    report_scored(result, seconds, train_config.epochs, plan.space.trial)


class HeldOutOptunaSearch(OptunaSearch):
    """Tells Optuna only each trial's final held-out result: epoch results carry validation scores (ASHA's
    business, not the study's), and intermediate reports would fail for a trial a resumed run finishes again.

    With ``seeds_per_config`` above 1, each configuration Optuna samples is followed by its repeats at the next
    seeds (the suggestions after it), and Optuna is told the mean of their results once all have ended. Its
    state pickles with the searcher, so a resumed search still repeats what it sampled before."""

    def __init__(self, *args, seeds_per_config: int = 1, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.seeds_per_config = seeds_per_config
        self.queued_repeats: list[tuple[str, dict]] = []  # (first trial of the configuration, repeat's config)
        self.first_of: dict[str, str] = {}  # trial -> the first trial of its configuration
        self.ended: dict[str, dict[str, dict | None]] = {}  # first trial -> its trials' results (None: failed)

    def suggest(self, trial_id: str) -> dict | None:
        if self.queued_repeats:
            first, config = self.queued_repeats.pop(0)
            self.first_of[trial_id] = first
            return config
        config = super().suggest(trial_id)
        if config is None:
            return None
        self.first_of[trial_id] = trial_id
        sampled = config["trial_config"]
        for repeat in range(1, self.seeds_per_config):
            self.queued_repeats.append((trial_id, {"trial_config": sampled | {"seed": sampled["seed"] + repeat}}))
        return config

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        return

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        first = self.first_of.get(trial_id, trial_id)
        ended = self.ended.setdefault(first, {})
        ended[trial_id] = None if error else (result or {})
        if len(ended) < self.seeds_per_config:
            return
        finished = [r for r in ended.values() if r is not None]
        if not finished:
            super().on_trial_complete(first, None, error=True)
            return
        metrics = self.metric if isinstance(self.metric, list) else [self.metric]
        mean = {m: _finite_mean([r.get(m) for r in finished]) for m in metrics}
        super().on_trial_complete(first, {k: v for k, v in mean.items() if v is not None})


def _finite_mean(values: list) -> float | None:
    """The mean of the finite numbers among ``values``; None when there is none (a trial ASHA stopped)."""
    finite = [float(v) for v in values if isinstance(v, int | float) and math.isfinite(v)]
    return sum(finite) / len(finite) if finite else None


class TuneGridSampler(optuna.samplers.GridSampler):
    """Tune stops after ``planned_trials``; Optuna's own stop at the last grid point works only inside
    ``Study.optimize`` and would fail the last trial's ``tell``."""

    def after_trial(self, study, trial, state, values) -> None:
        return


class TuneNSGAIISampler(optuna.samplers.NSGAIISampler):
    """NSGA-II that Tune can checkpoint: Optuna 5 guards its generation cache with a thread lock, which does not
    pickle; a restored copy gets a lock of its own."""

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_thread_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._thread_lock = threading.Lock()


class DefineByRun:
    """Optuna's define-by-run function (a class, so the searcher's checkpoint can pickle it)."""

    def __init__(self, resolved: ResolvedSpace) -> None:
        self.resolved = resolved

    def __call__(self, trial) -> dict[str, Any]:
        return {"trial_config": self.resolved.suggest(trial)}


def max_concurrent(t: TrialResources, cluster: dict[str, float]) -> int:
    """Trials that fit at once: each needs its workers' CPUs plus one CPU for Ray Data, and their GPUs."""
    fit = max(1, fitting_runs(run_needs(t.workers, t.cpus_per_worker, t.gpus_per_worker), cluster))
    return min(fit, t.max_concurrent) if t.max_concurrent else fit


def refuse_unless_a_trial_fits(t: TrialResources, cluster: dict[str, float]) -> None:
    """Refuses trial resources that cannot make progress on ``cluster``, naming the numbers."""
    refuse_unless_one_fits("trial.workers", t.workers, t.cpus_per_worker, t.gpus_per_worker, cluster)


def planned_trials(plan: SearchPlan) -> int:
    """Tune trials: ``num_trials`` configurations (a grid's points, once each at most), each run with
    ``seeds_per_config`` seeds."""
    configurations = plan.space.num_trials
    if plan.space.sampler == "grid":
        configurations = min(configurations, math.prod(len(values) for values in plan.resolved.grid().values()))
    return configurations * plan.space.seeds_per_config


def study_sampler(plan: SearchPlan) -> optuna.samplers.BaseSampler:
    """The space's Optuna sampler, seeded."""
    space = plan.space
    return {
        "tpe": lambda: optuna.samplers.TPESampler(seed=space.seed),
        "nsga2": lambda: TuneNSGAIISampler(seed=space.seed),
        "random": lambda: optuna.samplers.RandomSampler(seed=space.seed),
        "grid": lambda: TuneGridSampler(plan.resolved.grid(), seed=space.seed),
    }[space.sampler]()


def searcher(plan: SearchPlan) -> HeldOutOptunaSearch:
    """Optuna behind Tune, its study in ``plan.study_storage``: the composite objective, or the field levels as
    separate objectives."""
    if plan.space.objective.mode == "multi":
        metric, mode = list(FIELD_LEVELS), ["max"] * len(FIELD_LEVELS)
    else:
        metric, mode = OBJECTIVE, "max"
    return HeldOutOptunaSearch(
        space=DefineByRun(plan.resolved),
        metric=metric,
        mode=mode,
        sampler=study_sampler(plan),
        study_name=STUDY,
        storage=optuna.storages.RDBStorage(plan.study_storage),
        seed=plan.space.seed,
        seeds_per_config=plan.space.seeds_per_config,
    )


def scheduler(space: SearchSpace) -> ASHAScheduler | None:
    """ASHA on the epochs' validation score, or None (every trial runs to the end)."""
    if space.scheduler.type != "asha":
        return None
    return ASHAScheduler(
        metric="val_score", mode="max", time_attr="training_iteration", grace_period=space.scheduler.grace_period,
        reduction_factor=space.scheduler.reduction_factor, max_t=1000,
    )  # fmt: skip


def trial_driver(function, **parameters):
    """A Tune trainable of ``function``: the trial driver only waits on its TorchTrainer, so it reserves memory,
    not CPUs, which go to the workers and Ray Data."""
    return ray.tune.with_resources(ray.tune.with_parameters(function, **parameters), {"cpu": 0, "memory": 2**28})


def experiment_config(
    results: str, name: str, max_failures: int, callbacks: list | None, watch: StallWatch
) -> ray.tune.RunConfig:
    """Where Tune keeps the experiment ``name`` (inside ``results``, local or S3), its retries, and ``watch``,
    which stops it when it can make no progress."""
    storage_path, storage_filesystem = storage_location(results)
    return ray.tune.RunConfig(
        name=name,
        storage_path=storage_path,
        storage_filesystem=storage_filesystem,
        failure_config=ray.tune.FailureConfig(max_failures=max_failures),
        callbacks=[*(callbacks or []), watch],
        stop=watch.stopper,
        verbose=0,
    )


def restored_tuner(results: str, name: str, trainable) -> ray.tune.Tuner:
    """The Tuner of the experiment ``name`` in ``results``, to finish its unfinished and failed trials."""
    storage_path, storage_filesystem = storage_location(results)
    experiment = f"{storage_path}/{name}"
    if not ray.tune.Tuner.can_restore(experiment, storage_filesystem=storage_filesystem):
        raise ValueError(f"--resume: nothing to resume at {storage.join(results, name)}")
    return ray.tune.Tuner.restore(
        experiment, trainable, resume_unfinished=True, resume_errored=True, storage_filesystem=storage_filesystem
    )


def build_tuner(
    plan: SearchPlan, watch: StallWatch, callbacks: list | None = None, resume: bool = False
) -> ray.tune.Tuner:
    """The Tuner of a plan, or the restored one of its earlier run (``resume``)."""
    space = plan.space
    trainable = trial_driver(run_trial, plan=plan)
    if resume:
        return restored_tuner(plan.results, EXPERIMENT, trainable)
    return ray.tune.Tuner(
        trainable,
        tune_config=ray.tune.TuneConfig(
            search_alg=searcher(plan),
            scheduler=scheduler(space),
            num_samples=planned_trials(plan),
            max_concurrent_trials=max_concurrent(space.trial, cluster_capacity()),
        ),
        run_config=experiment_config(plan.results, EXPERIMENT, space.trial.max_failures, callbacks, watch),
    )


def error_line(error: BaseException | None) -> str:
    """The last line of a trial's error (the exception that ended it, after Ray's and Tune's wrapping), or ""."""
    if error is None:
        return ""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


def trials_table(results_grid, plan: SearchPlan) -> pd.DataFrame:
    """One row per trial: status, config, composition weights, held-out scores, composite, timings."""
    rows = []
    for result in results_grid:
        metrics = result.metrics or {}
        sampled = (result.config or {}).get("trial_config", {})
        scored = bool(metrics.get("held_out_scored"))
        if result.error is not None:
            status = "failed"
        elif scored:
            status = "completed"
        else:
            status = "stopped_early"
        row: dict[str, Any] = {
            "trial_id": metrics.get("trial_id") or Path(result.path).name,
            "status": status,
            "error": error_line(result.error),
            "epochs_trained": int(metrics.get("training_iteration", 0)) - (1 if scored else 0),
            "epochs_planned": sampled.get("epochs"),
            "config": json.dumps(
                {k: v for k, v in sampled.items() if k not in ("composition", "composition_preset")}, sort_keys=True
            ),
            "composition_preset": sampled.get("composition_preset", ""),
            "composition": json.dumps(sampled.get("composition", {}), sort_keys=True),
            "composite": metrics.get(OBJECTIVE, float("nan")),
            "objective_weights": json.dumps(plan.space.objective.weights, sort_keys=True),
            "val_score": metrics.get("val_score", float("nan")),
            "resumed_at_epoch": int(metrics.get("start_epoch", 0)),
            "node_id": metrics.get("node_id", ""),
        }
        row |= {f"w/{c}": sampled.get("composition", {}).get(c, 0.0) for c in plan.resolved.trainable}
        row |= {level: metrics.get(level, float("nan")) for level in LEVELS}
        row |= {f"score/{k}": v for k, v in metrics.items() if k.count("/") == 3 and isinstance(v, float | int)}
        row |= {k: metrics.get(k, float("nan")) for k in ("train_seconds", "cpu_seconds", "gpu_seconds")}
        row["held_out"] = json.dumps(plan.resolved.held_out)
        rows.append(row)
    return pd.DataFrame(rows)


def run_search(
    space: SearchSpace,
    *,
    results: str | None = None,
    resume: bool = False,
    callbacks: list | None = None,
    address: str | None = None,
) -> tuple[pd.DataFrame, str]:
    """Run (or resume) the search on the cluster at ``address`` (``connect``), holding the results folder's lock;
    returns the trials table and where it was written. Refuses local dataset and results paths on a cluster of
    more than one node, before writing anything. Raises ``SearchStalled`` (after writing the table) when a
    trial stalled before any trial made progress."""
    plan = plan_search(space, results)
    # epoch reports carry the validation score (for ASHA); only the final report carries the held-out objective
    os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"
    # save the experiment state at every step, so a killed search resumes without rerunning finished trials
    os.environ["TUNE_GLOBAL_CHECKPOINT_S"] = "0"
    connect(address)
    refuse_node_local_paths({"dataset": plan.space.dataset, "results": plan.results}, full_scale_nodes())
    refuse_unless_a_trial_fits(plan.space.trial, cluster_capacity())
    with results_lock(plan.results, resume=resume, command="vsearch run"):
        if plan.study_storage.startswith("sqlite:///"):
            Path(plan.study_storage.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        write_space(plan.results, plan.space.model_dump(mode="json"))
        write_held_out_fields(plan.results, plan.eval_fields)  # the report shows these, not a recomputed choice
        watch = StallWatch()
        with releasing_leftover_placement_groups():
            grid = build_tuner(plan, watch, callbacks, resume).fit()
        table = trials_table(grid, plan)
        where = write_trials(table, plan.results)
        if storage.is_remote(plan.results) and plan.study_storage.startswith("sqlite:///"):
            fs, root = storage.filesystem(plan.results)
            fs.put(plan.study_storage.removeprefix("sqlite:///"), f"{root}/optuna.db")
    if watch.stall:
        raise SearchStalled(f"the search stopped, as no trial could make progress on this cluster: {watch.stall}")
    return table, where
