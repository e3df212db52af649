"""The questions Tonks et al. asked of their generalisation matrix, answered from a study's numbers. A difference
counts only when a two-sided paired t-test over seeds finds it at the 5% level (its mean beyond Student's
t(0.975, seeds − 1) standard errors: 12.7 for 2 seeds, 4.30 for 3, 2.78 for 5); otherwise the answer says the
seeds cannot tell.

The transfer questions compare models on different test conditions, and some conditions are harder to predict
than others whatever a model trained on (at the feature level toxic fields score low even in distribution). So
transfer is scored as the loss against the test condition's own model: a model's score minus the score, on the
same test wells, of the same model config and seed trained on that condition alone (0: transfers perfectly)."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

import pandas as pd
from scipy import stats

from vsearch.search.composition import NON_TOXIC
from vsearch.study.matrix import UNSEEN_BOTH, UNSEEN_CELL_TYPE, paired_difference, per_seed_scores
from vsearch.study.spec import TOXIC

SIGNIFICANCE_LEVEL = 0.05  # two-sided, paired over seeds
NO_CLEAR_DIFFERENCE = "no clear difference"


@dataclass(frozen=True)
class Answer:
    question: str
    level: str
    model: str
    answer: str
    evidence: str


def _single_condition(composition: str) -> str | None:
    weights = {c: w for c, w in json.loads(composition).items() if w > 0}
    return next(iter(weights)) if len(weights) == 1 else None


def critical_t(seeds: int) -> float:
    """The standard errors a paired mean difference over ``seeds`` must exceed to count."""
    return float(stats.t.ppf(1 - SIGNIFICANCE_LEVEL / 2, seeds - 1))


def _verdict(mean: float, se: float, n: int, yes: str, no: str) -> str:
    if n < 2:
        return f"cannot tell from {n} seed(s)"
    return (yes if mean > 0 else no) if abs(mean) > critical_t(n) * se else NO_CLEAR_DIFFERENCE


def _evidence(a_name: str, a: pd.Series, b_name: str, b: pd.Series, sign: str = "+") -> str:
    mean, se, n = paired_difference(a, b)
    spread = f" ± {se:.3f} (SE, {n} seeds)" if n > 1 else f" ({n} seed)"
    return f"{a_name} {a.mean():{sign}.3f} vs {b_name} {b.mean():{sign}.3f}: difference {mean:+.3f}{spread}"


def _by_seed(rows: pd.DataFrame) -> pd.Series:
    return rows.groupby("seed").score.mean()


def answer_questions(matrix: pd.DataFrame, level: str = "pixel") -> list[Answer]:
    """Answers for each model of the study, on ``level`` (averaged over stains); a question whose training sets
    the study lacks is left out."""
    per_seed = _per_seed_by_training(matrix, level)
    losses = _against_own_model(per_seed[per_seed.trained_on.notna()])
    answers = []
    for model, rows in per_seed.groupby("model", sort=False):
        single = losses[losses.model == model]
        answers += [a for a in (_phenotype(single, model), _worst_type(single, model), _both(single, model)) if a]
        pooled = _pooling(rows, model)
        if pooled:
            answers.append(pooled)
    return [replace(answer, level=level) for answer in answers]


def transfer_losses(matrix: pd.DataFrame, level: str = "pixel") -> pd.DataFrame:
    """Per model, seed and test condition, each single-condition model's loss against the test condition's own
    model on ``level`` (mean over stains), in ``score``; ``trained_on`` names the training condition."""
    per_seed = _per_seed_by_training(matrix, level)
    return _against_own_model(per_seed[per_seed.trained_on.notna()])


def _per_seed_by_training(matrix: pd.DataFrame, level: str) -> pd.DataFrame:
    per_seed = per_seed_scores(matrix, level, None)
    singles = matrix.drop_duplicates("training_set").set_index("training_set").composition.map(_single_condition)
    return per_seed.assign(trained_on=per_seed.training_set.map(singles))


def _against_own_model(single: pd.DataFrame) -> pd.DataFrame:
    """Single-condition rows with ``score`` replaced by the transfer loss; a test condition that no model of the
    same config and seed trained on alone drops out."""
    keys = ["model", "seed", "test_condition"]
    own = single[single.trained_on == single.test_condition].set_index(keys).score
    reference = own.reindex(pd.MultiIndex.from_frame(single[keys])).to_numpy()
    return single.assign(score=single.score.to_numpy() - reference).dropna(subset=["score"])


def _compare(question: str, model: str, named: tuple[str, pd.DataFrame, str, pd.DataFrame], yes: str, no: str):
    """The answer to whether the first named set of scores beats the second, paired by seed."""
    a_name, a_rows, b_name, b_rows = named
    if a_rows.empty or b_rows.empty:
        return None
    a, b = _by_seed(a_rows), _by_seed(b_rows)
    mean, se, n = paired_difference(a, b)
    return Answer(question, "", model, _verdict(mean, se, n, yes, no), _evidence(a_name, a, b_name, b))


def _phenotype(single: pd.DataFrame, model: str) -> Answer | None:
    trained_phenotype = single.trained_on.str.split("/").str[1]
    tested_phenotype = single.test_condition.str.split("/").str[1]
    forward = single[(trained_phenotype == NON_TOXIC) & (tested_phenotype == TOXIC)]
    reverse = single[(trained_phenotype == TOXIC) & (tested_phenotype == NON_TOXIC)]
    return _compare(
        "Does non-toxic training transfer to toxic better than the reverse?", model,
        ("non-toxic → toxic", forward, "toxic → non-toxic", reverse), "yes", "no: toxic training transfers better",
    )  # fmt: skip


def _worst_type(single: pd.DataFrame, model: str) -> Answer | None:
    trained_type = single.trained_on.str.split("/").str[0]
    other_type = single[trained_type != single.test_condition.str.split("/").str[0]]
    if other_type.empty:
        return None
    per_type = {t: _by_seed(rows) for t, rows in other_type.groupby(trained_type[other_type.index])}
    if len(per_type) < 2:
        return None
    ranked = sorted(per_type, key=lambda t: per_type[t].mean())
    worst, next_worst = ranked[0], ranked[1]
    mean, se, n = paired_difference(per_type[next_worst], per_type[worst])
    verdict = _verdict(mean, se, n, worst, "")
    if verdict == NO_CLEAR_DIFFERENCE:
        verdict = f"{NO_CLEAR_DIFFERENCE} between {worst} and {next_worst}"
    return Answer(
        "Which cell type's models transfer worst to other cell types?",
        "",
        model,
        verdict,
        _evidence(f"{worst}-trained", per_type[worst], f"{next_worst}-trained", per_type[next_worst])
        + "; all: " + ", ".join(f"{t} {per_type[t].mean():+.3f}" for t in ranked),
    )  # fmt: skip


def _both(single: pd.DataFrame, model: str) -> Answer | None:
    both, type_only = single[single["shift"] == UNSEEN_BOTH], single[single["shift"] == UNSEEN_CELL_TYPE]
    return _compare(
        "Does an unseen cell type and phenotype score higher than an unseen cell type alone?", model,
        ("unseen type and phenotype", both, "unseen type", type_only), "yes", "no: it scores lower",
    )  # fmt: skip


def _pooling(rows: pd.DataFrame, model: str) -> Answer | None:
    single = rows[rows.trained_on.notna()]
    pooled_sets = [s for s in dict.fromkeys(rows.training_set) if s not in set(single.training_set)]
    if not pooled_sets or single.empty:
        return None
    means = {s: _by_seed(rows[rows.training_set == s]) for s in dict.fromkeys(rows.training_set)}
    best_pooled = max(pooled_sets, key=lambda s: means[s].mean())
    best_single = max(dict.fromkeys(single.training_set), key=lambda s: means[s].mean())
    mean, se, n = paired_difference(means[best_pooled], means[best_single])
    return Answer(
        "Does pooling conditions beat the best single condition (over every test condition)?",
        "",
        model,
        _verdict(mean, se, n, f"yes: {best_pooled}", f"no: {best_single} alone does better"),
        _evidence(best_pooled, means[best_pooled], best_single, means[best_single], sign=""),
    )


def answers_table(answers: list[Answer]) -> pd.DataFrame:
    return pd.DataFrame([a.__dict__ for a in answers], columns=["question", "level", "model", "answer", "evidence"])
