"""Faults injected into a real `vsearch run`, and how long the search takes to recover from each.

On a small synthetic screen, a search of ``--trials`` trials (3 epochs each, one checkpoint per epoch,
``trial.max_failures: 1``) is started as a user would start it, then:
1. the first trial's Ray Train worker is killed once it has committed a checkpoint (a worker or node lost):
   recovery is the time until that trial commits its next checkpoint;
2. once a trial has completed and the next has committed a checkpoint, the whole search is killed: driver, its
   local Ray and every worker (a crashed or pre-empted head): recovery is the time from ``vsearch run --resume``
   to the resumed search's first new checkpoint.
Then the trials table is checked: trials lost (not completed) and trials run twice (completed in the Optuna study
more often than there are trials) must both be 0.

    .venv/bin/python benchmarks/fault_injection.py [--out benchmarks/out/fault_injection] [--trials 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import SMALL_SPEC
from tests.processes import kill_session
from tests.test_search import VSEARCH, completed_in_study, ray_train_workers, write_space
from vsearch.data.synth import synthesize


def checkpoints(results: Path) -> int:
    return sum(1 for _ in results.glob("runs/trial_*/checkpoint_*") if _.is_dir())


def committed(results: Path) -> int:
    """Trials with a committed checkpoint (Ray Train writes its checkpoint manager's snapshot on each commit)."""
    return sum(1 for _ in results.glob("runs/trial_*/checkpoint_manager_snapshot.json"))


def wait_for(condition, what: str, driver: subprocess.Popen, timeout_s: float = 600) -> float:
    """Seconds until ``condition()`` holds; fails naming ``what`` if the driver ends or time runs out first."""
    start = time.monotonic()
    while not condition():
        if driver.poll() is not None or time.monotonic() - start > timeout_s:
            raise RuntimeError(f"gave up waiting for {what}")
        time.sleep(0.1)
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="benchmarks/out/fault_injection")
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    out = Path(args.out).resolve()
    shutil.rmtree(out, ignore_errors=True)
    screen, results = out / "screen", out / "results"
    synthesize(SMALL_SPEC, str(screen))
    space = write_space(
        out / "space.yaml", str(screen), str(results), num_trials=args.trials, patches_per_field=60,
        trial={"max_failures": 1}, optim={"lr": 0.002, "batch_size": [8], "epochs": 3},
    )  # fmt: skip
    started = time.monotonic()
    driver = subprocess.Popen(
        [VSEARCH, "run", str(space)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    wait_for(lambda: committed(results) >= 1, "a first committed checkpoint", driver)
    [worker] = ray_train_workers(driver)
    before = checkpoints(results)
    worker.kill()
    worker_recovery_s = wait_for(lambda: checkpoints(results) > before, "the retried trial's next checkpoint", driver)

    wait_for(lambda: completed_in_study(results / "optuna.db") >= 1, "a completed trial", driver)
    wait_for(lambda: committed(results) >= 2, "the next trial's first committed checkpoint", driver)
    time.sleep(2)  # Tune saves its state right after a trial completes
    kill_session(driver.pid)
    driver.wait()
    completed_before_kill = completed_in_study(results / "optuna.db")

    before = checkpoints(results)
    resumed = subprocess.Popen(
        [VSEARCH, "run", str(space), "--resume"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    resume_recovery_s = wait_for(lambda: checkpoints(results) > before, "the resumed search's checkpoint", resumed)
    rc = resumed.wait(timeout=900)
    trials = pd.read_parquet(results / "trials.parquet")
    report = {
        "faults": ["Ray Train worker killed after its first checkpoint", "whole search killed after a trial completed"],
        "trials": args.trials,
        "resume_exit_code": rc,
        "trials_lost": int(args.trials - (trials.status == "completed").sum()),
        "trials_run_twice": int(completed_in_study(results / "optuna.db") - args.trials),
        "completed_before_kill": completed_before_kill,
        "resumed_at_epoch": trials.set_index("trial_id").resumed_at_epoch.dropna().astype(int).to_dict(),
        "worker_kill_to_next_checkpoint_s": round(worker_recovery_s, 1),
        "resume_to_first_new_checkpoint_s": round(resume_recovery_s, 1),
        "wall_s": round(time.monotonic() - started, 1),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
