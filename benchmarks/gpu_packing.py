"""Trials packed onto one GPU: total patches/s of 1, 2 and 4 small-model trials sharing a GPU (``gpus_per_worker``
1, 0.5, 0.25), each a Ray Tune trial that fits its own Ray Train ``TorchTrainer`` on the Ray Data stream, as a
search's trials do. A trial's rate is its last epoch's (the trials overlap there); the total is their sum, and the
speed-up is the total over the single trial's rate (goal: 2 packed trials >= 1.6x). Prints JSON.

    python3 benchmarks/gpu_packing.py [--trials 1,2,4] [--width 32] [--epochs 3]   # on a GPU machine
    .venv/bin/python benchmarks/gpu_packing.py --trials 1 --size 96 --budget 32    # its code path, on the CPU

On the CPU the trials share the cores instead (each worker gets what the cluster has beyond the trials' Ray Data
CPUs), which checks the code path, not the GPU's figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

import ray.tune
import torch
from ray.tune.integration.ray_train import TuneReportCallback

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vsearch.cluster import cluster_capacity, connect
from vsearch.config import DataConfig, TrainConfig, UNetConfig
from vsearch.data.synth import SynthSpec, synthesize
from vsearch.search.tuner import trial_driver
from vsearch.train.resources import DATA_CPUS, fitting_runs, run_needs
from vsearch.train.trainer import build_trainer, plan_training


def packed_config(args: argparse.Namespace, screen: str, storage: str, trials: int, use_gpu: bool) -> TrainConfig:
    cpus = 1.0 if use_gpu else (cluster_capacity().get("CPU", 1.0) - trials * DATA_CPUS) / trials
    return TrainConfig(
        data=DataConfig(
            dataset=screen,
            composition={"lung/non_toxic": 0.5, "ovarian/toxic": 0.25, "breast/toxic": 0.25},
            budget=args.budget,
            patch=args.patch,
            patches_per_field=args.patches_per_field,
            batch_size=args.batch,
            val_fraction=0.1,
            test_fraction=0.1,
        ),
        model=UNetConfig(depth=3, base_width=args.width),
        epochs=args.epochs,
        use_gpu=use_gpu,
        gpus_per_worker=1 / trials if use_gpu else None,
        cpus_per_worker=cpus,
        bf16=True,
        name="packed",
        storage=storage,
    )


def packed_trial(config: dict, *, train_config: TrainConfig) -> None:
    """One Tune trial: its own TorchTrainer, the epochs' metrics reported to Tune."""
    run = train_config.model_copy(update={"name": f"packed-{config['index']}"})
    result = build_trainer(run, plan_training(run), callbacks=[TuneReportCallback()]).fit()
    if result.error:
        raise result.error


def run_packed(config: TrainConfig, trials: int, storage: str) -> ray.tune.ResultGrid:
    """``trials`` Tune trials of ``config`` at once."""
    return ray.tune.Tuner(
        trial_driver(packed_trial, train_config=config),
        param_space={"index": ray.tune.grid_search(list(range(trials)))},
        tune_config=ray.tune.TuneConfig(max_concurrent_trials=trials),
        run_config=ray.tune.RunConfig(name=f"packing-{trials}", storage_path=storage, verbose=0),
    ).fit()


def packed_rate(args: argparse.Namespace, screen: str, storage: str, trials: int, use_gpu: bool) -> dict:
    config = packed_config(args, screen, f"{storage}/{trials}", trials, use_gpu)
    needs = run_needs(1, config.cpus_per_worker, config.resources_per_worker().get("GPU", 0.0))
    fit = fitting_runs(needs, cluster_capacity())
    if fit < trials:
        raise SystemExit(f"--trials {trials}: {fit} such trial(s) fit this machine at once")
    started = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # Tune's own tables: stdout is for the JSON
        grid = run_packed(config, trials, storage)
    wall = time.perf_counter() - started
    errors = [str(r.error) for r in grid if r.error]
    if errors:
        raise RuntimeError(f"{len(errors)} packed trial(s) failed: {errors[0]}")
    rates = [float(r.metrics["patches_per_s"]) for r in grid]
    return {"per_trial_patches_per_s": [round(r, 1) for r in rates], "total_patches_per_s": round(sum(rates), 1),
            "wall_s": round(wall, 1)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", default="1,2,4", help="comma-separated numbers of trials packed on one GPU")
    parser.add_argument("--size", type=int, default=256, help="synthetic field size")
    parser.add_argument("--patch", type=int, default=128)
    parser.add_argument("--patches-per-field", type=int, default=16)
    parser.add_argument("--budget", type=int, default=512, help="fields a trial trains on per epoch")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--width", type=int, default=32, help="U-Net base width (depth 3)")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    use_gpu = torch.cuda.is_available()
    connect()
    counts = [int(n) for n in args.trials.split(",")]
    results: dict[str, object] = {
        "device": torch.cuda.get_device_name() if use_gpu else "cpu",
        **{k: v for k, v in vars(args).items() if k != "trials"},
    }
    with tempfile.TemporaryDirectory() as tmp:
        screen = f"{tmp}/screen"
        synthesize(SynthSpec(size=args.size), screen)
        packed = {}
        for trials in counts:
            packed[trials] = packed_rate(args, screen, f"{tmp}/runs", trials, use_gpu)
            print(json.dumps({"trials": trials, **packed[trials]}), flush=True)
    results["packed"] = packed
    if 1 in packed:
        single = packed[1]["total_patches_per_s"]
        results["speed_up"] = {n: round(p["total_patches_per_s"] / single, 2) for n, p in packed.items()}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
