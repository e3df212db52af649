"""Training end to end: resume after SIGKILL, then predict and evaluate on S3; worker resources and reruns."""

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.processes import kill_session
from vsearch.config import DataConfig, TrainConfig, UNetConfig
from vsearch.data import storage
from vsearch.data.dataset import open_dataset
from vsearch.evaluate.field import EvaluationConfig
from vsearch.search.heldout import held_out_fields, score_model
from vsearch.search.space import SearchSpace
from vsearch.search.tuner import max_concurrent
from vsearch.train.checkpoint import load_model
from vsearch.train.steps import timed
from vsearch.train.trainer import scaling_config, train

pytestmark = pytest.mark.slow  # Ray jobs: `pytest -m "not slow"` leaves them out

VSEARCH = str(Path(sys.executable).parent / "vsearch")


def write_config(path: Path, dataset: str, storage: str, epochs: int, name: str = "run") -> Path:
    config = {
        "data": {
            "dataset": dataset,
            "composition": {"lung/non_toxic": 0.5, "ovarian/toxic": 0.5},
            "budget": 12,
            "patch": 48,
            "patches_per_field": 4,
            "batch_size": 8,
        },
        "model": {"depth": 2, "base_width": 8},
        "epochs": epochs,
        "name": name,
        "storage": storage,
    }
    path.write_text(yaml.safe_dump(config))
    return path


def run_cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    result = subprocess.run([VSEARCH, *args], capture_output=True, text=True, timeout=timeout, env=os.environ.copy())
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def committed_epoch(run_dir: Path) -> int | None:
    """The epoch of the latest checkpoint Ray Train has committed to the run's snapshot (what a rerun resumes
    from), or None. Checkpoint folders can be newer: a worker writes one before the controller registers it."""
    try:
        snapshot = json.loads((run_dir / "checkpoint_manager_snapshot.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):  # not written yet, or being written
        return None
    latest = snapshot["latest_checkpoint_result"]
    return latest["metrics"]["epoch"] if latest else None


def test_sigkilled_training_resumes_from_last_checkpoint_then_predicts_and_evaluates_on_s3(
    small_screen, s3_bucket, tmp_path
):
    config = write_config(tmp_path / "train.yaml", small_screen, str(tmp_path / "runs"), epochs=40)
    driver = subprocess.Popen(
        [VSEARCH, "train", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline, run_dir = time.monotonic() + 240, tmp_path / "runs" / "run"
    while (committed_epoch(run_dir) or 0) < 1:
        assert driver.poll() is None, "training ended before it could be killed"
        assert time.monotonic() < deadline, "no checkpoint was committed"
        time.sleep(0.2)
    kill_session(driver.pid)  # the driver, the local Ray it started and Ray's workers
    driver.wait()
    killed_at = committed_epoch(run_dir)
    assert killed_at is not None and 1 <= killed_at < 39

    write_config(config, small_screen, str(tmp_path / "runs"), epochs=killed_at + 3)
    resumed = run_cli("train", str(config))
    assert "val_r_nuclei" in resumed.stdout and "checkpoint:" in resumed.stdout
    match = re.search(r"epochs (\d+)–(\d+) of this run", resumed.stdout)
    assert match, resumed.stdout
    assert (int(match.group(1)), int(match.group(2))) == (killed_at + 1, killed_at + 2)

    # the resumed model predicts a screen on S3 into S3, and the prediction is scored there at every level
    fs, bucket = storage.filesystem(s3_bucket)
    fs.put(small_screen, f"{bucket}/screen", recursive=True)
    dataset, pred = f"{s3_bucket}/screen", f"{s3_bucket}/pred"
    run_cli("predict", str(run_dir), "--data", dataset, "--out", pred)
    truth, predicted = open_dataset(small_screen), open_dataset(pred)
    assert list(predicted.manifest.field_id) == list(truth.manifest.field_id)
    field = predicted.read(truth.manifest.field_id[0])
    assert set(field.stains) == {"nuclei", "cytoplasm", "dna_damage"} and field.stains["nuclei"].shape == (96, 96)
    run_cli("evaluate", "--truth", dataset, "--pred", pred, "--out", f"{s3_bucket}/eval/e.parquet")
    for table in ("e", "e_wells", "e_features", "e_assay"):
        assert fs.exists(f"{bucket}/eval/{table}.parquet")
    with fs.open(f"{bucket}/eval/e_summary.parquet", "rb") as f:
        summary = pd.read_parquet(f)
    assert len(summary) == 18 and summary.pixel.between(0, 1).all()


def test_timed_records_how_long_each_item_kept_the_caller_waiting():
    def slow_second():
        yield None
        time.sleep(0.2)
        yield "b"

    waits: list[float] = []
    assert list(timed(slow_second(), waits)) == [None, "b"]
    assert len(waits) == 3 and waits[1] >= 0.2 and waits[0] < 0.2 and waits[2] < 0.2


def small_config(dataset: str, storage: str, name: str, **overrides) -> TrainConfig:
    data = DataConfig(
        dataset=dataset,
        composition={"lung/non_toxic": 0.5, "ovarian/toxic": 0.5},
        budget=12,
        patch=48,
        patches_per_field=4,
        batch_size=8,
    )
    overrides = {"model": UNetConfig(depth=2, base_width=8), "epochs": 2} | overrides
    return TrainConfig(data=data, name=name, storage=storage, **overrides)


def test_worker_holds_the_cpus_it_was_given_and_a_rerun_scores_the_same(small_screen, tmp_path, ray_local):
    from ray.util.state import list_placement_groups

    held: list[dict] = []
    stop = threading.Event()

    def watch_placement_groups() -> None:
        while not stop.is_set():
            held.extend(b["unit_resources"] for g in list_placement_groups(detail=True) if g.state == "CREATED"
                        for b in g.bundles)  # fmt: skip
            time.sleep(0.5)

    watcher = threading.Thread(target=watch_placement_groups)
    watcher.start()
    try:
        first = train(small_config(small_screen, str(tmp_path / "runs"), "first", cpus_per_worker=0.5))
    finally:
        stop.set()
        watcher.join()
    assert {"CPU": 0.5} in held and {"CPU": 1.0} not in held  # Ray Train's default would be one whole CPU
    rerun = train(small_config(small_screen, str(tmp_path / "runs"), "rerun", cpus_per_worker=0.5))
    for key in ("train_loss", "val_l1", "val_r_nuclei", "val_ssim_cytoplasm"):
        assert rerun.metrics[key] == pytest.approx(first.metrics[key], abs=1e-6), key
    dataset = open_dataset(small_screen)
    fields = held_out_fields(dataset.manifest, ["breast/toxic", "lung/toxic"], per_condition=2, seed=0)
    config = EvaluationConfig(stains=("nuclei", "cytoplasm", "dna_damage"))
    weights = {"pixel": 1.0, "instance": 1.0, "feature": 1.0}
    first_scores, rerun_scores = (
        score_model(*load_model(Path(run.checkpoint.path)), dataset, fields, config, weights).scores
        for run in (first, rerun)
    )
    assert first_scores.keys() == rerun_scores.keys()
    for key, value in first_scores.items():
        assert rerun_scores[key] == pytest.approx(value, abs=1e-6, nan_ok=True), key


def test_gpu_share_reaches_the_workers_placement_group_so_two_trials_share_a_gpu():
    half = small_config("unused", "unused", "half", use_gpu=True, gpus_per_worker=0.5, cpus_per_worker=2)
    bundles = scaling_config(half).as_placement_group_factory().bundles
    assert bundles == [{"CPU": 2.0, "GPU": 0.5}]
    space = {"dataset": "unused", "held_out": {"leave_out": "phenotype", "phenotype": "toxic"},
             "trial": {"workers": 1, "cpus_per_worker": 2, "gpus_per_worker": 0.5}}  # fmt: skip
    assert max_concurrent(SearchSpace.model_validate(space).trial, {"CPU": 16, "GPU": 1}) == 2
    with pytest.raises(ValueError, match="gpus_per_worker is set but use_gpu is false"):
        small_config("unused", "unused", "cpu", gpus_per_worker=0.5)
