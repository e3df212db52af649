"""Pixel-level metrics of a predicted stain against the real one, batched over leading axes.

Every function takes ``true`` and ``pred`` of shape ``[..., H, W]`` as NumPy arrays or torch tensors (so they run
on the GPU inside training) and returns one value per image, ``[...]``, of the same kind. NumPy inputs are
computed in float64; torch inputs in their floating dtype (float32 at least). Argument order follows
``skimage.metrics``: the real image first.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

Array = np.ndarray | torch.Tensor

SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5  # as scipy.ndimage.gaussian_filter and skimage.metrics.structural_similarity
SSIM_K1, SSIM_K2 = 0.01, 0.03


def _as_tensors(true: Array, pred: Array) -> tuple[torch.Tensor, torch.Tensor, bool]:
    if true.shape != pred.shape:
        raise ValueError(f"true and pred differ in shape: {tuple(true.shape)} vs {tuple(pred.shape)}")
    if true.ndim < 2:
        raise ValueError(f"images must be [..., H, W], got shape {tuple(true.shape)}")
    from_numpy = isinstance(true, np.ndarray)
    if from_numpy:
        return torch.from_numpy(np.asarray(true, np.float64)), torch.from_numpy(np.asarray(pred, np.float64)), True
    dtype = true.dtype if true.dtype in (torch.float32, torch.float64) else torch.float32
    return true.to(dtype), pred.to(device=true.device, dtype=dtype), False


def _back(value: torch.Tensor, from_numpy: bool) -> Array:
    return value.numpy() if from_numpy else value


def mae(true: Array, pred: Array) -> Array:
    """Mean absolute error of each image pair.

    Parameters
    ----------
    true, pred : array ``[..., H, W]``
        Real and predicted images (NumPy or torch), the same shape.

    Returns
    -------
    array ``[...]``
        ``mean(|pred - true|)`` over the last two axes: 0 for a perfect prediction.
    """
    t, p, np_in = _as_tensors(true, pred)
    return _back((p - t).abs().mean(dim=(-2, -1)), np_in)


def mse(true: Array, pred: Array) -> Array:
    """Mean squared error of each image pair, ``mean((pred - true)²)`` over the last two axes (see ``mae``)."""
    t, p, np_in = _as_tensors(true, pred)
    return _back((p - t).square().mean(dim=(-2, -1)), np_in)


def psnr(true: Array, pred: Array, *, data_range: float) -> Array:
    """Peak signal-to-noise ratio of each image pair, in dB.

    Parameters
    ----------
    true, pred : array ``[..., H, W]``
        Real and predicted images.
    data_range : float
        The images' value range (1 for images normalised by ``normalise_pair``); given explicitly, as
        ``skimage.metrics.peak_signal_noise_ratio`` recommends, never guessed from the dtype.

    Returns
    -------
    array ``[...]``
        ``10 log10(data_range² / MSE)``; +inf for identical images.
    """
    t, p, np_in = _as_tensors(true, pred)
    err = (p - t).square().mean(dim=(-2, -1))
    return _back(10 * torch.log10(data_range**2 / err), np_in)


def pearson_r(true: Array, pred: Array) -> Array:
    """Pearson correlation coefficient of the pixels of each image pair.

    Parameters
    ----------
    true, pred : array ``[..., H, W]``
        Real and predicted images.

    Returns
    -------
    array ``[...]``
        r in [-1, 1], invariant to each image's offset and scale; NaN where either image is constant.

    References
    ----------
    .. [1] Ounkomol C. et al., "Label-free prediction of three-dimensional fluorescence images from
       transmitted-light microscopy", Nature Methods 15, 917–920 (2018): r as the headline score of
       virtual staining.
    """
    t, p, np_in = _as_tensors(true, pred)
    t = t - t.mean(dim=(-2, -1), keepdim=True)
    p = p - p.mean(dim=(-2, -1), keepdim=True)
    num = (t * p).sum(dim=(-2, -1))
    den = torch.sqrt(t.square().sum(dim=(-2, -1)) * p.square().sum(dim=(-2, -1)))
    return _back(num / den, np_in)


def _gaussian_kernel(sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    radius = int(SSIM_TRUNCATE * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=dtype, device=device)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


def ssim(true: Array, pred: Array, *, data_range: float, sigma: float = SSIM_SIGMA) -> Array:
    """Mean structural similarity of each image pair, with a Gaussian window.

    Parameters
    ----------
    true, pred : array ``[..., H, W]``
        Real and predicted images, at least the window's size (``2 ⌊3.5 σ + 0.5⌋ + 1`` px) on each side.
    data_range : float
        The images' value range; sets the stabilising constants ``(0.01 data_range)²`` and
        ``(0.03 data_range)²``.
    sigma : float
        Standard deviation of the Gaussian window, in pixels.

    Returns
    -------
    array ``[...]``
        Mean SSIM, 1 for identical images. It matches ``skimage.metrics.structural_similarity(
        gaussian_weights=True, sigma=sigma, use_sample_covariance=False, data_range=data_range)``: local
        statistics are Gaussian-weighted (truncated at 3.5 σ) and the mean is over pixels whose window lies
        inside the image.

    References
    ----------
    .. [1] Wang Z., Bovik A. C., Sheikh H. R., Simoncelli E. P., "Image quality assessment: from error
       visibility to structural similarity", IEEE Trans. Image Processing 13, 600–612 (2004).
    """
    t, p, np_in = _as_tensors(true, pred)
    batch_shape, (h, w) = t.shape[:-2], t.shape[-2:]
    kernel = _gaussian_kernel(sigma, t.dtype, t.device)
    if min(h, w) < kernel.numel():
        raise ValueError(f"images of {h}×{w} are smaller than the {kernel.numel()}-pixel SSIM window")
    t, p = t.reshape(-1, 1, h, w), p.reshape(-1, 1, h, w)
    stack = torch.cat([t, p, t * t, p * p, t * p], dim=1)
    rows = F.conv2d(stack, kernel.view(1, 1, -1, 1).expand(5, 1, -1, 1), groups=5)
    local = F.conv2d(rows, kernel.view(1, 1, 1, -1).expand(5, 1, 1, -1), groups=5)
    ux, uy, uxx, uyy, uxy = local.unbind(dim=1)
    vx, vy, vxy = uxx - ux * ux, uyy - uy * uy, uxy - ux * uy
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return _back(s.mean(dim=(-2, -1)).reshape(batch_shape), np_in)


def pixel_metrics(true: Array, pred: Array, *, data_range: float) -> dict[str, Array]:
    """``mae``, ``mse``, ``psnr``, ``ssim`` and ``pearson_r`` of each image pair, by name (see each function)."""
    return {
        "mae": mae(true, pred),
        "mse": mse(true, pred),
        "psnr": psnr(true, pred, data_range=data_range),
        "ssim": ssim(true, pred, data_range=data_range),
        "pearson_r": pearson_r(true, pred),
    }


NORMALISE_PERCENTILES = (0.5, 99.5)
FLAT_RANGE = 1.0  # grey levels: a real image whose percentiles lie closer than this shows no structure


def is_flat(true: np.ndarray, *, low: float = NORMALISE_PERCENTILES[0], high: float = NORMALISE_PERCENTILES[1]) -> bool:
    """Whether the real image's percentiles lie less than ``FLAT_RANGE`` apart (a blank tile): the pixel level
    has no structure to compare there, so such fields are not scored at it (see ``evaluate.field``)."""
    lo, hi = np.percentile(true, [low, high])
    return float(hi - lo) < FLAT_RANGE


def normalise_pair(
    true: np.ndarray,
    pred: np.ndarray,
    *,
    low: float = NORMALISE_PERCENTILES[0],
    high: float = NORMALISE_PERCENTILES[1],
) -> tuple[np.ndarray, np.ndarray]:
    """Both images under the one affine map that sends the real image's ``low`` and ``high`` percentiles to 0
    and 1.

    Parameters
    ----------
    true, pred : ndarray ``[H, W]``
        Real and predicted stain, in grey levels.
    low, high : float
        Percentiles of ``true`` mapped to 0 and 1.

    Returns
    -------
    (ndarray, ndarray)
        float64 images; the data range is then 1. A prediction with the wrong brightness stays wrong, as it is
        scaled by the real image's range, not its own. A flat real image (``is_flat``) is mapped one grey level
        to one unit instead of by a vanishing range.

    References
    ----------
    .. [1] Weigert M. et al., "Content-aware image restoration: pushing the limits of fluorescence microscopy",
       Nature Methods 15, 1090–1097 (2018): percentile normalisation of microscopy images before comparison.
    """
    lo, hi = np.percentile(true, [low, high])
    scale = 1.0 / max(float(hi - lo), FLAT_RANGE)
    return (true.astype(np.float64) - lo) * scale, (pred.astype(np.float64) - lo) * scale
