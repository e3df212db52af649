"""The per-worker training loop run by Ray Train: one epoch over the composition stream, validation on whole
fields, a checkpoint and a report each epoch, resumption from the latest checkpoint."""

from __future__ import annotations

import tempfile
from contextlib import nullcontext
from pathlib import Path

import ray.train
import ray.train.torch
import torch

from vsearch.config import TrainConfig
from vsearch.train.steps import build_learner, load_learner_state, save_learner, train_epoch, validate


def train_loop_per_worker(loop_config: dict) -> None:
    """Ray Train's worker function: builds (or resumes) the learner, then trains, validates, checkpoints and
    reports each epoch."""
    config = TrainConfig.model_validate(loop_config["config"])
    stains, bf_planes = loop_config["stains"], loop_config["bf_planes"]
    device = ray.train.torch.get_device()
    rank = ray.train.get_context().get_world_rank()
    torch.manual_seed(config.seed + rank)
    on_gpu = device.type == "cuda"
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if on_gpu and config.bf16 else nullcontext()
    memory_format = torch.channels_last if on_gpu else torch.contiguous_format

    learner = build_learner(config, bf_planes, len(stains), memory_format)
    start_epoch = 0
    resumed = ray.train.get_checkpoint()
    if resumed:
        with resumed.as_directory() as folder:
            start_epoch = load_learner_state(learner, Path(folder)) + 1
    learner.model = ray.train.torch.prepare_model(learner.model)
    if learner.discriminator is not None:
        learner.discriminator = ray.train.torch.prepare_model(learner.discriminator)
    learner.step_model = torch.compile(learner.model) if config.compile else learner.model

    train_shard = ray.train.get_dataset_shard("train")
    val_shard = ray.train.get_dataset_shard("val")
    for epoch in range(start_epoch, config.epochs):
        # patches arrive interleaved across fields (see FieldsToPatches), so no local shuffle copies them here
        batches = train_shard.iter_torch_batches(
            batch_size=config.data.batch_size, device=device, prefetch_batches=8, pin_memory=on_gpu
        )
        metrics = {
            "epoch": epoch,
            "start_epoch": start_epoch,
            **train_epoch(learner, batches, config, device, autocast, memory_format),
            "node_id": ray.get_runtime_context().get_node_id(),
            **validate(learner.model, val_shard, stains, device, autocast),
        }
        meta = {
            "epoch": epoch,
            "config": config.model_dump(),
            "stains": stains,
            "bf_planes": bf_planes,
            "target_ranges": loop_config["target_ranges"],
            "metrics": metrics,
        }
        with tempfile.TemporaryDirectory() as tmp:
            report_checkpoint = None
            if rank == 0:
                save_learner(learner, Path(tmp), meta)
                report_checkpoint = ray.train.Checkpoint.from_directory(tmp)
            ray.train.report(metrics, checkpoint=report_checkpoint)
