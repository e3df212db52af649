"""GPU-hours and wall time of a search, from the measured throughput table scaled by FLOPs.

A trial's training FLOPs (patches x FLOPs of a step, ``flops``) plus its validation and held-out prediction
FLOPs (whole fields, forward only), divided by the FLOP rate the nearest measured configuration achieved on
that GPU (its patches/s x its FLOPs per step). A configuration the table holds gets its measured rate back.
Not counted: Ray start-up, checkpoints, and the CPU side of scoring (segmentation, CellProfiler features).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from vsearch.config import DataConfig
from vsearch.cost.flops import prediction_flops, training_step_flops
from vsearch.cost.throughput import Measurement, nearest, read_table
from vsearch.data.dataset import Dataset
from vsearch.data.manifest import conditions_of
from vsearch.data.splits import assign_splits
from vsearch.search.space import IntRange, ResolvedSpace

# the choices that change a trial's cost; the others (composition, learning rate, norm) do not
COST_KEYS = ("family", "depth", "base_width", "upsampling", "residual", "batch_size", "loss", "epochs")


@dataclass(frozen=True)
class TrialCost:
    choices: dict  # the cost-relevant choices of the configuration
    train_patches: int  # over all epochs
    patches_per_s: float  # estimated, on one GPU
    measurement: Measurement  # the table row the rate is scaled from
    gpu_seconds: float  # training, validation and held-out prediction on one GPU

    @property
    def gpu_hours(self) -> float:
        return self.gpu_seconds / 3600


@dataclass(frozen=True)
class SearchCost:
    gpu: str
    trials: int
    concurrent: int
    gpus_per_trial: float
    configurations: list[TrialCost]  # every combination of cost-relevant choices the space allows

    def gpu_hours(self) -> tuple[float, float, float]:
        """(cheapest, mean, dearest) GPU-hours of the whole search: every trial the cheapest configuration, the
        mean over configurations (choices drawn uniformly), every trial the dearest."""
        hours = [c.gpu_hours for c in self.configurations]
        return min(hours) * self.trials, float(np.mean(hours)) * self.trials, max(hours) * self.trials

    def wall_hours(self) -> tuple[float, float, float]:
        """The same three for wall time: waves of ``concurrent`` trials, each on ``gpus_per_trial`` GPUs."""
        waves = math.ceil(self.trials / self.concurrent)
        per_trial = [c.gpu_hours / self.gpus_per_trial for c in self.configurations]
        return min(per_trial) * waves, float(np.mean(per_trial)) * waves, max(per_trial) * waves


def cost_choices(resolved: ResolvedSpace) -> list[dict]:
    """Every combination of the choices in ``COST_KEYS`` (a range's ends for epochs: a trial's cost is linear in
    them; every depth of a depth range); U-Net-only choices only for U-Nets."""
    m, o = resolved.space.model, resolved.space.optim
    depths = list(range(m.depth.low, m.depth.high + 1)) if isinstance(m.depth, IntRange) else m.depth
    epochs = [o.epochs.low, o.epochs.high] if isinstance(o.epochs, IntRange) else [o.epochs]
    combinations = []
    for family, depth, width, batch, loss, epoch in itertools.product(
        m.family, depths, m.base_width, o.batch_size, o.loss, sorted(set(epochs))
    ):
        unet = itertools.product(m.upsampling, m.residual) if family == "unet" else [(None, None)]
        for upsampling, residual in unet:
            choice = {"family": family, "depth": depth, "base_width": width, "batch_size": batch, "loss": loss}
            if family == "unet":
                choice |= {"upsampling": upsampling, "residual": residual}
            combinations.append(choice | {"epochs": epoch})
    return combinations


def validation_pixels(dataset: Dataset, conditions: list[str]) -> int:
    """Pixels of the validation fields of ``conditions`` (an upper bound for a trial, whose mix may use
    fewer of them), with the splits a trial's ``DataConfig`` defaults give."""
    d = DataConfig.model_fields
    manifest = dataset.manifest
    splits = assign_splits(manifest, d["val_fraction"].default, d["test_fraction"].default, d["split_seed"].default)
    chosen = manifest[(splits == "val") & conditions_of(manifest).isin(conditions)]
    return int((chosen.height.astype(np.int64) * chosen.width).sum())


def estimate_search(
    resolved: ResolvedSpace,
    dataset: Dataset,
    eval_field_ids: list[str],
    trials: int,
    concurrent: int,
    gpu: str,
    table: list[Measurement] | None = None,
) -> SearchCost:
    """The cost of ``trials`` trials of ``resolved`` on ``gpu``, ``concurrent`` at a time. Refuses a space that
    trains on CPUs and a GPU or family the table has no figure for, naming what it has."""
    space, table = resolved.space, table if table is not None else read_table()
    if space.trial.gpus_per_worker <= 0:
        raise ValueError("trial.gpus_per_worker is 0: the throughput table holds GPU figures only")
    bf_planes, stains = dataset.info.bf_planes, len(space.stains)
    manifest = dataset.manifest.set_index("field_id")
    field_h, field_w = (int(v) for v in manifest[["height", "width"]].mode().iloc[0])
    val_pixels = validation_pixels(dataset, resolved.trainable)
    eval_rows = manifest.loc[eval_field_ids]
    eval_pixels = int((eval_rows.height.astype(np.int64) * eval_rows.width).sum())
    configurations = []
    for choices in cost_choices(resolved):
        sampled = {**choices, "composition": {resolved.trainable[0]: 1.0}, "lr": 1e-3, "seed": space.seed}
        config = resolved.train_config(sampled, name="cost", storage="-")
        measured = nearest(table, gpu, config.model.family, space.patch, config.data.batch_size, config.compile)
        if measured is None:
            known = sorted({(m.gpu, m.family) for m in table})
            raise ValueError(f"no throughput figure for {config.model.family} on {gpu}; the table has {known}")
        flop_rate = measured.patches_per_s * training_step_flops(measured.train_config(), bf_planes, stains)
        step = training_step_flops(config, bf_planes, stains)
        per_pixel = prediction_flops(config, bf_planes, stains, field_h, field_w) / (field_h * field_w)
        patches = config.epochs * space.composition.budget * space.patches_per_field
        flops = patches * step + per_pixel * (config.epochs * val_pixels + eval_pixels)
        configurations.append(TrialCost(choices, patches, flop_rate / step, measured, flops / flop_rate))
    gpus_per_trial = space.trial.workers * space.trial.gpus_per_worker
    return SearchCost(gpu, trials, concurrent, gpus_per_trial, configurations)
