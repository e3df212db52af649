"""Cost per answer: a real `vsearch run` of the demo space on a synthetic screen of 256 x 256 fields (``--trials``
trials, at least 8 on a GPU), with the GPUs' utilisation sampled by ``nvidia-smi`` twice a second. Prints JSON:
the search's wall time and GPU-hours (wall x the machine's GPUs, what a rented machine costs), the GPU-hours the
trials held (their ``gpu_seconds``), the mean GPU utilisation over the search, and the share of the trials' wall
time spent outside training passes (Ray Train starting, validation, checkpoints, held-out scoring).

    python3 benchmarks/search_cost.py [--trials 8] [--gpus-per-trial 0.5]   # on a GPU machine
    .venv/bin/python benchmarks/search_cost.py --trials 2 --size 128 --patch 64 --epochs 2   # on the CPU
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vsearch.data.synth import SynthSpec, synthesize
from vsearch.search.results import read_trials

ROOT = Path(__file__).resolve().parents[1]
VSEARCH = [sys.executable, "-m", "vsearch.cli"]  # also where vsearch is on PYTHONPATH only (a GPU box's wheels)


class GpuSampler:
    """``nvidia-smi``'s utilisation of every GPU, sampled every ``interval_ms`` in a thread; no samples without it."""

    def __init__(self, interval_ms: int = 500) -> None:
        self.samples: list[float] = []
        self.process = None
        if shutil.which("nvidia-smi"):
            self.process = subprocess.Popen(
                ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", f"-lms={interval_ms}"],
                stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            if line.strip().isdigit():
                self.samples.append(float(line))

    def stop(self) -> float | None:
        """Stops sampling; the mean utilisation (0-1) over the samples, or None without a GPU."""
        if self.process:
            self.process.terminate()
            self.process.wait()
        return sum(self.samples) / len(self.samples) / 100 if self.samples else None


def gpus_here() -> int:
    if not shutil.which("nvidia-smi"):
        return 0
    listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=True).stdout
    return sum(1 for line in listed.splitlines() if line.startswith("GPU "))


def epoch_seconds(results: Path) -> dict[str, float]:
    """Seconds each trial spent in its training passes: the sum of its epochs' ``epoch_seconds`` (Tune's
    ``result.json`` per trial, keyed by trial id)."""
    spent: dict[str, float] = {}
    for log in (results / "search").glob("*/result.json"):
        for line in log.read_text().splitlines():
            report = json.loads(line)
            if "epoch_seconds" in report:
                spent[report["trial_id"]] = spent.get(report["trial_id"], 0.0) + report["epoch_seconds"]
    return spent


def write_space(args: argparse.Namespace, screen: str, results: str, gpus: int) -> Path:
    space = yaml.safe_load((ROOT / "search_spaces" / "demo.yaml").read_text())
    space |= {"dataset": screen, "results": results, "num_trials": args.trials, "patch": args.patch}
    space["optim"]["epochs"] = args.epochs
    if gpus:
        space["trial"] = {"workers": 1, "cpus_per_worker": 1, "gpus_per_worker": args.gpus_per_trial}
    path = Path(results).parent / "space.yaml"
    path.write_text(yaml.safe_dump(space))
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--size", type=int, default=256, help="synthetic field size")
    parser.add_argument("--patch", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--gpus-per-trial", type=float, default=1.0)
    args = parser.parse_args()
    gpus = gpus_here()
    with tempfile.TemporaryDirectory() as tmp:
        screen, results = f"{tmp}/screen", Path(tmp, "out", "results")
        results.parent.mkdir()
        synthesize(SynthSpec(size=args.size), screen)
        space = write_space(args, screen, str(results), gpus)
        sampler = GpuSampler()
        started = time.perf_counter()
        run = subprocess.run([*VSEARCH, "run", str(space)], capture_output=True, text=True)
        wall = time.perf_counter() - started
        utilisation = sampler.stop()
        if run.returncode != 0:
            raise SystemExit(f"vsearch run failed ({run.returncode}):\n{run.stdout[-3000:]}{run.stderr[-3000:]}")
        trials = read_trials(str(results))
        training = epoch_seconds(results)
    trial_seconds = float(trials.train_seconds.sum())
    print(json.dumps({
        "trials": len(trials), "completed": int((trials.status == "completed").sum()), "gpus": gpus,
        "gpus_per_trial": args.gpus_per_trial if gpus else 0, "field_size": args.size, "patch": args.patch,
        "epochs": args.epochs, "search_wall_s": round(wall, 1), "machine_gpu_hours": round(wall * gpus / 3600, 4),
        "trial_gpu_hours": round(float(trials.gpu_seconds.sum()) / 3600, 4),
        "mean_gpu_utilisation": None if utilisation is None else round(utilisation, 3),
        "trial_seconds": round(trial_seconds, 1), "training_pass_seconds": round(sum(training.values()), 1),
        "share_outside_training": round(1 - sum(training.values()) / trial_seconds, 3),
        "best_composite": round(float(trials.composite.max()), 4),
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
