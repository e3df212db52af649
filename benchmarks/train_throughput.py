"""Training throughput: patches/s through Ray Data → Ray Train (fields decoded from Parquet shards, normalised,
cropped and augmented in Ray Data, fed to a TorchTrainer worker) against the same model, batch and optimiser fed
from tensors already in memory (on the training device) in a plain PyTorch loop. Prints JSON.

    .venv/bin/python benchmarks/train_throughput.py --preset cpu
    python3 benchmarks/train_throughput.py --preset gpu [--compile both]      # on a GPU machine
    .venv/bin/python benchmarks/train_throughput.py --preset gpu --stream-only  # its data path, on any machine
    .venv/bin/python benchmarks/train_throughput.py --workers 1,2  # data-parallel scaling (GPUs on a GPU machine)

``--table vsearch/cost/throughput.csv`` records the GPU's Ray Data → Ray Train rates in the throughput table that
``vsearch run --dry-run`` costs searches with (replacing the rows of the same GPU and configuration).

On the CPU the Ray worker gets one CPU (Ray Data the rest), so the plain loop runs on one thread too.
It also prints the stream's efficiency: the stream-only rate (the best of five warm epochs of one stream) over
what the cluster's CPUs would do running the same work (read, decode, crop, augment) one CPU each without Ray,
measured in this process pinned to one core; 1 means Ray Data costs nothing, and on 2 cores the goal is >= 0.8.
``--workers`` trains the eager model again with each number of Ray Train workers (on the CPU they share what
the cluster has beyond Ray Data's CPU; on a GPU machine each takes a GPU) and reports patches/s and the scaling
efficiency, rate(n) / (n x rate(1)). Each rate also comes as model TFLOP/s (``vsearch.cost.flops``) and, on a GPU,
as model FLOP utilisation (MFU: over the card's bf16 dense peak, ``vsearch.cost.peaks``).
``--stream-only`` measures the stream alone (its efficiency, delivered to the GPU if there is one, else the CPU)
and trains nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from contextlib import nullcontext
from datetime import date
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vsearch.cluster import cluster_capacity, connect
from vsearch.config import DataConfig, TrainConfig, UNetConfig
from vsearch.cost.flops import training_step_flops
from vsearch.cost.peaks import BF16_DENSE_TFLOPS, model_flops_utilisation
from vsearch.cost.throughput import Measurement, gpu_model, record
from vsearch.data.pipeline import FIELDS_PER_TASK, patch_tasks
from vsearch.data.synth import SynthSpec, synthesize
from vsearch.models.registry import build_model
from vsearch.train.resources import DATA_CPUS
from vsearch.train.steps import normalised_patches, reconstruction_loss
from vsearch.train.trainer import plan_training, train, training_patches

# fmt: off
PRESETS = {
    # field size, patch, patches per field, budget (fields per epoch), batch, U-Net depth and width, epochs
    "cpu": {"size": 128, "patch": 64, "per_field": 8, "budget": 256, "batch": 16, "depth": 3, "width": 16, "epochs": 3},
    "gpu": {"size": 512, "patch": 256, "per_field": 4, "budget": 4096, "batch": 32, "depth": 4, "width": 64, "epochs": 2},  # noqa: E501
}
# The GPU epoch is 16,384 patches (about 15 s on an H200), so the comparison is of steady states rather than of
# the second or so each epoch's stream takes to start; real epochs are longer still.
# fmt: on


def training_config(
    preset: dict, screen: str, storage: str, compiled: bool, use_gpu: bool, workers: int = 1, cpus_per_worker: float = 1
) -> TrainConfig:
    return TrainConfig(
        data=DataConfig(
            dataset=screen,
            composition={"lung/non_toxic": 0.5, "ovarian/toxic": 0.25, "breast/toxic": 0.25},
            budget=preset["budget"],
            patch=preset["patch"],
            patches_per_field=preset["per_field"],
            batch_size=preset["batch"],
            val_fraction=0.1,
            test_fraction=0.1,
        ),
        model=UNetConfig(depth=preset["depth"], base_width=preset["width"]),
        epochs=preset["epochs"],
        use_gpu=use_gpu,
        bf16=True,
        compile=compiled,
        workers=workers,
        cpus_per_worker=cpus_per_worker,
        name=f"throughput-{'compiled' if compiled else 'eager'}-{workers}",
        storage=storage,
    )


def in_memory_batches(config: TrainConfig, device: torch.device, n_batches: int) -> list[tuple[torch.Tensor, ...]]:
    """Real training patches, materialised once on the device."""
    batches = []
    batches_of_patches = training_patches(config, plan_training(config)).iter_torch_batches(
        batch_size=config.data.batch_size, device=device, drop_last=True
    )
    for batch in batches_of_patches:
        batches.append(normalised_patches(batch))
        if len(batches) == n_batches:
            break
    return batches


def stream_rate(config: TrainConfig, device: torch.device, stream=None) -> float:
    """Patches/s of one epoch of the Ray Data stream alone (``stream``, or a new one), delivered to ``device`` in
    the driver (no training); Ray Data's per-operator statistics (task time, backpressure, time the consumer was
    blocked) go to stderr."""
    stream = stream or training_patches(config, plan_training(config))
    started, patches = time.perf_counter(), 0
    for batch in stream.iter_torch_batches(batch_size=config.data.batch_size, device=device, prefetch_batches=8):
        patches += len(batch["x"])
    rate = patches / (time.perf_counter() - started)
    print(stream.stats(), file=sys.stderr, flush=True)
    return rate


def single_cpu_patch_rate(config: TrainConfig) -> float:
    """Patches/s of the stream's own work (read, decode, crop and augment the same blocks of fields) done here,
    block after block on one CPU, without Ray Data."""
    d, plan = config.data, plan_training(config)
    rows, patcher = patch_tasks(
        plan.dataset, plan.sample, d.stains, d.patch, d.patches_per_field, plan.ranges, seed=config.seed
    )
    blocks = list(rows.iter_batches(batch_size=FIELDS_PER_TASK, batch_format="numpy"))
    cores = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cores)})  # one core, whatever threads Parquet decoding starts
    try:
        started = time.perf_counter()
        patches = sum(len(chunk["x"]) for block in blocks for chunk in patcher(block))
        return patches / (time.perf_counter() - started)
    finally:
        os.sched_setaffinity(0, cores)


def stream_efficiency(config: TrainConfig, device: torch.device) -> dict:
    """The warm stream-only rate over data CPUs x the single-CPU rate of the same work, each the best of a few
    passes (an epoch here is about a second, so one pass is at the mercy of whatever else the machine does). The
    stream is made once and read epoch after epoch, as training reads it: its first epoch also starts Ray's
    workers and the stream's epoch counter."""
    single = max(single_cpu_patch_rate(config) for _ in range(3))
    patches = training_patches(config, plan_training(config))
    stream = max([stream_rate(config, device, patches) for _ in range(6)][1:])
    cpus = cluster_capacity().get("CPU", 1.0)
    return {
        "stream_only_patches_per_s": round(stream, 1),
        "single_cpu_patches_per_s": round(single, 1),
        "data_cpus": cpus,
        "efficiency": round(stream / (cpus * single), 3),
    }


def plain_loop(config: TrainConfig, batches: list, device: torch.device, steps: int) -> float:
    on_gpu = device.type == "cuda"
    memory_format = torch.channels_last if on_gpu else torch.contiguous_format
    x0, y0 = batches[0]
    model = build_model(config.model, x0.shape[1], y0.shape[1]).to(device, memory_format=memory_format)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.optim.lr, weight_decay=config.optim.weight_decay)
    step_model = torch.compile(model) if config.compile else model
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if on_gpu and config.bf16 else nullcontext()

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        x, y = x.contiguous(memory_format=memory_format), y.contiguous(memory_format=memory_format)
        with autocast:
            loss = reconstruction_loss(config.optim.loss, step_model(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for x, y in batches[:5]:  # warm-up (and compilation)
        step(x, y)
    if on_gpu:
        torch.cuda.synchronize()
    start = time.perf_counter()
    for i in range(steps):
        step(*batches[i % len(batches)])
    if on_gpu:
        torch.cuda.synchronize()
    return steps * config.data.batch_size / (time.perf_counter() - start)


def utilisation(step_flops: float, rates: dict[str, float], use_gpu: bool) -> dict:
    """Model TFLOP/s of each rate (patches/s x the training step's counted FLOPs) and, on a GPU with a known
    peak, the model FLOP utilisation."""
    gpu = gpu_model(torch.cuda.get_device_name()) if use_gpu else None
    figures = {f"{name}_model_tflop_per_s": round(rate * step_flops / 1e12, 3) for name, rate in rates.items()}
    if gpu in BF16_DENSE_TFLOPS:
        figures |= {
            f"{name}_mfu": round(model_flops_utilisation(rate * step_flops, gpu), 3) for name, rate in rates.items()
        }
    return figures


def measured(preset: dict, compiled: bool, patches_per_s: float) -> Measurement:
    return Measurement(
        gpu=gpu_model(torch.cuda.get_device_name()), family="unet", depth=preset["depth"],
        base_width=preset["width"], generator_blocks=None, patch=preset["patch"], batch=preset["batch"],
        compiled=compiled, patches_per_s=round(patches_per_s, 1), measured=date.today().isoformat(),
        source="benchmarks/train_throughput.py: Ray Data -> Ray Train, 1 GPU, bf16",
    )  # fmt: skip


def scaling(preset: dict, screen: str, storage: str, use_gpu: bool, worker_counts: list[int]) -> dict:
    """Patches/s of the eager model trained through Ray with each number of workers, and the scaling efficiency."""
    cpus = cluster_capacity().get("CPU", 1.0)
    rates, waits = {}, {}
    for workers in worker_counts:
        cpus_per_worker = 1.0 if use_gpu else min(1.0, (cpus - DATA_CPUS) / workers)
        config = training_config(preset, screen, storage, False, use_gpu, workers, cpus_per_worker)
        config = config.model_copy(update={"name": f"scaling-{workers}"})  # not the eager run, already trained
        result = train(config)
        rates[workers] = round(result.metrics["patches_per_s"], 1)
        waits[workers] = round(result.metrics["data_wait_fraction"], 3)
        print(json.dumps({"workers": workers, "cpus_per_worker": cpus_per_worker, "patches_per_s": rates[workers]}))
    first = worker_counts[0]
    return {
        "patches_per_s": rates,
        "rank0_data_wait_fraction": waits,
        "scaling_efficiency": {n: round(rates[n] * first / (n * rates[first]), 3) for n in worker_counts},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    parser.add_argument("--compile", choices=["no", "yes", "both"], default="no")
    parser.add_argument("--plain-steps", type=int, default=60)
    parser.add_argument("--stream-only", action="store_true")
    parser.add_argument("--table", type=Path, help="throughput table to record the GPU's Ray Train rates in")
    parser.add_argument("--workers", help="comma-separated worker counts to measure scaling with, e.g. 1,2")
    args = parser.parse_args()
    preset = PRESETS[args.preset]
    use_gpu = torch.cuda.is_available() if args.stream_only else args.preset == "gpu"
    device = torch.device("cuda" if use_gpu else "cpu")
    if not use_gpu:
        torch.set_num_threads(1)  # the Ray Train worker holds one CPU
    connect()
    results: dict[str, object] = {
        "preset": args.preset,
        **preset,
        "device": torch.cuda.get_device_name() if use_gpu else "cpu",
        "torch": torch.__version__,
    }
    with tempfile.TemporaryDirectory() as tmp:
        screen = f"{tmp}/screen"
        started = time.perf_counter()
        synthesize(SynthSpec(size=preset["size"]), screen)
        results["synth_seconds"] = round(time.perf_counter() - started, 1)
        config = training_config(preset, screen, f"{tmp}/runs", False, use_gpu)
        results["stream_efficiency"] = stream_efficiency(config, device)
        print(json.dumps({"stream_efficiency": results["stream_efficiency"]}), flush=True)
        variants = {"no": [False], "yes": [True], "both": [False, True]}[args.compile]
        for compiled in [] if args.stream_only else variants:
            name = "compiled" if compiled else "eager"
            config = training_config(preset, screen, f"{tmp}/runs", compiled, use_gpu)
            batches = in_memory_batches(config, device, n_batches=16)
            plain = plain_loop(config, batches, device, args.plain_steps)
            step_flops = training_step_flops(config, batches[0][0].shape[1], batches[0][1].shape[1])
            del batches
            started = time.perf_counter()
            result = train(config)
            through_ray = result.metrics["patches_per_s"]  # the last epoch, after warm-up and compilation
            stream = stream_rate(config, device)
            print(json.dumps({name: {"stream_only": round(stream, 1), "plain_loop": round(plain, 1)}}), flush=True)
            results[name] = {
                "ray_data_stream_only_patches_per_s": round(stream, 1),
                "plain_loop_patches_per_s": round(plain, 1),
                "ray_data_ray_train_patches_per_s": round(through_ray, 1),
                "ratio": round(through_ray / plain, 3),
                "ray_train_data_wait_fraction": round(result.metrics["data_wait_fraction"], 3),
                "ray_run_seconds": round(time.perf_counter() - started, 1),
                **utilisation(step_flops, {"plain_loop": plain, "ray_train": through_ray}, use_gpu),
            }
            print(json.dumps({name: results[name]}), flush=True)
            if args.table and use_gpu:
                record(measured(preset, compiled, through_ray), args.table)
        if args.workers:
            counts = [int(n) for n in args.workers.split(",")]
            results["scaling"] = scaling(preset, screen, f"{tmp}/runs", use_gpu, counts)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
