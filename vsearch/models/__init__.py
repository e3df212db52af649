"""Virtual-staining models: the U-Net family and the Pix2PixHD-style conditional GAN."""

from vsearch.lazy import lazy_exports

_EXPORTS = {
    "UNet": "unet",
    "GlobalGenerator": "pix2pixhd",
    "MultiscaleDiscriminator": "pix2pixhd",
    "build_model": "registry",
    "build_discriminator": "registry",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
