"""Training end to end: resume after SIGKILL, and train → predict → evaluate from the CLI, locally and on S3."""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

from tests.processes import kill_session
from vsearch.data.dataset import open_dataset
from vsearch.train.loop import timed

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


def test_sigkilled_training_resumes_from_last_checkpoint(small_screen, tmp_path):
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
    result = run_cli("train", str(config))
    match = re.search(r"epochs (\d+)–(\d+) of this run", result.stdout)
    assert match, result.stdout
    assert (int(match.group(1)), int(match.group(2))) == (killed_at + 1, killed_at + 2)


def test_cli_train_predict_evaluate_locally(small_screen, tmp_path):
    config = write_config(tmp_path / "train.yaml", small_screen, str(tmp_path / "runs"), epochs=1)
    trained = run_cli("train", str(config))
    assert "val_r_nuclei" in trained.stdout and "checkpoint:" in trained.stdout
    run_cli("predict", str(tmp_path / "runs" / "run"), "--data", small_screen, "--out", str(tmp_path / "pred"))
    pred, truth = open_dataset(str(tmp_path / "pred")), open_dataset(small_screen)
    assert list(pred.manifest.field_id) == list(truth.manifest.field_id)
    field = pred.read(truth.manifest.field_id[0])
    assert set(field.stains) == {"nuclei", "cytoplasm", "dna_damage"} and field.stains["nuclei"].shape == (96, 96)
    run_cli("evaluate", "--truth", small_screen, "--pred", str(tmp_path / "pred"), "--out", str(tmp_path / "e.parquet"))
    summary = pd.read_parquet(tmp_path / "e_summary.parquet")
    assert len(summary) == 18 and summary.pixel.between(0, 1).all()


def test_cli_train_predict_evaluate_on_s3(s3_bucket, small_screen, tmp_path):
    dataset = f"{s3_bucket}/screen"
    from vsearch.data import storage

    fs, path = storage.filesystem(dataset)
    fs.put(small_screen, path, recursive=True)
    config = write_config(tmp_path / "train.yaml", dataset, f"{s3_bucket}/runs", epochs=1, name="s3run")
    run_cli("train", str(config))
    assert fs.glob(f"{s3_bucket.removeprefix('s3://')}/runs/s3run/checkpoint_*/model.pt")
    run_cli("predict", f"{s3_bucket}/runs/s3run", "--data", dataset, "--out", f"{s3_bucket}/pred")
    run_cli("evaluate", "--truth", dataset, "--pred", f"{s3_bucket}/pred", "--out", str(tmp_path / "e.parquet"))
    assert len(pd.read_parquet(tmp_path / "e_summary.parquet")) == 18
    assert len(open_dataset(f"{s3_bucket}/pred").manifest) == len(open_dataset(small_screen).manifest)


def test_timed_records_how_long_each_item_kept_the_caller_waiting():
    def slow_second():
        yield None
        time.sleep(0.2)
        yield "b"

    waits: list[float] = []
    assert list(timed(slow_second(), waits)) == [None, "b"]
    assert len(waits) == 3 and waits[1] >= 0.2 and waits[0] < 0.2 and waits[2] < 0.2
