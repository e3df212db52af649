"""Pix2PixHD-style conditional GAN (Wang et al. 2018), the model of Tonks et al.: a ResNet-block global generator,
multi-scale PatchGAN discriminators, LSGAN and feature-matching losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vsearch.models.unet import Norm, norm_layer


class ResnetBlock(nn.Module):
    def __init__(self, channels: int, norm: Norm) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=False),
            norm_layer(norm, channels),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=False),
            norm_layer(norm, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class GlobalGenerator(nn.Module):
    """7×7 stem, ``downsampling`` stride-2 convs, ``blocks`` residual blocks, mirrored up-sampling, 7×7 head."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        base_width: int = 64,
        downsampling: int = 3,
        blocks: int = 9,
        norm: Norm = "instance",
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, base_width, 7, bias=False),
            norm_layer(norm, base_width),
            nn.ReLU(inplace=True),
        ]
        width = base_width
        for _ in range(downsampling):
            layers += [nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=False), norm_layer(norm, 2 * width)]
            layers.append(nn.ReLU(inplace=True))
            width *= 2
        layers += [ResnetBlock(width, norm) for _ in range(blocks)]
        for _ in range(downsampling):
            layers += [
                nn.ConvTranspose2d(width, width // 2, 3, stride=2, padding=1, output_padding=1, bias=False),
                norm_layer(norm, width // 2),
                nn.ReLU(inplace=True),
            ]
            width //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, out_channels, 7)]
        self.model = nn.Sequential(*layers)
        self.multiple = 2**downsampling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        pad_h, pad_w = (-h) % self.multiple, (-w) % self.multiple
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        return self.model(x)[..., :h, :w]


class PatchDiscriminator(nn.Module):
    """70×70-style PatchGAN; returns every layer's activations (the last is the real/fake map)."""

    def __init__(self, in_channels: int, base_width: int = 64, layers: int = 3) -> None:
        super().__init__()
        blocks = [nn.Sequential(nn.Conv2d(in_channels, base_width, 4, stride=2, padding=2), nn.LeakyReLU(0.2, True))]
        width = base_width
        for i in range(1, layers + 1):
            stride = 2 if i < layers else 1
            nxt = min(width * 2, 512)
            blocks.append(
                nn.Sequential(
                    nn.Conv2d(width, nxt, 4, stride=stride, padding=2),
                    nn.InstanceNorm2d(nxt),
                    nn.LeakyReLU(0.2, True),
                )
            )
            width = nxt
        blocks.append(nn.Conv2d(width, 1, 4, stride=1, padding=2))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for block in self.blocks:
            x = block(x)
            features.append(x)
        return features


class MultiscaleDiscriminator(nn.Module):
    """``scales`` PatchGANs on the (input, stain) pair at full, 1/2, 1/4 … resolution."""

    def __init__(self, in_channels: int, scales: int = 3, base_width: int = 64, layers: int = 3) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(PatchDiscriminator(in_channels, base_width, layers) for _ in range(scales))

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        outputs = []
        for i, discriminator in enumerate(self.discriminators):
            if i:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outputs.append(discriminator(x))
        return outputs


def lsgan_loss(outputs: list[list[torch.Tensor]], real: bool) -> torch.Tensor:
    """Least-squares GAN loss on each scale's final map, averaged over scales."""
    target = 1.0 if real else 0.0
    return sum(F.mse_loss(o[-1], torch.full_like(o[-1], target)) for o in outputs) / len(outputs)


def feature_matching_loss(fake: list[list[torch.Tensor]], real: list[list[torch.Tensor]]) -> torch.Tensor:
    """L1 between discriminator activations of fake and real pairs (all layers but the last, all scales)."""
    total = 0.0
    for fake_scale, real_scale in zip(fake, real, strict=True):
        for f, r in zip(fake_scale[:-1], real_scale[:-1], strict=True):
            total = total + F.l1_loss(f, r.detach())
    return total / len(fake)
