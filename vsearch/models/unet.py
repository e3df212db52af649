"""U-Net family for bright-field z-planes → stains: depth, width, normalisation, up-sampling, residual blocks."""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Norm = Literal["batch", "instance", "group"]
Upsampling = Literal["transpose", "bilinear", "pixelshuffle"]


def norm_layer(kind: Norm, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "group":
        return nn.GroupNorm(math.gcd(8, channels), channels)  # up to 8 groups that divide the channels
    raise ValueError(f"unknown norm {kind!r}; choose batch, instance or group")


class ConvBlock(nn.Module):
    """Two 3×3 conv-norm-activation layers, optionally with a residual connection."""

    def __init__(self, c_in: int, c_out: int, norm: Norm, residual: bool) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
            norm_layer(norm, c_out),
            nn.SiLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            norm_layer(norm, c_out),
        )
        self.skip = (nn.Identity() if c_in == c_out else nn.Conv2d(c_in, c_out, 1)) if residual else None
        self.act = nn.SiLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return self.act(y + self.skip(x) if self.skip is not None else y)


def upsampler(kind: Upsampling, c_in: int, c_out: int) -> nn.Module:
    if kind == "transpose":
        return nn.ConvTranspose2d(c_in, c_out, 2, stride=2)
    if kind == "bilinear":
        return nn.Sequential(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False), nn.Conv2d(c_in, c_out, 1)
        )
    if kind == "pixelshuffle":
        return nn.Sequential(nn.Conv2d(c_in, 4 * c_out, 1), nn.PixelShuffle(2))
    raise ValueError(f"unknown upsampling {kind!r}; choose transpose, bilinear or pixelshuffle")


class UNet(nn.Module):
    """Encoder-decoder with skip connections; any input size (padded to a multiple of 2^depth, cropped back)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        depth: int = 4,
        base_width: int = 32,
        norm: Norm = "batch",
        upsampling: Upsampling = "transpose",
        residual: bool = False,
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        widths = [base_width * 2**i for i in range(depth + 1)]
        self.depth = depth
        self.encoders = nn.ModuleList([ConvBlock(in_channels, widths[0], norm, residual)])
        self.encoders.extend(ConvBlock(widths[i], widths[i + 1], norm, residual) for i in range(depth))
        self.ups = nn.ModuleList(upsampler(upsampling, widths[i + 1], widths[i]) for i in reversed(range(depth)))
        self.decoders = nn.ModuleList(
            ConvBlock(2 * widths[i], widths[i], norm, residual) for i in reversed(range(depth))
        )
        self.head = nn.Conv2d(widths[0], out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        multiple = 2**self.depth
        pad_h, pad_w = (-h) % multiple, (-w) % multiple
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect" if min(h, w) > max(pad_h, pad_w) else "replicate")
        skips = []
        for i, encoder in enumerate(self.encoders):
            x = encoder(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        x = skips.pop()
        for up, decoder in zip(self.ups, self.decoders, strict=True):
            x = decoder(torch.cat([up(x), skips.pop()], dim=1))
        return self.head(x)[..., :h, :w]
