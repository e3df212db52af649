"""FLOPs of vsearch's training step and of whole-field prediction, counted by PyTorch's ``FlopCounterMode`` on
the meta device (shapes only: no memory, no arithmetic). Convolutions and matrix products are counted, two
FLOPs per multiply-add; element-wise work (norms, activations, the optimiser) is not."""

from __future__ import annotations

from contextlib import nullcontext
from functools import lru_cache

import torch
from torch.utils.flop_counter import FlopCounterMode

from vsearch.config import TrainConfig
from vsearch.train.steps import build_learner, gan_step, reconstruction_loss


def training_step_flops(config: TrainConfig, bf_planes: int, stains: int) -> float:
    """FLOPs per patch of one training step of ``config`` at its patch size: the generator's forward and
    backward and, for the GAN, the discriminator's update and its passes in the generator's loss."""
    return _training_step_flops(config.model_dump_json(), bf_planes, stains)


@lru_cache(maxsize=256)
def _training_step_flops(config_json: str, bf_planes: int, stains: int) -> float:
    config = TrainConfig.model_validate_json(config_json)
    patch = config.data.patch
    with torch.device("meta"):
        learner = build_learner(config, bf_planes, stains)
        x, y = torch.empty(1, bf_planes, patch, patch), torch.empty(1, stains, patch, patch)
    counter = FlopCounterMode(display=False)
    with counter:
        pred = learner.model(x)
        loss = reconstruction_loss(config.optim.loss, pred, y)
        if learner.discriminator is not None:
            loss = gan_step(learner.discriminator, learner.d_optimizer, x, y, pred, loss, config, nullcontext())
        loss.backward()
    return float(counter.get_total_flops())


def prediction_flops(config: TrainConfig, bf_planes: int, stains: int, height: int, width: int) -> float:
    """FLOPs of the generator's forward pass on one whole ``height`` x ``width`` field (validation, scoring)."""
    return _prediction_flops(config.model_dump_json(), bf_planes, stains, height, width)


@lru_cache(maxsize=256)
def _prediction_flops(config_json: str, bf_planes: int, stains: int, height: int, width: int) -> float:
    config = TrainConfig.model_validate_json(config_json)
    with torch.device("meta"):
        model = build_learner(config, bf_planes, stains).model.eval()
        x = torch.empty(1, bf_planes, height, width)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    return float(counter.get_total_flops())
