"""The training steps, without Ray: losses, the patch normalisation done on the device, the optimiser and its
schedule, one GAN update, validation on whole fields, and timing of the data wait. ``loop`` runs them on a Ray
Train worker."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vsearch.config import TrainConfig
from vsearch.evaluate.pixel import pearson_r, ssim
from vsearch.evaluate.score import pixel_score
from vsearch.models.pix2pixhd import feature_matching_loss, lsgan_loss
from vsearch.models.registry import build_discriminator, build_model
from vsearch.train import checkpoint

SSIM_WEIGHT = 0.84  # L1 + SSIM mix of Zhao et al. (2017)


def reconstruction_loss(kind: str, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if kind == "l1":
        return F.l1_loss(pred, target)
    if kind == "l2":
        return F.mse_loss(pred, target)
    structural = 1 - ssim(target.float(), pred.float(), data_range=1.0).mean()
    return (1 - SSIM_WEIGHT) * F.l1_loss(pred, target) + SSIM_WEIGHT * structural


def normalised_patches(
    batch: dict[str, torch.Tensor], memory_format: torch.memory_format = torch.contiguous_format
) -> tuple[torch.Tensor, torch.Tensor]:
    """Float32 inputs and targets from a training-stream batch (``FieldsToPatches``): pixels mapped by each
    patch's own offset and scale, on whatever device the batch is on."""

    def affine(pixels: torch.Tensor, offset: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        planes = (pixels.float() - offset[:, :, None, None]) * scale[:, :, None, None]
        return planes.contiguous(memory_format=memory_format)

    return (
        affine(batch["x"], batch["x_offset"], batch["x_scale"]),
        affine(batch["y"], batch["y_offset"], batch["y_scale"]),
    )


def timed(items: Iterable, waits: list[float]) -> Iterator:
    """Yields from ``items``, appending to ``waits`` how long each item kept the caller waiting."""
    iterator, exhausted = iter(items), object()
    while True:
        started = time.perf_counter()
        item = next(iterator, exhausted)
        waits.append(time.perf_counter() - started)
        if item is exhausted:
            return
        yield item


def optimizer_for(params, config: TrainConfig) -> torch.optim.Optimizer:
    o = config.optim
    betas = (0.5 if config.model.family == "pix2pixhd" else o.beta1, 0.999)  # pix2pixHD's β1
    if o.optimizer == "adam":
        return torch.optim.Adam(params, lr=o.lr, betas=betas)
    return torch.optim.AdamW(params, lr=o.lr, betas=betas, weight_decay=o.weight_decay)


def schedule_for(optimizer: torch.optim.Optimizer, config: TrainConfig) -> torch.optim.lr_scheduler.LambdaLR:
    if config.optim.schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda epoch: 0.5 * (1 + math.cos(math.pi * epoch / config.epochs))
    )


def validate(model: nn.Module, shard, stains: list[str], device: torch.device, autocast) -> dict[str, float]:
    """Mean Pearson r, SSIM and L1 per stain over the whole validation fields of ``shard`` (in normalised
    units); ``val_score`` is the mean pixel score of ``evaluate.score``."""
    sums = torch.zeros(3 * len(stains) + 1, dtype=torch.float64, device=device)
    model.eval()
    with torch.no_grad():
        for batch in shard.iter_torch_batches(batch_size=4, dtypes=torch.float32, device=device):
            x, y = batch["x"], batch["y"]
            with autocast:
                pred = model(x)
            pred = pred.float()
            r = torch.nan_to_num(pearson_r(y, pred), nan=0.0).sum(0)
            s = ssim(y, pred, data_range=1.0).sum(0)
            l1 = (pred - y).abs().mean(dim=(-2, -1)).sum(0)
            sums += torch.cat([r, s, l1, torch.tensor([len(x)], device=device)]).double()
    n = max(float(sums[-1]), 1.0)
    k = len(stains)
    r, s, l1 = (sums[i * k : (i + 1) * k] / n for i in range(3))
    metrics = {f"val_r_{name}": float(r[i]) for i, name in enumerate(stains)}
    metrics |= {f"val_ssim_{name}": float(s[i]) for i, name in enumerate(stains)}
    metrics["val_l1"] = float(l1.mean())
    metrics["val_score"] = float(pixel_score(s.cpu().numpy(), r.cpu().numpy()).mean())
    return metrics


def _judged(discriminator, x, y, pred) -> tuple[list[list[torch.Tensor]], list[list[torch.Tensor]]]:
    """The discriminator's outputs on the (input, prediction) and (input, truth) pairs, from one forward pass
    over both: a DDP module must run forward once per backward."""
    outputs = discriminator(torch.cat([torch.cat([x, pred], 1), torch.cat([x, y], 1)], 0))
    halves = [[o.chunk(2) for o in scale] for scale in outputs]
    return [[f for f, _ in scale] for scale in halves], [[r for _, r in scale] for scale in halves]


def gan_step(discriminator, d_optimizer, x, y, pred, reconstruction, config: TrainConfig, autocast) -> torch.Tensor:
    """One discriminator update (LSGAN), then the generator's GAN + feature-matching (+ optional L1) loss."""
    with autocast:
        fake_out, real_out = _judged(discriminator, x, y, pred.detach())
        d_loss = 0.5 * (lsgan_loss(fake_out, False) + lsgan_loss(real_out, True))
    d_optimizer.zero_grad(set_to_none=True)
    d_loss.backward()
    d_optimizer.step()
    with autocast:
        fake_out, real_out = _judged(discriminator, x, y, pred)
        g_loss = lsgan_loss(fake_out, True) + config.model.feature_matching_weight * feature_matching_loss(
            fake_out, real_out
        )
    return g_loss + config.model.l1_weight * reconstruction


@dataclass
class Learner:
    """What an epoch updates: the generator, the GAN's discriminator (None for a U-Net), their optimisers and the
    generator's learning-rate schedule; ``step_model`` is the generator as training steps call it (compiled once,
    when asked)."""

    model: nn.Module
    discriminator: nn.Module | None
    optimizer: torch.optim.Optimizer
    d_optimizer: torch.optim.Optimizer | None
    scheduler: torch.optim.lr_scheduler.LambdaLR
    step_model: nn.Module | None = None


def build_learner(
    config: TrainConfig, bf_planes: int, stains: int, memory_format: torch.memory_format = torch.contiguous_format
) -> Learner:
    model = build_model(config.model, bf_planes, stains).to(memory_format=memory_format)
    discriminator = build_discriminator(config.model, bf_planes, stains)
    optimizer = optimizer_for(model.parameters(), config)
    d_optimizer = optimizer_for(discriminator.parameters(), config) if discriminator is not None else None
    return Learner(model, discriminator, optimizer, d_optimizer, schedule_for(optimizer, config))


def load_learner_state(learner: Learner, folder: Path) -> int:
    """Restores a checkpoint folder's weights and optimiser state; returns the epoch it was saved after."""
    learner.model.load_state_dict(checkpoint.load_tensors(folder, checkpoint.MODEL_FILE))
    state = checkpoint.load_tensors(folder, checkpoint.OPTIM_FILE)
    learner.optimizer.load_state_dict(state["optimizer"])
    learner.scheduler.load_state_dict(state["scheduler"])
    if learner.discriminator is not None:
        learner.discriminator.load_state_dict(checkpoint.load_tensors(folder, checkpoint.DISCRIMINATOR_FILE))
        learner.d_optimizer.load_state_dict(state["d_optimizer"])
    return checkpoint.load_meta(folder)["epoch"]


def save_learner(learner: Learner, folder: Path, meta: dict) -> None:
    state = {"optimizer": learner.optimizer.state_dict(), "scheduler": learner.scheduler.state_dict()}
    if learner.d_optimizer is not None:
        state["d_optimizer"] = learner.d_optimizer.state_dict()
    checkpoint.save(folder, meta, learner.model, state, learner.discriminator)


def train_epoch(
    learner: Learner,
    batches: Iterable[dict[str, torch.Tensor]],
    config: TrainConfig,
    device: torch.device,
    autocast: AbstractContextManager,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> dict[str, float]:
    """One pass over the epoch's batches, then a schedule step: mean train loss, patches/s, the pass's seconds,
    the share of them spent waiting for data, and the next learning rate."""
    learner.model.train()
    step_model = learner.step_model or learner.model
    started, patches, steps, data_waits = time.perf_counter(), 0, 0, []
    loss_sum = torch.zeros((), device=device)  # summed on the device: reading it each step would stall the GPU
    for batch in timed(batches, data_waits):
        x, y = normalised_patches(batch, memory_format)
        with autocast:
            pred = step_model(x)
            loss = reconstruction_loss(config.optim.loss, pred.float(), y)
        if learner.discriminator is not None:
            loss = gan_step(learner.discriminator, learner.d_optimizer, x, y, pred, loss, config, autocast)
        learner.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        learner.optimizer.step()
        patches += len(x)
        loss_sum += loss.detach()
        steps += 1
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elapsed = time.perf_counter() - started
    learner.scheduler.step()
    return {
        "train_loss": float(loss_sum) / max(steps, 1),
        "patches_per_s": patches / elapsed if elapsed > 0 else 0.0,
        "epoch_seconds": elapsed,
        # share of the epoch the training thread waited for data (with the device idle once it caught up)
        "data_wait_fraction": sum(data_waits) / elapsed if elapsed > 0 else 0.0,
        "lr": learner.optimizer.param_groups[0]["lr"],
    }
