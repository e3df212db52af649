"""Checkpoint folders: ``model.pt`` (and ``discriminator.pt`` for the GAN), ``optim.pt`` and ``meta.json``
(config, stains, normalisation, epoch). Tensors load with ``torch.load(..., weights_only=True)``."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from vsearch.config import TrainConfig
from vsearch.models.registry import build_model

MODEL_FILE, DISCRIMINATOR_FILE, OPTIM_FILE, META_FILE = "model.pt", "discriminator.pt", "optim.pt", "meta.json"


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside DDP and ``torch.compile`` wrappers."""
    model = getattr(model, "_orig_mod", model)
    return getattr(model, "module", model)


def save(folder: Path, meta: dict, model: nn.Module, optim_state: dict, discriminator: nn.Module | None = None) -> None:
    torch.save(unwrap(model).state_dict(), folder / MODEL_FILE)
    if discriminator is not None:
        torch.save(unwrap(discriminator).state_dict(), folder / DISCRIMINATOR_FILE)
    torch.save(optim_state, folder / OPTIM_FILE)
    (folder / META_FILE).write_text(json.dumps(meta, indent=2))


def load_meta(folder: Path) -> dict:
    return json.loads((folder / META_FILE).read_text())


def load_tensors(folder: Path, name: str, device: torch.device | str = "cpu") -> dict:
    return torch.load(folder / name, map_location=device, weights_only=True)


def find_checkpoint(path: Path) -> Path:
    """``path`` itself when it holds a checkpoint, else its newest ``checkpoint_*`` folder (searched recursively)."""
    if (path / META_FILE).exists():
        return path
    found = sorted(p.parent for p in path.rglob(META_FILE))
    if not found:
        raise FileNotFoundError(f"{path} holds no vsearch checkpoint ({META_FILE} not found)")
    return max(found, key=lambda p: (load_meta(p)["epoch"], p.stat().st_mtime))


def load_model(path: Path, device: torch.device | str = "cpu") -> tuple[nn.Module, dict]:
    """The trained generator of a checkpoint, in eval mode, and its meta data."""
    folder = find_checkpoint(path)
    meta = load_meta(folder)
    config = TrainConfig.model_validate(meta["config"])
    model = build_model(config.model, meta["bf_planes"], len(meta["stains"]))
    model.load_state_dict(load_tensors(folder, MODEL_FILE, device))
    return model.to(device).eval(), meta
