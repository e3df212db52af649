"""The per-worker training loop run by Ray Train: one epoch over the composition stream, validation on whole
fields, a checkpoint and a report each epoch, resumption from the latest checkpoint."""

from __future__ import annotations

import tempfile
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import ray.train
import ray.train.torch
import torch

from vsearch.config import TrainConfig
from vsearch.train.checkpoint import unwrap
from vsearch.train.steps import Learner, build_learner, load_learner_state, save_learner, train_epoch, validate
from vsearch.train.watchdog import Heartbeat


def prepared_learner(
    config: TrainConfig, bf_planes: int, stains: int, memory_format: torch.memory_format
) -> tuple[Learner, int]:
    """The learner on this worker, resumed from Ray Train's latest checkpoint when there is one, wrapped for
    data parallelism (and compiled if asked); returns it with the first epoch still to train. With several GPU
    workers, batch norm takes its statistics over all their batches (``SyncBatchNorm``, which needs CUDA; CPU
    workers normalise by their own share of the batch)."""
    learner = build_learner(config, bf_planes, stains, memory_format)
    if ray.train.get_context().get_world_size() > 1 and ray.train.torch.get_device().type == "cuda":
        learner.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(learner.model)
    start_epoch = 0
    resumed = ray.train.get_checkpoint()
    if resumed:
        with resumed.as_directory() as folder:
            start_epoch = load_learner_state(learner, Path(folder)) + 1
    learner.model = ray.train.torch.prepare_model(learner.model)
    if learner.discriminator is not None:
        learner.discriminator = ray.train.torch.prepare_model(learner.discriminator)
    learner.step_model = torch.compile(learner.model) if config.compile else learner.model
    return learner, start_epoch


def report_epoch(learner: Learner, metrics: dict, meta: dict, rank: int) -> None:
    """Reports the epoch's metrics to Ray Train, with rank 0's checkpoint of the learner."""
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = None
        if rank == 0:
            save_learner(learner, Path(tmp), meta | {"metrics": metrics})
            checkpoint = ray.train.Checkpoint.from_directory(tmp)
        ray.train.report(metrics, checkpoint=checkpoint)


def train_loop_per_worker(loop_config: dict) -> None:
    """Ray Train's worker function: builds (or resumes) the learner, then trains, validates, checkpoints and
    reports each epoch. With several workers each trains on its own share of the patches and DDP averages their
    gradients; rank 0 alone validates (on every validation field), checkpoints and scores, and its report is the
    one Ray Tune sees. ``loop_config["after_training"]``, when set, is called by rank 0 after the last epoch as
    ``after_training(model, meta, device)``; the metrics it returns join that epoch's report (and checkpoint).
    ``loop_config["progress"]``, when set, is the ``ProgressBoard`` the trial's watchdog reads."""
    config = TrainConfig.model_validate(loop_config["config"])
    stains, bf_planes = loop_config["stains"], loop_config["bf_planes"]
    after_training = loop_config.get("after_training")
    device = ray.train.torch.get_device()
    context = ray.train.get_context()
    rank, world_size = context.get_world_rank(), context.get_world_size()
    torch.manual_seed(config.seed + rank)
    on_gpu = device.type == "cuda"
    autocast: AbstractContextManager = (
        torch.autocast("cuda", dtype=torch.bfloat16) if on_gpu and config.bf16 else nullcontext()
    )
    memory_format = torch.channels_last if on_gpu else torch.contiguous_format
    learner, start_epoch = prepared_learner(config, bf_planes, len(stains), memory_format)
    meta = {
        "config": config.model_dump(),
        "stains": stains,
        "bf_planes": bf_planes,
        "target_ranges": loop_config["target_ranges"],
    }
    train_shard = ray.train.get_dataset_shard("train")
    val_shard = ray.train.get_dataset_shard("val")
    heartbeat = Heartbeat(loop_config.get("progress"))
    for epoch in range(start_epoch, config.epochs):
        # patches arrive interleaved across fields (see FieldsToPatches), so no local shuffle copies them here
        batches = train_shard.iter_torch_batches(
            batch_size=config.data.batch_size, device=device, prefetch_batches=8, pin_memory=on_gpu
        )
        trained = train_epoch(learner, heartbeat.batches(batches), config, device, autocast, memory_format)
        trained["patches_per_s"] *= world_size  # the workers train in lockstep
        node_id = ray.get_runtime_context().get_node_id()
        metrics = {"epoch": epoch, "start_epoch": start_epoch, **trained, "node_id": node_id}
        if rank == 0:
            # the plain module: a DDP forward on one rank alone would wait for the others to sync buffers
            heartbeat.beat("validation")
            metrics |= validate(unwrap(learner.model), val_shard, stains, device, autocast)
            if epoch == config.epochs - 1 and after_training is not None:
                heartbeat.beat("held-out scoring")
                metrics |= after_training(unwrap(learner.model), meta | {"epoch": epoch}, device)
        report_epoch(learner, metrics, meta | {"epoch": epoch}, rank)
        heartbeat.beat("epoch reported")
