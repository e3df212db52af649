"""Models: any input size, gradients reach every parameter, the GAN trains one step each side."""

import pytest
import torch
import yaml

from vsearch.config import Pix2PixHDConfig, TrainConfig, UNetConfig, load_yaml, model_config
from vsearch.models.pix2pixhd import feature_matching_loss, lsgan_loss
from vsearch.models.registry import build_discriminator, build_model


@pytest.mark.parametrize("size", [(64, 64), (50, 70), (33, 47)])
@pytest.mark.parametrize(
    "config",
    [
        UNetConfig(depth=3, base_width=8),
        UNetConfig(depth=2, base_width=8, norm="instance", upsampling="bilinear", residual=True),
        UNetConfig(depth=4, base_width=4, norm="group", upsampling="pixelshuffle"),
        UNetConfig(depth=2, base_width=12, norm="group"),
        Pix2PixHDConfig(depth=2, base_width=8, generator_blocks=2, norm="instance"),
    ],
    ids=["unet", "unet-residual-bilinear", "unet-group-pixelshuffle", "unet-group-width12", "pix2pixhd"],
)
def test_output_shape_for_any_input_size(config, size):
    model = build_model(config, in_channels=3, out_channels=2).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, *size))
    assert out.shape == (2, 2, *size)


@pytest.mark.parametrize(
    "config",
    [
        UNetConfig(depth=3, base_width=8, residual=True),
        UNetConfig(depth=2, base_width=8, upsampling="pixelshuffle", norm="group"),
        Pix2PixHDConfig(depth=2, base_width=8, generator_blocks=2, norm="instance"),
    ],
    ids=["unet", "unet-pixelshuffle", "pix2pixhd"],
)
def test_gradients_reach_every_parameter(config):
    model = build_model(config, in_channels=2, out_channels=3)
    model(torch.randn(2, 2, 40, 36)).square().mean().backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert not missing


def test_gan_generator_and_discriminators_train_one_step():
    torch.manual_seed(0)
    config = Pix2PixHDConfig(depth=2, base_width=8, generator_blocks=2, discriminator_scales=2, norm="instance")
    generator = build_model(config, 1, 2)
    discriminator = build_discriminator(config, 1, 2)
    assert build_discriminator(UNetConfig(), 1, 2) is None
    g_opt = torch.optim.Adam(generator.parameters(), lr=1e-3, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam(discriminator.parameters(), lr=1e-3, betas=(0.5, 0.999))
    x, y = torch.randn(2, 1, 48, 48), torch.rand(2, 2, 48, 48)

    fake = generator(x)
    d_loss = lsgan_loss(discriminator(torch.cat([x, fake.detach()], 1)), False) + lsgan_loss(
        discriminator(torch.cat([x, y], 1)), True
    )
    before = [p.detach().clone() for p in discriminator.parameters()]
    d_opt.zero_grad()
    d_loss.backward()
    d_opt.step()
    assert all(not torch.equal(a, b) for a, b in zip(before, discriminator.parameters(), strict=True))

    fake_out, real_out = discriminator(torch.cat([x, fake], 1)), discriminator(torch.cat([x, y], 1))
    g_loss = lsgan_loss(fake_out, True) + 10 * feature_matching_loss(fake_out, real_out)
    before = [p.detach().clone() for p in generator.parameters()]
    g_opt.zero_grad()
    g_loss.backward()
    g_opt.step()
    assert all(not torch.equal(a, b) for a, b in zip(before, generator.parameters(), strict=True))
    assert torch.isfinite(d_loss) and torch.isfinite(g_loss)


def test_model_config_is_the_family_it_names_and_refuses_another_familys_keys(tmp_path):
    data = {"dataset": "screen", "composition": {"lung/non_toxic": 1.0}}
    assert isinstance(model_config(depth=2), UNetConfig) and model_config().family == "unet"
    gan = TrainConfig.model_validate({"data": data, "model": {"family": "pix2pixhd"}}).model
    assert isinstance(gan, Pix2PixHDConfig) and gan.norm == "instance"  # the paper's norm, not the U-Net's batch
    for model, key in (({"depth": 2, "generator_blocks": 3}, "generator_blocks"),
                       ({"family": "pix2pixhd", "upsampling": "bilinear"}, "upsampling")):  # fmt: skip
        path = tmp_path / "train.yaml"
        path.write_text(yaml.safe_dump({"data": data, "model": model}))
        with pytest.raises(ValueError, match=rf"train.yaml: model.{key}: Extra inputs are not permitted"):
            load_yaml(path, TrainConfig)
