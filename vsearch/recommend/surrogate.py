"""A Gaussian-process surrogate of a search's objective over training-mix weights (and the model settings that
vary), with the latent score's uncertainty, closed-form leave-one-out predictions and expected improvement.

A GP rather than gradient-boosted trees (RegMix's LightGBM): a search gives tens of trials, not hundreds of proxy
runs, and a GP interpolates smoothly over the simplex from few points, learns the noise level from the data and
gives the predictive interval and expected improvement the recommendation needs; trees give neither."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.linalg import cho_solve, solve_triangular
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Kernel, Matern, WhiteKernel

LENGTH_SCALE_BOUNDS = (0.05, 20.0)  # in units of the weights (0–1) and of settings scaled to 0–1
NOISE_BOUNDS = (1e-6, 2.0)  # white noise, in units of the scores' variance
BELIEVED_NOISE = 1e-6  # a believed observation is exact, up to the jitter that keeps the covariance positive


@dataclass(frozen=True)
class Surrogate:
    """A fitted GP: predictions are of the mean score (the latent function), without seed noise."""

    signal: Kernel  # the fitted kernel without its white-noise term
    noise_variance: float  # the fitted white noise, in squared score units
    train: np.ndarray  # [n, p] features of the fitted trials
    observation_noise: np.ndarray  # [n] each training point's noise variance, standardised
    cholesky: np.ndarray  # lower Cholesky factor of the standardised training covariance (noise included)
    alpha: np.ndarray  # K⁻¹ (y − mean) / scale
    y_mean: float
    y_scale: float

    @property
    def noise_sd(self) -> float:
        """The seed-to-seed noise the GP attributes to the scores (their residual SD around the mean function)."""
        return float(np.sqrt(self.noise_variance))

    def predict(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of the latent (noise-free) score at each row of ``features``."""
        cross = self.signal(np.atleast_2d(features), self.train)
        mean = cross @ self.alpha * self.y_scale + self.y_mean
        v = solve_triangular(self.cholesky, cross.T, lower=True)
        variance = self.signal.diag(np.atleast_2d(features)) - np.einsum("ij,ij->j", v, v)
        return mean, np.sqrt(np.clip(variance, 0, None)) * self.y_scale

    @property
    def scores(self) -> np.ndarray:
        """The training scores, recovered from α (K α is the standardised scores)."""
        return self.cholesky @ (self.cholesky.T @ self.alpha) * self.y_scale + self.y_mean

    def believing(self, features: np.ndarray) -> Surrogate:
        """The surrogate as if its own predicted mean had been observed exactly at ``features`` (the kriging
        believer): no uncertainty is left there, so the next proposal goes elsewhere."""
        mean, _ = self.predict(features)
        return conditioned(
            self.signal, self.noise_variance, np.vstack([self.train, np.atleast_2d(features)]),
            np.concatenate([self.scores, mean]), self.y_mean, self.y_scale,
            np.concatenate([self.observation_noise, np.full(len(mean), BELIEVED_NOISE)]),
        )  # fmt: skip

    def leave_one_out(self) -> tuple[np.ndarray, np.ndarray]:
        """Each trial's predicted score (mean, SD of the observation) from all the others, in closed form
        (Rasmussen & Williams 2006, eq. 5.12) at the fitted hyperparameters."""
        inverse = cho_solve((self.cholesky, True), np.eye(len(self.train)))
        diagonal = np.diag(inverse)
        mean = self.scores - self.alpha / diagonal * self.y_scale
        return mean, np.sqrt(1 / diagonal) * self.y_scale


def fit_surrogate(features: np.ndarray, scores: np.ndarray, *, seed: int = 0) -> Surrogate:
    """Fits a Matérn-5/2 GP with one length scale per feature and learnt white noise to standardised scores."""
    features, scores = np.asarray(features, float), np.asarray(scores, float)
    if len(scores) < 2:
        raise ValueError(f"a surrogate needs at least 2 scored trials, got {len(scores)}")
    y_mean, y_scale = float(scores.mean()), float(scores.std()) or 1.0
    kernel = ConstantKernel(1.0, (1e-2, 1e2)) * Matern(
        np.full(features.shape[1], 0.5), LENGTH_SCALE_BOUNDS, nu=2.5
    ) + WhiteKernel(0.1, NOISE_BOUNDS)
    gp = GaussianProcessRegressor(kernel, normalize_y=False, n_restarts_optimizer=4, random_state=seed)
    with warnings.catch_warnings():  # a flat objective drives length scales to their bound: expected, not an error
        warnings.simplefilter("ignore", ConvergenceWarning)
        gp.fit(features, (scores - y_mean) / y_scale)
    return conditioned(gp.kernel_.k1, float(gp.kernel_.k2.noise_level) * y_scale**2, features, scores, y_mean, y_scale)


def conditioned(
    signal: Kernel,
    noise_variance: float,
    features: np.ndarray,
    scores: np.ndarray,
    y_mean: float,
    y_scale: float,
    observation_noise: np.ndarray | None = None,
) -> Surrogate:
    """The GP with fixed hyperparameters conditioned on ``scores`` at ``features``; each observation has the
    fitted noise unless ``observation_noise`` (standardised variances) says otherwise."""
    if observation_noise is None:
        observation_noise = np.full(len(features), noise_variance / y_scale**2)
    cholesky = np.linalg.cholesky(signal(features) + np.diag(observation_noise))
    alpha = cho_solve((cholesky, True), (np.asarray(scores, float) - y_mean) / y_scale)
    return Surrogate(
        signal, noise_variance, np.asarray(features, float), observation_noise, cholesky, alpha, y_mean, y_scale
    )


def rank_correlation(predicted: np.ndarray, observed: np.ndarray) -> float:
    """Spearman's rank correlation; NaN when either side is constant."""
    if np.ptp(predicted) == 0 or np.ptp(observed) == 0:
        return float("nan")
    return float(stats.spearmanr(predicted, observed).statistic)


def expected_improvement(mean: np.ndarray, sd: np.ndarray, best: float) -> np.ndarray:
    """E[max(f − best, 0)] under f ~ N(mean, sd²); 0 where sd is 0 and mean ≤ best."""
    sd = np.asarray(sd, float)
    gain = np.asarray(mean, float) - best
    z = np.divide(gain, sd, out=np.zeros_like(gain), where=sd > 0)
    return np.where(sd > 0, gain * stats.norm.cdf(z) + sd * stats.norm.pdf(z), np.maximum(gain, 0))
