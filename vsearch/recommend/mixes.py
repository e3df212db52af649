"""The recommended training mix of a finished search or study: a surrogate of the objective over the mix weights
(at the best trial's model settings), the mix it predicts best with an interval, whether that beats the best mix
tried beyond the seed-to-seed noise, how far the surrogate can be trusted, and the next mixes worth trying."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from vsearch.recommend.simplex import simplex_candidates
from vsearch.recommend.surrogate import Surrogate, expected_improvement, fit_surrogate, rank_correlation
from vsearch.search.composition import composition_counts, normalise

SIGNIFICANCE_SE = 2.0  # as for the study's answers: a difference counts beyond two standard errors
INTERVAL_Z = 1.96  # the predicted score's 95 % interval
SAME_MIX = 0.02  # L1 distance under which two mixes count as the same
PROPOSAL_SPACING = 0.1  # L1 distance kept between proposed mixes, so each run tells something new
MIN_TRIALS = 8  # fewer unrepeated trials measure neither the seed noise nor the surrogate's ranking
TRUSTED_RANK_CORRELATION = 0.5  # a surrogate that ranks held-out trials worse than this is not to be trusted
LOG_SETTINGS = ("lr",)  # settings compared on a log scale


@dataclass(frozen=True)
class MixScores:
    """Scored trials of one objective: ``weights`` [n, conditions], ``scores`` [n], each trial's model settings
    (the config keys that can differ between trials), training seed and id."""

    conditions: list[str]
    weights: np.ndarray
    scores: np.ndarray
    settings: list[dict]
    seeds: list[int]
    trial_ids: list[str]
    objective: str

    def __post_init__(self) -> None:
        if len(self.scores) < 3:
            raise ValueError(f"{self.objective}: {len(self.scores)} scored trial(s); a recommendation needs 3 or more")


@dataclass(frozen=True)
class ProposedMix:
    weights: dict[str, float]
    predicted: float
    sd: float
    expected_improvement: float


@dataclass(frozen=True)
class Recommendation:
    objective: str
    weights: dict[str, float]
    predicted: float  # the surrogate's mean score of the mix
    interval: tuple[float, float]  # its 95 % interval (of the mean score, seed noise excluded)
    settings: dict  # the model settings held fixed: the best tried mix's
    best_tried: dict[str, float]
    best_tried_score: float  # mean over its runs
    best_tried_runs: int
    difference: float  # predicted minus the best tried mix's mean
    difference_se: float
    distinguishable: bool
    noise_sd: float  # seed-to-seed SD of a trial's score
    noise_source: str
    repeated_mixes: int  # mixes run at more than one seed, which measure noise_sd (0: it comes from elsewhere)
    loo_spearman: float  # leave-one-trial-out rank correlation of the surrogate's predictions with the scores
    trials: int
    fields: dict[str, int] | None = None  # fields to image per condition for the budget
    next_mixes: list[ProposedMix] = field(default_factory=list)

    @property
    def trusted(self) -> bool:
        return bool(self.trials >= MIN_TRIALS and self.loo_spearman > TRUSTED_RANK_CORRELATION)

    @property
    def verdict(self) -> str:
        if not np.isfinite(self.noise_sd):
            return (
                f"cannot tell whether any mix beats the best mix tried: {self.noise_source} (repeat mixes with "
                f"other seeds, e.g. seeds_per_config: 2 in the search space, or run at least {MIN_TRIALS} trials)"
            )
        if self.distinguishable:
            return (
                f"the recommended mix is predicted to beat the best mix tried by {self.difference:+.3f} "
                f"± {self.difference_se:.3f} (more than {SIGNIFICANCE_SE:g} SE)"
            )
        return (
            f"no mix is distinguishable from the best mix tried: the recommended one differs by "
            f"{self.difference:+.3f} ± {self.difference_se:.3f}, within {SIGNIFICANCE_SE:g} SE of the seed noise"
        )


def settings_features(settings: list[dict]) -> tuple[np.ndarray, list[str]]:
    """Features of the settings that vary between trials, each scaled to [0, 1] (``lr`` on a log scale;
    categories one-hot), and their names; settings that never vary give no feature."""
    table = pd.DataFrame(settings)
    columns, names = [], []
    for key in table.columns:
        values = table[key]
        if values.astype(str).nunique() < 2:
            continue
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            numbers = np.log10(values.astype(float)) if key in LOG_SETTINGS else values.astype(float)
            columns.append(((numbers - numbers.min()) / np.ptp(numbers)).to_numpy())
            names.append(key)
        else:
            for category in sorted(values.astype(str).unique()):
                columns.append((values.astype(str) == category).to_numpy(float))
                names.append(f"{key}={category}")
    return (np.column_stack(columns) if columns else np.zeros((len(table), 0))), names


def mix_keys(mixes: MixScores) -> list[str]:
    """One key per trial, the same for trials that repeat a mix (to 4 decimals) and its settings."""
    return [
        json.dumps([np.round(w, 4).tolist(), s], sort_keys=True)
        for w, s in zip(mixes.weights, mixes.settings, strict=True)
    ]


def seed_noise(mixes: MixScores) -> tuple[float, int] | None:
    """Pooled within-group SD over seeds of trials that repeat a mix and its settings (runs at the same seed are
    averaged first: they differ by nondeterminism, not by seed), and the number of groups repeated with another
    seed; None when nothing was."""
    runs = pd.DataFrame({"mix": mix_keys(mixes), "seed": mixes.seeds, "score": mixes.scores})
    groups = runs.groupby(["mix", "seed"]).score.mean().groupby(level="mix")
    dof = groups.count() - 1
    if dof.sum() == 0:
        return None
    return float(np.sqrt((groups.var(ddof=1).fillna(0) * dof).sum() / dof.sum())), int((dof > 0).sum())


@dataclass(frozen=True)
class MixModel:
    """The surrogate of a ``MixScores`` and each trial's settings features."""

    surrogate: Surrogate
    settings_x: np.ndarray  # [n trials, settings features]

    def predict(self, weights: np.ndarray, settings_of: int) -> tuple[np.ndarray, np.ndarray]:
        """Mean and SD of the score of each mix in ``weights`` at the settings of trial row ``settings_of``."""
        weights = np.atleast_2d(weights)
        settings = np.repeat(self.settings_x[settings_of : settings_of + 1], len(weights), axis=0)
        return self.surrogate.predict(np.hstack([weights, settings]))


def fit_mix_model(mixes: MixScores, *, seed: int = 0) -> MixModel:
    settings_x, _ = settings_features(mixes.settings)
    return MixModel(fit_surrogate(np.hstack([mixes.weights, settings_x]), mixes.scores, seed=seed), settings_x)


def best_tried_rows(mixes: MixScores) -> np.ndarray:
    """The rows of the mix (with its settings) whose runs score best on average."""
    keys = pd.Series(mix_keys(mixes))
    best_key = pd.Series(mixes.scores).groupby(keys).mean().idxmax()
    return np.flatnonzero(keys == best_key)


def recommend_mix(
    mixes: MixScores, *, budget: int | None = None, top: int = 3, seed: int = 0, model: MixModel | None = None
) -> Recommendation:
    """The recommendation for ``mixes`` (from ``model``, fitted here if not given); ``budget`` fields are split
    over the conditions; ``top`` next mixes are proposed by expected improvement, each believing the surrogate's
    prediction of the ones before."""
    model = model or fit_mix_model(mixes, seed=seed)
    surrogate, settings_x = model.surrogate, model.settings_x
    loo_mean, _ = surrogate.leave_one_out()

    best_rows = best_tried_rows(mixes)
    best_row, best_score = best_rows[0], float(mixes.scores[best_rows].mean())

    repeats = seed_noise(mixes)
    if repeats:
        noise_sd, noise_source = repeats[0], f"{repeats[1]} repeated mix(es), pooled over seeds"
    elif len(mixes.scores) >= MIN_TRIALS:
        noise_sd, noise_source = (
            surrogate.noise_sd,
            "the surrogate's noise term (no mix was repeated with another seed)",
        )
    else:
        noise_sd, noise_source = (
            float("nan"),
            f"the seed noise is unmeasured ({len(mixes.scores)} trials, none repeated)",
        )

    candidates = simplex_candidates(len(mixes.conditions), seed=seed)
    mean, sd = model.predict(candidates, best_row)
    pick = int(np.argmax(mean))
    weights = candidates[pick]
    best_weights = mixes.weights[best_row]
    same = np.abs(weights - best_weights).sum() < SAME_MIX
    difference = float(mean[pick] - best_score)
    difference_se = float(np.sqrt(sd[pick] ** 2 + noise_sd**2 / len(best_rows)))
    named = _named(mixes.conditions, weights)
    return Recommendation(
        objective=mixes.objective,
        weights=named,
        predicted=float(mean[pick]),
        interval=(float(mean[pick] - INTERVAL_Z * sd[pick]), float(mean[pick] + INTERVAL_Z * sd[pick])),
        settings=mixes.settings[best_row],
        best_tried=_named(mixes.conditions, best_weights),
        best_tried_score=best_score,
        best_tried_runs=len(best_rows),
        difference=difference,
        difference_se=difference_se,
        distinguishable=bool(not same and difference > SIGNIFICANCE_SE * difference_se),  # False when SE is NaN
        noise_sd=noise_sd,
        noise_source=noise_source,
        repeated_mixes=repeats[1] if repeats else 0,
        loo_spearman=rank_correlation(loo_mean, mixes.scores),
        trials=len(mixes.scores),
        fields=composition_counts(named, budget) if budget else None,
        next_mixes=propose_mixes(surrogate, candidates, settings_x[best_row], mixes.conditions, top),
    )


def propose_mixes(
    surrogate: Surrogate, candidates: np.ndarray, settings_x: np.ndarray, conditions: list[str], count: int
) -> list[ProposedMix]:
    """``count`` mixes by expected improvement over the best predicted score of a tried trial, each chosen as
    if the surrogate's prediction at the ones before had been observed (the kriging believer) and at least
    ``PROPOSAL_SPACING`` from them."""
    at = np.hstack([candidates, np.repeat(settings_x[None], len(candidates), axis=0)])
    open_ = np.ones(len(candidates), bool)
    proposals = []
    for _ in range(min(count, len(candidates))):
        if not open_.any():
            break
        incumbent = float(surrogate.predict(surrogate.train)[0].max())
        mean, sd = surrogate.predict(at)
        gain = np.where(open_, expected_improvement(mean, sd, incumbent), -np.inf)
        pick = int(np.argmax(gain))
        open_ &= np.abs(candidates - candidates[pick]).sum(axis=1) >= PROPOSAL_SPACING
        proposals.append(
            ProposedMix(_named(conditions, candidates[pick]), float(mean[pick]), float(sd[pick]), float(gain[pick]))
        )
        surrogate = surrogate.believing(at[pick : pick + 1])
    return proposals


def _named(conditions: list[str], weights: np.ndarray) -> dict[str, float]:
    return normalise({c: float(w) for c, w in zip(conditions, np.round(weights, 4), strict=True) if w > 0})
