"""`vsearch run` on real Ray: trials.parquet, the Optuna study, held-out-only objectives and examples on a two-node
cluster with S3, NSGA-II, ASHA, retries and resume."""

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import psutil
import pytest
import ray
import yaml
from ray.util.state import list_placement_groups
from typer.testing import CliRunner

from tests.processes import kill_session
from tests.raycluster import loopback_cluster
from vsearch.cli import app
from vsearch.config import load_yaml
from vsearch.data import storage
from vsearch.data.dataset import open_dataset
from vsearch.report.page import write_report
from vsearch.report.pareto import pareto_front
from vsearch.search.examples import read_examples
from vsearch.search.results import read_held_out_fields, read_trials
from vsearch.search.space import SearchSpace
from vsearch.search.tuner import run_search

pytestmark = pytest.mark.slow  # Ray jobs: `pytest -m "not slow"` leaves them out

VSEARCH = str(Path(sys.executable).parent / "vsearch")


def write_space(path: Path, dataset: str, results: str, **overrides) -> Path:
    space = {
        "dataset": dataset,
        "held_out": {"leave_out": "phenotype", "phenotype": "toxic"},
        "composition": {"budget": 8, "presets": ["single"], "sample_weights": True, "min_weight": 0.05},
        "model": {"depth": [2], "base_width": [4, 8]},
        "optim": {"lr": {"low": 0.0005, "high": 0.005, "log": True}, "batch_size": [8], "epochs": 2},
        "patch": 48,
        "patches_per_field": 2,
        "objective": {"eval_fields_per_condition": 3},
        "num_trials": 2,
        "results": results,
        **overrides,
    }
    path.write_text(yaml.safe_dump(space))
    return path


def test_multi_objective_nsga2_returns_a_pareto_set(small_screen, tmp_path, ray_local):
    path = write_space(
        tmp_path / "s.yaml", small_screen, str(tmp_path / "results"), num_trials=2, sampler="nsga2",
        objective={"mode": "multi", "eval_fields_per_condition": 3},
    )  # fmt: skip
    table, _ = run_search(load_yaml(path, SearchSpace))
    assert (table.status == "completed").all()
    study = optuna.load_study(study_name="vsearch", storage=f"sqlite:///{tmp_path / 'results' / 'optuna.db'}")
    assert len(study.directions) == 3
    pareto = study.best_trials
    assert 1 <= len(pareto) <= 2
    values = {t.number: t.values for t in study.trials}
    for best in pareto:  # no trial dominates a Pareto trial
        for other in values.values():
            assert not (all(o >= b for o, b in zip(other, best.values, strict=True)) and other != best.values)
    # the report's front over the trials table is Optuna's
    levels = table[["pixel", "instance", "feature"]].to_numpy()
    np.testing.assert_allclose(
        sorted(map(tuple, levels[pareto_front(levels)])), sorted(tuple(best.values) for best in pareto)
    )


@contextmanager
def other_local_rays() -> Iterator[None]:
    """Two more Ray instances on this machine, as a concurrent `vsearch evaluate` (a ``ray.init()`` local
    instance) and a ``ray start --head`` cluster would leave them."""
    script = "import ray, time; ray.init(num_cpus=1, include_dashboard=False); print('up', flush=True); time.sleep(900)"
    other = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert other.stdout.readline().strip() == "up"
        with loopback_cluster(nodes=1, cpus_per_node=1):
            yield
    finally:
        kill_session(other.pid)


def placement_groups() -> list:
    """This Ray's placement groups not yet removed."""
    return list_placement_groups(
        address=ray.get_runtime_context().gcs_address, filters=[("state", "!=", "REMOVED")], detail=True
    )


def placement_groups_left(within_s: float, besides: set[str]) -> list:
    """The placement groups, other than ``besides``, not yet removed once removal has settled: Ray removes a group
    asynchronously (a stopped trial's by its cleaner actor, polling each second), so one may still be listed as
    the search returns."""
    deadline = time.monotonic() + within_s
    while True:
        left = [group for group in placement_groups() if group.placement_group_id not in besides]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(1)


def test_asha_stops_trials_whose_validation_score_lags_beside_other_local_rays(small_screen, tmp_path, ray_local):
    """Ray Train removes a stopped trial's placement group only when its cleaner reaches this cluster's state
    API; with other Ray instances on the machine it used to find theirs (or none), and the next trial hung."""
    path = write_space(
        tmp_path / "s.yaml", small_screen, str(tmp_path / "results"), num_trials=4, sampler="grid",
        composition={"budget": 8, "presets": ["all"], "sample_weights": False},
        optim={"lr": [0.004, 0.00001], "batch_size": [8], "epochs": 3},  # a learning and a stalled model
        scheduler={"type": "asha", "grace_period": 1, "reduction_factor": 2},
    )  # fmt: skip
    # Earlier tests on this Ray may have left groups: Ray Train hands a trial's group to its cleaner only once the
    # workers have started, so that of a trial failed while it waited for resources stays until the job ends.
    earlier = {group.placement_group_id for group in placement_groups()}
    with other_local_rays():
        _, where = run_search(load_yaml(path, SearchSpace))
    assert placement_groups_left(within_s=30, besides=earlier) == []  # every trial's group, stopped ones' too, is gone
    trials = pd.read_parquet(where)
    stopped, completed = trials[trials.status == "stopped_early"], trials[trials.status == "completed"]
    assert len(trials) == 4 and len(stopped) >= 1 and len(completed) >= 1
    assert (stopped.epochs_trained < 3).all() and stopped.composite.isna().all()
    assert (completed.epochs_trained == 3).all() and completed.composite.between(0, 1).all()
    assert trials.val_score.notna().all()
    learning_rates = trials.config.map(lambda config: json.loads(config)["lr"])
    assert (learning_rates[stopped.index] == 0.00001).all()  # the stalled models were the ones stopped
    assert (trials.status[learning_rates == 0.004] == "completed").all()
    study = optuna.load_study(study_name="vsearch", storage=f"sqlite:///{tmp_path / 'results' / 'optuna.db'}")
    states = [t.state for t in study.trials]
    assert states.count(optuna.trial.TrialState.PRUNED) == len(stopped)
    assert states.count(optuna.trial.TrialState.COMPLETE) == len(completed)


def completed_in_study(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as connection:
        try:
            return connection.execute("select count(*) from trials where state = 'COMPLETE'").fetchone()[0]
        except sqlite3.OperationalError:
            return 0


def ray_train_workers(driver: subprocess.Popen) -> list[psutil.Process]:
    return [
        p for p in psutil.Process(driver.pid).children(recursive=True)
        if "ray::RayTrainWorker" in " ".join(p.cmdline())
    ]  # fmt: skip


def test_a_trial_whose_worker_dies_is_retried_and_a_killed_search_resumes_without_losing_or_repeating_trials(
    small_screen, tmp_path
):
    results = tmp_path / "results"
    path = write_space(
        tmp_path / "s.yaml", small_screen, str(results), num_trials=2, patches_per_field=60,
        trial={"max_failures": 1}, optim={"lr": 0.002, "batch_size": [8], "epochs": 3},
    )  # fmt: skip
    driver = subprocess.Popen(
        [VSEARCH, "run", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 300
    # Ray Train writes its checkpoint manager's snapshot once the first checkpoint is committed
    while not (committed := list(results.glob("runs/trial_*/checkpoint_manager_snapshot.json"))):
        assert driver.poll() is None and time.monotonic() < deadline, "no trial committed a checkpoint"
        time.sleep(0.1)
    killed_trial = committed[0].parent.name.removeprefix("trial_")
    workers = ray_train_workers(driver)
    assert len(workers) == 1
    workers[0].kill()  # the trial's training worker: Tune retries the trial, which resumes from its checkpoint

    deadline = time.monotonic() + 500
    while completed_in_study(results / "optuna.db") < 1:
        assert driver.poll() is None, "the search ended before it could be killed"
        assert time.monotonic() < deadline, "the retried trial did not finish in time"
        time.sleep(0.5)
    time.sleep(2)  # Tune saves its state right after a trial completes
    kill_session(driver.pid)  # the whole search, while the second trial trains: driver, its local Ray, workers
    driver.wait()
    assert completed_in_study(results / "optuna.db") == 1

    resumed = subprocess.run(
        [VSEARCH, "run", str(path), "--resume"], capture_output=True, text=True, timeout=600, env=os.environ.copy()
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    trials = pd.read_parquet(results / "trials.parquet").set_index("trial_id")
    assert len(trials) == 2 and trials.index.is_unique
    assert (trials.status == "completed").all()
    assert completed_in_study(results / "optuna.db") == 2  # the finished trial was not run again
    assert trials.loc[killed_trial, "resumed_at_epoch"] >= 1  # retried from its last checkpoint, not from scratch


def secrets_in(data: bytes, secrets: list[str]) -> list[str]:
    return [s for s in secrets if s.encode() in data]


def test_search_on_two_nodes_with_data_and_results_on_s3_scores_only_held_out_conditions_and_keeps_secrets(
    small_screen, s3_bucket, tmp_path, monkeypatch
):
    # sentinel credentials (moto takes any): none may appear in what the search writes, logs or prints
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAVSEARCHSENTINEL7")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", f"vsearch-sentinel-{uuid.uuid4().hex}")
    ray_logs = tempfile.mkdtemp(prefix="vsray", dir="/tmp")  # short: Ray's socket paths have a length limit
    fs, _ = storage.filesystem(s3_bucket)
    fs.put(small_screen, f"{s3_bucket}/screen", recursive=True)
    results = f"{s3_bucket}/search"
    # a trial's worker takes 2 of a node's 3 CPUs (the third is for Ray Data), so two trials run on two nodes
    space = {"num_trials": 2, "trial": {"cpus_per_worker": 2}, "objective": {"eval_fields_per_condition": 2}}
    path = write_space(tmp_path / "s.yaml", f"{s3_bucket}/screen", str(tmp_path / "overridden"), **space)
    with loopback_cluster(nodes=2, cpus_per_node=3, temp_dir=ray_logs) as cluster:
        run = subprocess.run(
            [VSEARCH, "run", str(path), "--address", cluster.address, "--results", results],
            capture_output=True, text=True, env=cluster.env, timeout=600,
        )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    secrets = [os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"], cluster.env["RAY_AUTH_TOKEN"]]
    assert not (tmp_path / "overridden").exists()  # --results replaced the space's results folder
    trials = read_trials(results)
    assert len(trials) == 2 and set(trials.status) == {"completed"}
    assert set(trials.node_id) == set(cluster.node_ids)  # trials trained on both nodes
    for column in ("trial_id", "config", "composition", "composite", "pixel", "instance", "feature",
                   "train_seconds", "cpu_seconds", "gpu_seconds"):  # fmt: skip
        assert column in trials, column
    held_out = {"breast/toxic", "lung/toxic", "ovarian/toxic"}
    score_columns = [c for c in trials if c.startswith("score/")]
    assert score_columns
    for column in score_columns:  # score/<cell_type>/<phenotype>/<stain>/<level>
        _, cell_type, phenotype, *_ = column.split("/")
        assert f"{cell_type}/{phenotype}" in held_out
    for row in trials.itertuples():
        composition = json.loads(row.composition)
        assert composition and not set(composition) & held_out
        assert abs(sum(composition.values()) - 1) < 1e-9
        assert 0 <= row.composite <= 1
    weight_columns = [c for c in trials if c.startswith("w/")]
    assert sorted(weight_columns) == ["w/breast/non_toxic", "w/lung/non_toxic", "w/ovarian/non_toxic"]

    fs.get(f"{results}/optuna.db", str(tmp_path / "optuna.db"))
    study = optuna.load_study(study_name="vsearch", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    assert len([t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]) == 2
    assert sorted(t.value for t in study.trials) == pytest.approx(sorted(trials.composite))

    scored = read_held_out_fields(results)
    manifest = open_dataset(small_screen).manifest.set_index("field_id")
    assert sorted(scored) == sorted(held_out) and all(len(ids) == 2 for ids in scored.values())
    for condition, ids in scored.items():
        assert set(manifest.loc[ids].cell_type + "/" + manifest.loc[ids].phenotype) == {condition}
    for trial_id in trials.trial_id:  # each scored trial saved one example of each held-out condition
        examples = read_examples(results, trial_id)
        assert [e.condition for e in examples] == sorted(held_out)  # never a trained one
        assert sorted(e.field_id for e in examples) == sorted(ids[0] for ids in scored.values())  # scored ones
    for example in examples:
        assert example.bright_field.shape == example.real["nuclei"].shape == example.predicted["nuclei"].shape
        assert example.bright_field.shape == (96, 96)  # the whole small field
        images = [*example.real.values(), *example.predicted.values(), example.error("nuclei")]
        assert all(image.min() >= 0 and image.max() <= 1 for image in images)

    # the report reads the results from S3: 3 levels' matrices, the Pareto front, the composition response and
    # the best trial's example predictions
    assert write_report(results) == f"{results}/report.html"

    leaks = {"output": secrets_in((run.stdout + run.stderr).encode(), secrets)}
    for key in fs.find(results):  # trials.parquet, the report, checkpoints, Tune's state, the study
        leaks[key] = secrets_in(fs.cat_file(key), secrets)
    logs = [p for p in Path(ray_logs).rglob("*") if p.is_file() and "logs" in p.parts]
    assert len(logs) > 10  # the driver's, the nodes' and the workers' logs
    leaks |= {str(log): secrets_in(log.read_bytes(), secrets) for log in logs}
    denied = CliRunner().invoke(app, ["data", "describe", f"{s3_bucket}-missing/screen"])
    assert denied.exit_code == 2
    leaks["error message"] = secrets_in(denied.output.encode(), secrets)
    assert {where: found for where, found in leaks.items() if found} == {}
    shutil.rmtree(ray_logs, ignore_errors=True)
    page = fs.cat_file(f"{results.removeprefix('s3://')}/report.html").decode()
    assert len(re.findall(r'class="plotly-graph-div"', page)) == 6 and "No example predictions" not in page
    assert all(trial_id in page for trial_id in trials.trial_id)
