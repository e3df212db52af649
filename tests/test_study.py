"""Study designs and the generalisation matrix's summaries and answers, against hand-computed values."""

import json
import re

import numpy as np
import pandas as pd
import pytest

from vsearch.config import load_yaml
from vsearch.study.answers import NO_CLEAR_DIFFERENCE, answer_questions
from vsearch.study.matrix import (
    IN_DISTRIBUTION,
    UNSEEN_BOTH,
    UNSEEN_CELL_TYPE,
    UNSEEN_COMBINATION,
    UNSEEN_PHENOTYPE,
    cell_summary,
    generalisation_gap,
    matrix_grid,
    matrix_rows,
    shift_of,
    shift_summary,
)
from vsearch.study.runner import plan_study
from vsearch.study.spec import StudySpec, TrainingSets

CONDITIONS = [f"{t}/{p}" for t in ("lung", "ovarian", "breast") for p in ("non_toxic", "toxic")]


def test_shift_of_a_test_condition_by_hand():
    assert shift_of("lung/toxic", ["lung/toxic"]) == IN_DISTRIBUTION
    assert shift_of("lung/toxic", ["lung/non_toxic"]) == UNSEEN_PHENOTYPE
    assert shift_of("lung/toxic", ["breast/toxic"]) == UNSEEN_CELL_TYPE
    assert shift_of("lung/toxic", ["breast/non_toxic"]) == UNSEEN_BOTH
    assert shift_of("lung/toxic", ["lung/non_toxic", "breast/toxic"]) == UNSEEN_COMBINATION


def test_training_sets_expand_to_singles_presets_and_mixes():
    with pytest.raises(ValueError, match=r"mix 'two'.*sum to 4"):
        TrainingSets(mixes={"two": {"lung/toxic": 3, "lung/non_toxic": 1}})
    sets = TrainingSets(presets=["all_non_toxic", "leave_one_type_out", "all"], mixes={"two": {"lung/toxic": 0.75,
                        "lung/non_toxic": 0.25}})  # fmt: skip
    expanded = sets.expand(CONDITIONS)
    assert list(expanded)[:6] == sorted(CONDITIONS) and all(expanded[c] == {c: 1.0} for c in CONDITIONS)
    assert expanded["all non_toxic"] == {c: pytest.approx(1 / 3) for c in CONDITIONS if c.endswith("/non_toxic")}
    assert sorted(expanded["all but breast"]) == [c for c in sorted(CONDITIONS) if not c.startswith("breast")]
    assert expanded["all"] == {c: pytest.approx(1 / 6) for c in sorted(CONDITIONS)}
    assert expanded["two"] == {"lung/non_toxic": 0.25, "lung/toxic": 0.75}
    with pytest.raises(ValueError, match=r"mixes\.bad: unknown condition 'liver/toxic'"):
        TrainingSets(singles=False, mixes={"bad": {"liver/toxic": 1}}).expand(CONDITIONS)
    with pytest.raises(ValueError, match="no training set"):
        TrainingSets(singles=False).expand(CONDITIONS)


def matrix_of(cells: dict[tuple[str, int], dict[str, float]], stains=("nuclei",), level="pixel") -> pd.DataFrame:
    """A long matrix from {(single training condition, seed): {test condition: score}}."""
    rows = []
    for (trained, seed), by_test in cells.items():
        scores = {f"{test}/{stain}/{level}": value for test, value in by_test.items() for stain in stains}
        composition = {trained: 1.0} if "/" in trained else {c: 0.5 for c in ("lung/non_toxic", "lung/toxic")}
        rows += matrix_rows(scores, training_set=trained, composition=composition, model="m", seed=seed,
                            trial_id=f"{trained}-{seed}")  # fmt: skip
    return pd.DataFrame(rows)


def test_summaries_are_means_and_sample_sds_over_seeds():
    matrix = matrix_of({
        ("lung/non_toxic", 0): {"lung/non_toxic": 0.9, "lung/toxic": 0.6},
        ("lung/non_toxic", 1): {"lung/non_toxic": 0.7, "lung/toxic": 0.4},
    })  # fmt: skip
    summary = cell_summary(matrix, "pixel").set_index("test_condition")
    assert summary.loc["lung/non_toxic", "mean"] == pytest.approx(0.8)
    assert summary.loc["lung/non_toxic", "sd"] == pytest.approx(np.std([0.9, 0.7], ddof=1))
    assert summary.loc["lung/toxic", "shift"] == UNSEEN_PHENOTYPE and summary.seeds.tolist() == [2, 2]
    gap = generalisation_gap(matrix, "pixel").iloc[0]
    assert gap["mean"] == pytest.approx(0.3) and gap["sd"] == pytest.approx(0.0, abs=1e-12)  # 0.3 in both seeds
    shifts = shift_summary(matrix, "pixel").set_index("shift")
    assert shifts.loc[IN_DISTRIBUTION, "mean"] == pytest.approx(0.8)
    with pytest.raises(KeyError, match="no 'feature' scores"):
        cell_summary(matrix, "feature")


def two_type_matrix(noise: float, seeds=(0, 1, 2)) -> pd.DataFrame:
    """Non-toxic-trained models score 0.7 on toxic, toxic-trained 0.5 on non-toxic; breast models transfer to
    the other type at 0.3, lung models at 0.6; plus seed noise."""
    rng = np.random.default_rng(0)
    base = {
        "lung/non_toxic": {"lung/non_toxic": 0.9, "lung/toxic": 0.7, "breast/non_toxic": 0.6, "breast/toxic": 0.6},
        "lung/toxic": {"lung/toxic": 0.9, "lung/non_toxic": 0.5, "breast/non_toxic": 0.6, "breast/toxic": 0.6},
        "breast/non_toxic": {"breast/non_toxic": 0.9, "breast/toxic": 0.7, "lung/non_toxic": 0.3, "lung/toxic": 0.3},
        "breast/toxic": {"breast/toxic": 0.9, "breast/non_toxic": 0.5, "lung/non_toxic": 0.3, "lung/toxic": 0.3},
        "all": dict.fromkeys(("lung/non_toxic", "lung/toxic", "breast/non_toxic", "breast/toxic"), 0.95),
    }
    return matrix_of({(trained, seed): {t: v + noise * rng.standard_normal() for t, v in by_test.items()}
                      for trained, by_test in base.items() for seed in seeds})  # fmt: skip


def test_grid_puts_single_conditions_on_the_diagonal_then_pooled_sets():
    grid = matrix_grid(cell_summary(two_type_matrix(noise=0.0), "pixel"))
    conditions = ["breast/non_toxic", "breast/toxic", "lung/non_toxic", "lung/toxic"]
    assert list(grid.columns) == conditions
    assert list(grid.index) == [f"{c} · m" for c in conditions] + ["all · m"]
    np.testing.assert_allclose(np.diag(grid.to_numpy()[:4]), 0.9)  # in distribution, by construction


def test_the_papers_questions_are_answered_from_the_numbers():
    answers = {a.question.split()[1]: a for a in answer_questions(two_type_matrix(noise=0.01))}
    assert answers["non-toxic"].answer == "yes"
    # by hand: non-toxic-trained on toxic (0.7 + 0.6 + 0.7 + 0.3) / 4 - 0.9 (each toxic condition's own model),
    # toxic-trained on non-toxic 0.475 - 0.9
    forward, reverse = map(float, re.findall(r"toxic ([+-]0\.\d+)", answers["non-toxic"].evidence)[:2])
    assert forward == pytest.approx(-0.325, abs=0.02) and reverse == pytest.approx(-0.425, abs=0.02)
    assert answers["cell"].answer == "breast"
    assert answers["an"].answer.startswith("no")  # unseen type+phenotype 0.3 / 0.6, as unseen type alone
    assert answers["pooling"].answer == "yes: all"


def test_transfer_is_scored_against_the_test_conditions_own_model():
    """Toxic fields are hard for every model (its own scores 0.4 there): raw scores would favour toxic training
    (0.6 vs 0.35), but non-toxic training loses only 0.05 against the toxic model, toxic training 0.3 against
    the non-toxic one. A test condition no model trained on alone (ovarian/toxic) drops out."""
    rng = np.random.default_rng(1)
    base = {
        "lung/non_toxic": {"lung/non_toxic": 0.9, "lung/toxic": 0.35, "ovarian/toxic": 0.1},
        "lung/toxic": {"lung/toxic": 0.4, "lung/non_toxic": 0.6, "ovarian/toxic": 0.9},
    }
    matrix = matrix_of({(trained, seed): {t: v + 0.005 * rng.standard_normal() for t, v in by_test.items()}
                        for trained, by_test in base.items() for seed in (0, 1, 2)})  # fmt: skip
    answer = next(a for a in answer_questions(matrix) if a.question.startswith("Does non-toxic"))
    assert answer.answer == "yes"
    forward, reverse = map(float, re.findall(r"toxic ([+-]0\.\d+)", answer.evidence)[:2])
    assert forward == pytest.approx(-0.05, abs=0.01) and reverse == pytest.approx(-0.3, abs=0.01)


def test_differences_within_the_seed_noise_are_not_called():
    answers = {a.question.split()[1]: a for a in answer_questions(two_type_matrix(noise=0.5))}
    assert answers["non-toxic"].answer == NO_CLEAR_DIFFERENCE
    one_seed = {a.question.split()[1]: a for a in answer_questions(two_type_matrix(noise=0.01, seeds=(0,)))}
    assert one_seed["non-toxic"].answer == "cannot tell from 1 seed(s)"
    assert one_seed["non-toxic"].evidence.endswith("(1 seed)") and "nan" not in one_seed["non-toxic"].evidence


def write_study(path, dataset, **overrides):
    spec = {"dataset": dataset, "training_sets": {"singles": True}, "seeds": [0, 1], "test_fields_per_condition": 2,
            **overrides}  # fmt: skip
    path.write_text(json.dumps(spec))  # JSON is YAML
    return load_yaml(path, StudySpec)


def test_plan_scores_every_condition_on_test_wells_no_training_set_uses(small_screen, tmp_path):
    from vsearch.data.dataset import open_dataset
    from vsearch.data.splits import assign_splits

    plan = plan_study(write_study(tmp_path / "s.yaml", small_screen))
    manifest = open_dataset(small_screen).manifest.set_index("field_id")
    splits = assign_splits(manifest.reset_index(), 0.2, 0.25, 0).set_axis(manifest.index)
    assert sorted(plan.test_fields) == sorted(CONDITIONS)
    for condition, ids in plan.test_fields.items():
        labels = manifest.cell_type + "/" + manifest.phenotype
        assert (splits[ids] == "test").all() and set(labels[ids]) == {condition}
        assert len(ids) == min(2, ((labels == condition) & (splits == "test")).sum())
    assert len(plan.cells) == 6 * 2 and {c["seed"] for c in plan.cells} == {0, 1}
    with pytest.raises(ValueError, match="seeds repeat"):
        write_study(tmp_path / "s.yaml", small_screen, seeds=[1, 1])
    with pytest.raises(ValueError, match="stains: 'actin' is not a stain"):
        plan_study(write_study(tmp_path / "s.yaml", small_screen, stains=["actin"]))


def test_models_from_a_search_are_its_best_completed_trials_optionally_trained_shorter():
    from vsearch.study.spec import models_from_trials

    config = {"family": "unet", "depth": 3, "base_width": 16, "lr": 0.002, "epochs": 12, "batch_size": 16}
    trials = pd.DataFrame({"trial_id": ["a", "b", "c", "d"], "status": ["completed", "completed", "failed",
                           "completed"], "composite": [0.4, 0.6, 0.9, 0.5],
                           "config": [json.dumps(config | {"base_width": w}) for w in (8, 16, 32, 24)]})  # fmt: skip
    best = models_from_trials(trials, 2)
    assert [m.name for m in best] == ["trial b", "trial d"]  # the failed trial's 0.9 does not count
    assert [m.model.base_width for m in best] == [16, 24] and best[0].epochs == 12 and best[0].optim.lr == 0.002
    assert [m.epochs for m in models_from_trials(trials, 2, epochs=5)] == [5, 5]
    with pytest.raises(ValueError, match="the search has no completed trial"):
        models_from_trials(trials[trials.status == "failed"], 1)


def test_a_difference_counts_at_the_paired_t_tests_five_percent_level():
    from vsearch.study.answers import critical_t

    # Student's t(0.975) from a table: 12.706 (1 dof), 4.303 (2), 2.776 (4)
    assert [round(critical_t(n), 3) for n in (2, 3, 5)] == [12.706, 4.303, 2.776]
    # differences of 0.1, 0.2, 0.3 over 3 seeds: mean 0.2, SE 0.0577, t = 3.46 < 4.30, so not called
    rows = {("lung/non_toxic", s): {"lung/non_toxic": 0.9, "lung/toxic": 0.9 - 0.1} for s in (0, 1, 2)}
    rows |= {
        ("lung/toxic", s): {"lung/toxic": 0.9, "lung/non_toxic": 0.9 - 0.1 - d} for s, d in enumerate((0.1, 0.2, 0.3))
    }
    answer = next(a for a in answer_questions(matrix_of(rows)) if a.question.startswith("Does non-toxic"))
    assert answer.answer == NO_CLEAR_DIFFERENCE and "+0.200 ± 0.058" in answer.evidence
