"""Builds the model a config names."""

from __future__ import annotations

from torch import nn

from vsearch.config import ModelConfig
from vsearch.models.pix2pixhd import GlobalGenerator, MultiscaleDiscriminator
from vsearch.models.unet import UNet


def build_model(config: ModelConfig, in_channels: int, out_channels: int) -> nn.Module:
    """The generator (U-Net, or the Pix2PixHD global generator) mapping Z input planes to one output per stain."""
    if config.family == "unet":
        return UNet(
            in_channels, out_channels, config.depth, config.base_width, config.norm, config.upsampling, config.residual
        )
    return GlobalGenerator(
        in_channels, out_channels, config.base_width, downsampling=config.depth, blocks=config.generator_blocks,
        norm=config.norm,
    )  # fmt: skip


def build_discriminator(config: ModelConfig, in_channels: int, out_channels: int) -> nn.Module | None:
    """The multi-scale PatchGAN on (input, stains) pairs, for the GAN family; None otherwise."""
    if config.family != "pix2pixhd":
        return None
    return MultiscaleDiscriminator(
        in_channels + out_channels, scales=config.discriminator_scales, base_width=config.base_width
    )
