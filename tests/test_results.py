"""The trials a search shows first: by the objective's mode, and never failing on a level no trial scored."""

import math

import pandas as pd

from vsearch.search.results import best_trials

NAN = math.nan


def trials() -> pd.DataFrame:
    # instance is NaN everywhere (no nuclei stain); t4 failed, so its high scores must not count
    rows = [
        ("t1", "completed", 0.50, 0.60, NAN, 0.40),
        ("t2", "completed", 0.55, 0.50, NAN, 0.60),
        ("t3", "completed", 0.45, 0.55, NAN, 0.35),  # dominated by t1 on pixel and feature
        ("t4", "failed", 0.99, 0.99, NAN, 0.99),
    ]
    table = pd.DataFrame(rows, columns=["trial_id", "status", "composite", "pixel", "instance", "feature"])
    return table.assign(composition="{}", config="{}")


def test_composite_mode_shows_the_best_by_composite_and_by_each_scored_level():
    best = best_trials(trials(), "composite")
    assert list(zip(best.why, best.trial_id, strict=True)) == [
        ("best composite", "t2"),
        ("best pixel", "t1"),
        ("best feature", "t2"),
    ]


def test_multi_mode_shows_the_pareto_front_best_composite_first():
    table = trials()
    table["instance"] = [0.3, 0.2, 0.1, 0.9]
    best = best_trials(table, "multi")
    assert list(best.trial_id) == ["t2", "t1"] and set(best.why) == {"Pareto front"}


def test_no_completed_trial_shows_nothing():
    table = trials()
    table["status"] = "failed"
    assert best_trials(table, "composite").empty
