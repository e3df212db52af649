"""The recommended mix on trials tables whose score is a known function of the weights plus seed noise."""

import json
import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.browser import render
from vsearch.cli import app
from vsearch.config import load_yaml
from vsearch.recommend.continuation import continuation_space
from vsearch.recommend.mixes import MixScores, recommend_mix, seed_noise, settings_features
from vsearch.recommend.simplex import simplex_lattice
from vsearch.recommend.sources import search_mix_scores, study_mix_scores, study_objective_conditions
from vsearch.recommend.surrogate import conditioned, expected_improvement, fit_surrogate
from vsearch.search.results import write_space, write_trials
from vsearch.search.space import ResolvedSpace, SearchSpace

NAN = float("nan")

CONDITIONS = ["breast/non_toxic", "lung/non_toxic", "ovarian/non_toxic"]
OPTIMUM = np.array([0.5, 0.3, 0.2])


def truth(weights: np.ndarray) -> np.ndarray:
    """A concave bowl on the simplex: 0.8 at OPTIMUM, falling with the squared distance from it."""
    return 0.8 - 1.5 * ((weights - OPTIMUM) ** 2).sum(axis=-1)


def trials(score, *, n: int = 30, noise: float, repeats: int = 1, seed: int = 0) -> MixScores:
    rng = np.random.default_rng(seed)
    mixes = np.repeat(rng.dirichlet(np.ones(3), n), repeats, axis=0)
    scores = score(mixes) + noise * rng.standard_normal(len(mixes))
    return MixScores(
        conditions=CONDITIONS, weights=mixes, scores=scores, settings=[{"lr": 0.003}] * len(mixes),
        seeds=list(np.tile(np.arange(repeats), n)), trial_ids=[str(i) for i in range(len(mixes))],
        objective="composite",
    )  # fmt: skip


def test_the_recommendation_lands_near_the_known_optimum_and_its_interval_covers_the_truth():
    rec = recommend_mix(trials(truth, noise=0.01, repeats=2), budget=48)
    weights = np.array([rec.weights.get(c, 0.0) for c in CONDITIONS])
    assert np.abs(weights - OPTIMUM).sum() < 0.15
    low, high = rec.interval
    assert low <= truth(weights) <= high
    assert sum(rec.fields.values()) == 48 and set(rec.fields) == set(rec.weights)
    assert rec.noise_sd == pytest.approx(0.01, rel=0.4)  # pooled over the 30 repeated mixes
    assert rec.noise_source.startswith("30 repeated mix")
    assert rec.loo_spearman > 0.8
    assert len(rec.next_mixes) == 3
    assert len({tuple(sorted(m.weights.items())) for m in rec.next_mixes}) == 3  # the believer spreads them


def test_a_flat_table_has_no_distinguishable_mix():
    rec = recommend_mix(trials(lambda w: np.full(len(w), 0.6), noise=0.02, repeats=2))
    assert not rec.distinguishable
    assert rec.verdict.startswith("no mix is distinguishable")
    assert abs(rec.predicted - 0.6) < 0.02


def test_a_mix_far_better_than_any_tried_is_distinguishable():
    """Only mixes far from the optimum were tried; the bowl's shape still points to it."""
    rng = np.random.default_rng(3)
    mixes = rng.dirichlet(np.ones(3), 200)
    far = mixes[np.abs(mixes - OPTIMUM).sum(axis=1) > 0.5][:25]
    table = MixScores(CONDITIONS, far, truth(far) + 0.002 * rng.standard_normal(len(far)),
                      [{}] * len(far), [0] * len(far), [str(i) for i in range(len(far))], "composite")  # fmt: skip
    rec = recommend_mix(table)
    assert rec.distinguishable and rec.difference > 0
    assert rec.noise_source.startswith("the surrogate's noise term")


def test_seed_noise_is_the_pooled_within_mix_sd():
    table = MixScores(CONDITIONS, np.repeat(np.eye(3), 2, axis=0), np.array([0.5, 0.7, 0.1, 0.1, 0.3, 0.4]),
                      [{}] * 6, [0, 1] * 3, list("abcdef"), "pixel")  # fmt: skip
    sd, groups = seed_noise(table)
    # by hand: variances 0.02, 0, 0.005 with one degree of freedom each
    assert sd == pytest.approx(np.sqrt((0.02 + 0 + 0.005) / 3)) and groups == 3


def test_runs_of_a_mix_at_one_seed_are_not_seed_noise():
    """Mix a ran twice at seed 0 and once at seed 1; mix b twice at seed 0 only."""
    weights = np.array([np.eye(3)[0]] * 3 + [np.eye(3)[1]] * 2)
    table = MixScores(CONDITIONS, weights, np.array([0.5, 0.7, 0.2, 0.3, 0.9]), [{}] * 5, [0, 0, 1, 0, 0],
                      list("abcde"), "pixel")  # fmt: skip
    sd, groups = seed_noise(table)
    # by hand: mix a's seed means 0.6 and 0.2 (variance 0.08, one degree of freedom); mix b has no second seed
    assert sd == pytest.approx(np.sqrt(0.08)) and groups == 1
    assert seed_noise(MixScores(CONDITIONS, weights[[3, 4, 4]], np.array([0.3, 0.9, 0.6]), [{}] * 3, [0, 0, 0],
                                list("def"), "pixel")) is None  # fmt: skip


def test_settings_that_vary_become_scaled_features():
    x, names = settings_features([{"lr": 1e-3, "depth": 3, "norm": "batch", "epochs": 8},
                                  {"lr": 1e-2, "depth": 5, "norm": "group", "epochs": 8}])  # fmt: skip
    assert names == ["lr", "depth", "norm=batch", "norm=group"]
    np.testing.assert_allclose(x, [[0, 0, 1, 0], [1, 1, 0, 1]])


def test_leave_one_out_matches_refitting_without_the_trial():
    rng = np.random.default_rng(0)
    x = rng.dirichlet(np.ones(3), 12)
    y = truth(x) + 0.01 * rng.standard_normal(12)
    surrogate = fit_surrogate(x, y)
    loo_mean, _ = surrogate.leave_one_out()
    for i in (0, 5):
        keep = np.arange(12) != i
        refit = conditioned(surrogate.signal, surrogate.noise_variance, x[keep], y[keep], surrogate.y_mean,
                            surrogate.y_scale)  # fmt: skip
        assert refit.predict(x[i : i + 1])[0][0] == pytest.approx(loo_mean[i], abs=1e-8)


def test_expected_improvement_by_hand():
    # mean = best: sd · φ(0); sd 0: the plain gain
    np.testing.assert_allclose(expected_improvement(np.array([0.5, 0.7, 0.4]), np.array([0.1, 0.0, 0.0]), 0.5),
                               [0.1 / np.sqrt(2 * np.pi), 0.2, 0.0])  # fmt: skip


def test_the_lattice_is_every_multiple_of_the_step():
    grid = simplex_lattice(3, 0.2)
    assert len(grid) == 21 and np.allclose(grid.sum(axis=1), 1)
    assert len(np.unique(np.round(grid, 6), axis=0)) == 21
    with pytest.raises(ValueError, match=r"step 0\.3 does not divide 1"):
        simplex_lattice(3, 0.3)


def search_trials(n: int = 12, seed: int = 0) -> pd.DataFrame:
    """A search's trials table whose composite is ``truth`` of the weights, plus a failed trial and one stopped
    early (neither may count)."""
    rng = np.random.default_rng(seed)
    mixes = rng.dirichlet(np.ones(3), n + 2)
    rows = []
    for i, w in enumerate(mixes):
        status = "failed" if i == n else "stopped_early" if i == n + 1 else "completed"
        rows.append({
            "trial_id": f"t{i}", "status": status, "error": "",
            "composite": float(truth(w)) if status == "completed" else NAN,
            "pixel": 0.5, "instance": NAN, "feature": 0.4,
            "config": json.dumps({"family": "unet", "depth": 3, "lr": 0.003, "epochs": 4, "batch_size": 16}),
            "composition": json.dumps(dict(zip(CONDITIONS, w.tolist(), strict=True))),
            **{f"w/{c}": float(v) for c, v in zip(CONDITIONS, w, strict=True)},
        })  # fmt: skip
    return pd.DataFrame(rows)


def test_search_trials_become_mix_scores_of_the_completed_finite_trials():
    table = search_trials()
    mixes = search_mix_scores(table)
    assert mixes.trial_ids == [f"t{i}" for i in range(12)] and mixes.conditions == CONDITIONS
    np.testing.assert_allclose(mixes.scores, truth(mixes.weights))
    assert mixes.settings[0] == {"family": "unet", "depth": 3, "lr": 0.003, "epochs": 4, "batch_size": 16}
    with pytest.raises(ValueError, match="instance: 0 scored trial"):
        search_mix_scores(table, "instance")
    with pytest.raises(ValueError, match="objective 'assay' is not one of composite, pixel, instance, feature"):
        search_mix_scores(table, "assay")


def test_a_studys_objective_is_its_score_on_the_conditions_no_training_set_trains_on():
    cells = pd.DataFrame({"trial_id": ["a", "b", "c"], "model": "m", "seed": 0, "status": "completed", "composition": [
        json.dumps({"lung/non_toxic": 1.0}), json.dumps({"lung/non_toxic": 0.5, "breast/non_toxic": 0.5}),
        json.dumps({"breast/non_toxic": 1.0})]})  # fmt: skip
    rows = []
    for trial_id, base in (("a", 0.2), ("b", 0.4), ("c", 0.6)):
        for condition, bonus in (("lung/non_toxic", 0.3), ("lung/toxic", 0.0), ("breast/toxic", 0.1)):
            for level, shift in (("pixel", 0.0), ("instance", 0.1), ("feature", -0.1), ("assay", 0.5)):
                rows.append({"trial_id": trial_id, "test_condition": condition, "stain": "nuclei", "level": level,
                             "score": base + bonus + shift})  # fmt: skip
    matrix = pd.DataFrame(rows)
    assert study_objective_conditions(cells, matrix) == ["breast/toxic", "lung/toxic"]
    mixes = study_mix_scores(cells, matrix)
    # by hand: the toxic conditions' mean is base + 0.05 at every field level, whose shifts cancel; assay is left out
    np.testing.assert_allclose(mixes.scores, [0.25, 0.45, 0.65])
    np.testing.assert_allclose(study_mix_scores(cells, matrix, "instance").scores, [0.35, 0.55, 0.75])
    assert mixes.conditions == ["breast/non_toxic", "lung/non_toxic"]
    np.testing.assert_allclose(mixes.weights, [[0, 1], [0.5, 0.5], [1, 0]])


def test_the_next_mixes_become_a_grid_search_space_with_the_best_settings():
    from tests.test_space import CONDITIONS as SCREEN
    from tests.test_space import space

    rec = recommend_mix(search_mix_scores(search_trials(20)), top=2)
    original = SearchSpace(**space(optim={"lr": {"low": 0.001, "high": 0.01, "log": True}})).model_dump(mode="json")
    continued = SearchSpace(**continuation_space(original, rec, "/tmp/results-next"))
    resolved = ResolvedSpace(continued, SCREEN)
    assert resolved.grid() == {"composition": ["mix:next-1", "mix:next-2"]}  # nothing else varies
    assert resolved.preset_weights("mix:next-1") == pytest.approx(rec.next_mixes[0].weights)
    assert continued.optim.lr == 0.003 and continued.model.depth == [3] and continued.num_trials == 2
    assert continued.results == "/tmp/results-next" and original["composition"]["mixes"] == {}
    assert continued.seeds_per_config == 2  # no mix of the search was repeated: the next ones measure the noise


@pytest.mark.parametrize(
    ("mixes", "message"),
    [
        ({"half": {"lung/non_toxic": 0.5}}, "mix 'half': composition weights sum to 0.5"),
        ({"held": {"lung/toxic": 1.0}}, "composition.mixes.held: 'lung/toxic' is not a trainable condition"),
        ({"odd": {"liver/toxic": 1.0}}, "composition.mixes.odd: unknown condition 'liver/toxic'"),
    ],
)
def test_listed_mixes_are_checked_naming_the_mix(mixes, message):
    from tests.test_space import CONDITIONS as SCREEN
    from tests.test_space import space

    with pytest.raises(ValueError, match=re.escape(message)):
        ResolvedSpace(SearchSpace(**space(composition={"mixes": mixes, "sample_weights": False})), SCREEN)


def test_cli_recommends_splits_the_budget_and_writes_the_next_search(tmp_path):
    from tests.test_space import space

    results = str(tmp_path / "search")
    write_trials(search_trials(15), results)
    write_space(results, SearchSpace(**space()).model_dump(mode="json"))
    run = CliRunner().invoke(app, ["recommend", results, "--budget", "30", "--top", "2"])
    assert run.exit_code == 0, run.output
    assert "recommended mix" in run.output and "next mixes worth trying" in run.output
    saved = json.loads((tmp_path / "search" / "recommendation.json").read_text())
    assert sum(saved["fields"].values()) == 30 and saved["trials"] == 15
    weights = np.array([saved["weights"].get(c, 0.0) for c in CONDITIONS])
    assert np.abs(weights - OPTIMUM).sum() < 0.3  # 15 noise-free trials of the bowl
    continued = load_yaml(tmp_path / "search" / "next_search.yaml", SearchSpace)
    assert list(continued.composition.mixes) == ["next-1", "next-2"]
    missing = CliRunner().invoke(app, ["recommend", str(tmp_path / "nothing")])
    assert missing.exit_code == 2 and "trials.parquet not found" in missing.output


def test_a_search_report_ends_with_the_recommendation_on_a_ternary_map(tmp_path):
    """Rendered in headless Chromium: the ternary figure draws beside the others, with no script error."""
    table = search_trials(12).assign(
        composition_preset="sampled", held_out=json.dumps(["lung/toxic"]),
        **{"score/lung/toxic/nuclei/pixel": lambda t: t.composite},
    )  # fmt: skip
    results = tmp_path / "search"
    write_trials(table, str(results))
    run = CliRunner().invoke(app, ["report", str(results)])
    assert run.exit_code == 0, run.output
    page = (results / "report.html").read_text()
    section = page[page.index("<h2>Recommended training mix</h2>") :]
    assert "<b>Recommended mix</b> (composite, from 12 trials)" in section and "Next mixes worth trying" in section
    assert '"type":"scatterternary"' in section
    rendered = render(results / "report.html")
    assert rendered.plots == page.count('class="plotly-graph-div"') and rendered.console == []
    assert "ternarylayer" in rendered.dom or 'class="ternary"' in rendered.dom


def test_few_unrepeated_trials_leave_the_noise_unmeasured_and_the_surrogate_untrusted():
    rec = recommend_mix(trials(truth, n=4, noise=0.0))
    assert not rec.distinguishable and not rec.trusted and np.isnan(rec.noise_sd)
    assert rec.verdict.startswith("cannot tell whether any mix beats the best mix tried: the seed noise is unmeasured")
