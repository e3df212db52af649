"""Pixel metrics against a second implementation: skimage.metrics and scipy.stats.pearsonr."""

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage, stats
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from tests.conftest import isl_sample
from vsearch.evaluate.pixel import mae, mse, pearson_r, pixel_metrics, psnr, ssim


def _reference(true: np.ndarray, pred: np.ndarray, data_range: float) -> dict[str, np.ndarray]:
    rows = []
    for t, p in zip(true, pred, strict=True):
        rows.append(
            {
                "mae": np.abs(t - p).mean(),
                "mse": ((t - p) ** 2).mean(),
                "psnr": peak_signal_noise_ratio(t, p, data_range=data_range),
                "ssim": structural_similarity(
                    t, p, data_range=data_range, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
                ),
                "pearson_r": stats.pearsonr(t.ravel(), p.ravel()).statistic,
            }
        )
    return {k: np.array([r[k] for r in rows]) for k in rows[0]}


def _random_pairs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    true = ndimage.gaussian_filter(rng.random((4, 70, 90)), (0, 2, 2))
    pred = true + rng.normal(0, 0.05, true.shape) * np.linspace(0.2, 2, 4)[:, None, None]
    return true, pred


def _isl_pairs() -> tuple[np.ndarray, np.ndarray]:
    """Real crops: DAPI against a slightly defocused, rescaled copy, and two phase-contrast planes."""
    folder = isl_sample()
    dapi = np.array(Image.open(next(folder.glob("*DAPI*")))).astype(np.float64) / 65535
    z0 = np.array(Image.open(next(folder.glob("*z_depth-0,*")))).astype(np.float64) / 65535
    z6 = np.array(Image.open(next(folder.glob("*z_depth-6,*")))).astype(np.float64) / 65535
    crop = np.s_[300:428, 500:628]
    true = np.stack([dapi[crop], z0[crop]])
    pred = np.stack([0.9 * ndimage.gaussian_filter(dapi, 1.2)[crop], z6[crop]])
    return true, pred


@pytest.mark.parametrize("pairs", [_random_pairs, _isl_pairs], ids=["random", "isl_crops"])
@pytest.mark.parametrize("kind", ["numpy", "torch32", "torch64"])
def test_pixel_metrics_match_skimage_and_scipy(pairs, kind):
    true, pred = pairs()
    expected = _reference(true, pred, data_range=1.0)
    if kind == "numpy":
        got = pixel_metrics(true, pred, data_range=1.0)
    else:
        dtype = torch.float32 if kind == "torch32" else torch.float64
        got = {
            k: v.numpy()
            for k, v in pixel_metrics(
                torch.tensor(true, dtype=dtype), torch.tensor(pred, dtype=dtype), data_range=1.0
            ).items()
        }
    for name in expected:
        scale = max(1.0, float(np.abs(expected[name]).max())) if name == "psnr" else 1.0
        np.testing.assert_allclose(got[name], expected[name], atol=1e-4 * scale, err_msg=name)


def test_batched_leading_axes_and_data_range():
    true, pred = _random_pairs()
    true4, pred4 = true.reshape(2, 2, 70, 90), pred.reshape(2, 2, 70, 90)
    assert ssim(true4, pred4, data_range=1.0).shape == (2, 2)
    np.testing.assert_allclose(ssim(true4, pred4, data_range=1.0).ravel(), ssim(true, pred, data_range=1.0))
    ref = structural_similarity(
        true[0] * 1000, pred[0] * 1000, data_range=1000, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert ssim(true[:1] * 1000, pred[:1] * 1000, data_range=1000)[0] == pytest.approx(ref, abs=1e-6)


def test_identical_images_are_perfect():
    true, _ = _random_pairs()
    assert np.all(mae(true, true) == 0) and np.all(mse(true, true) == 0)
    assert np.all(np.isinf(psnr(true, true, data_range=1.0)))
    np.testing.assert_allclose(ssim(true, true, data_range=1.0), 1.0)
    np.testing.assert_allclose(pearson_r(true, true), 1.0)


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match=r"differ in shape: \(2, 32, 32\) vs \(2, 32, 31\)"):
        mae(np.zeros((2, 32, 32)), np.zeros((2, 32, 31)))
    with pytest.raises(ValueError, match="smaller than the 11-pixel SSIM window"):
        ssim(np.zeros((8, 8)), np.zeros((8, 8)), data_range=1.0)
