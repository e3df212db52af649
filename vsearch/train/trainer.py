"""Ray Train: plans a training run on the driver (splits, composition sample, normalisation) and fits a
``TorchTrainer``; rerunning the same name and storage resumes from the latest checkpoint."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from vsearch.cluster import cluster_capacity, connect
from vsearch.config import TrainConfig
from vsearch.data import storage
from vsearch.data.dataset import Dataset, open_dataset
from vsearch.data.manifest import conditions_of
from vsearch.data.normalise import target_ranges
from vsearch.data.pipeline import patch_tasks, training_stream, validation_set
from vsearch.data.splits import assign_splits
from vsearch.search.composition import sample_composition
from vsearch.train.resources import refuse_unless_one_fits


@dataclass
class TrainingPlan:
    dataset: Dataset
    splits: pd.Series  # "train" / "val" / "test" per manifest row
    sample: pd.DataFrame  # field_id, condition, copies
    val_ids: list[str]
    ranges: dict[str, list[float]]  # dataset-wide (low, high) per stain: targets' scale, and predictions' inverse


def plan_training(config: TrainConfig) -> TrainingPlan:
    """Everything decided before workers start; refuses unknown stains and conditions."""
    dataset = open_dataset(config.data.dataset)
    missing = [s for s in config.data.stains if s not in dataset.info.stains]
    if missing:
        raise ValueError(f"data.stains: {missing[0]!r} is not a stain of {dataset.uri} ({dataset.info.stains})")
    splits = assign_splits(
        dataset.manifest, config.data.val_fraction, config.data.test_fraction, config.data.split_seed
    )
    train = dataset.manifest[splits == "train"]
    sample = sample_composition(train, config.data.composition, config.data.budget, config.seed)
    conditions = {c for c, w in config.data.composition.items() if w > 0}
    labels = conditions_of(dataset.manifest)
    val_ids = dataset.manifest.field_id[(splits == "val") & labels.isin(conditions)].tolist()
    if not val_ids:
        raise ValueError("no validation wells in the composition's conditions: raise data.val_fraction or add wells")
    ranges = target_ranges(dataset, sample.field_id.tolist(), config.data.stains)
    return TrainingPlan(dataset, splits, sample, val_ids, ranges)


def storage_location(uri: str) -> tuple[str, object | None]:
    """(storage_path, storage_filesystem) for Ray Train: absolute local paths, or s3fs through pyarrow."""
    if not storage.is_remote(uri):
        return storage.absolute(uri), None
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    fs, path = storage.filesystem(uri)
    return path, PyFileSystem(FSSpecHandler(fs))


def _target_ranges(config: TrainConfig, plan: TrainingPlan) -> dict[str, list[float]] | None:
    return plan.ranges if config.data.target_normalisation == "dataset" else None


def training_patches(config: TrainConfig, plan: TrainingPlan):
    """The epoch's stream of augmented patches as the training loop takes them (pixels and their normalisation)."""
    d = config.data
    ranges = _target_ranges(config, plan)
    stream = training_stream(
        *patch_tasks(plan.dataset, plan.sample, d.stains, d.patch, d.patches_per_field, ranges, seed=config.seed)
    )
    return stream.drop_columns(["field_id", "condition"])


def build_trainer(
    config: TrainConfig,
    plan: TrainingPlan,
    *,
    callbacks: list | None = None,
    after_training: Callable | None = None,
    progress=None,
):
    """The ``TorchTrainer`` of a plan; ``after_training`` runs on rank 0 after the last epoch, and the workers
    report their progress to ``progress``, a ``ProgressBoard`` (see ``train_loop_per_worker``)."""
    import ray.train
    from ray.train.torch import TorchTrainer

    from vsearch.train.loop import train_loop_per_worker

    stains = config.data.stains
    val_ds = validation_set(plan.dataset, plan.val_ids, stains, _target_ranges(config, plan)).drop_columns(["field_id"])
    storage_path, storage_filesystem = storage_location(config.storage)
    return TorchTrainer(
        train_loop_per_worker,
        train_loop_config={
            "config": config.model_dump(),
            "stains": stains,
            "bf_planes": plan.dataset.info.bf_planes,
            "target_ranges": plan.ranges,
            "after_training": after_training,
            "progress": progress,
        },
        scaling_config=scaling_config(config),
        run_config=ray.train.RunConfig(
            name=config.name,
            storage_path=storage_path,
            storage_filesystem=storage_filesystem,
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2),
            callbacks=callbacks,
        ),
        datasets={"train": training_patches(config, plan), "val": val_ds},
        dataset_config=dataset_config(config),
    )


def dataset_config(config: TrainConfig):
    """How the workers share the datasets: with several, each takes its own equal share of the epoch's patches
    (Ray Data drops at most ``workers - 1`` so every worker takes as many steps); validation fields are not split,
    as rank 0 alone validates. A single worker reads the stream itself: a split would start a coordinator actor."""
    import ray.train
    from ray.data import ExecutionOptions

    return ray.train.DataConfig(
        datasets_to_split=["train"] if config.workers > 1 else [],
        # patches in the order the stream makes them, so a rerun of the same config sees the same batches
        execution_options={"train": ExecutionOptions(preserve_order=True)},
    )


def scaling_config(config: TrainConfig):
    import ray.train

    return ray.train.ScalingConfig(
        num_workers=config.workers, use_gpu=config.use_gpu, resources_per_worker=config.resources_per_worker()
    )


def train(config: TrainConfig, address: str | None = None):
    """Plan (refusing bad input before Ray starts), join the cluster at ``address``, refuse workers that leave
    the data stream no CPU (or ask more GPUs than it has), and fit; returns the Ray Train ``Result`` (its
    ``checkpoint`` is the last epoch's)."""
    plan = plan_training(config)
    connect(address)
    gpus = config.resources_per_worker().get("GPU", 0.0)
    refuse_unless_one_fits("workers", config.workers, config.cpus_per_worker, gpus, cluster_capacity())
    return build_trainer(config, plan).fit()
