"""Search spaces: validation before Ray starts, held-out designs, composition sampling."""

import optuna
import pytest
import yaml
from typer.testing import CliRunner

from vsearch.cli import app
from vsearch.config import load_yaml
from vsearch.search.composition import check_composition
from vsearch.search.heldout import OBJECTIVE
from vsearch.search.space import HeldOut, ResolvedSpace, SearchSpace
from vsearch.search.tuner import DefineByRun, HeldOutOptunaSearch, TuneGridSampler

CONDITIONS = [f"{t}/{p}" for t in ("breast", "lung", "ovarian") for p in ("non_toxic", "toxic")]


def space(**overrides) -> dict:
    base = {"dataset": "unused", "held_out": {"leave_out": "phenotype", "phenotype": "toxic"}}
    return {**base, **overrides}


@pytest.mark.parametrize(
    ("design", "held", "allowed"),
    [
        ({"leave_out": "phenotype", "phenotype": "toxic"}, ["breast/toxic", "lung/toxic", "ovarian/toxic"],
         ["breast/non_toxic", "lung/non_toxic", "ovarian/non_toxic"]),
        ({"leave_out": "cell_type", "cell_type": "breast"}, ["breast/non_toxic", "breast/toxic"],
         ["lung/non_toxic", "lung/toxic", "ovarian/non_toxic", "ovarian/toxic"]),
        ({"leave_out": "both", "cell_type": "breast", "phenotype": "toxic"}, ["breast/toxic"],
         ["lung/non_toxic", "ovarian/non_toxic"]),
        ({"leave_out": "explicit", "conditions": ["lung/toxic", "ovarian/non_toxic"]},
         ["lung/toxic", "ovarian/non_toxic"],
         ["breast/non_toxic", "breast/toxic", "lung/non_toxic", "ovarian/toxic"]),
    ],
    ids=["phenotype", "cell_type", "both", "explicit"],
)  # fmt: skip
def test_held_out_designs(design, held, allowed):
    got_held, got_allowed = HeldOut(**design).split(CONDITIONS)
    assert sorted(got_held) == held and sorted(got_allowed) == allowed


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"optim": {"lrr": 0.1}}, r"optim.lrr: Extra inputs are not permitted"),
        (
            {"optim": {"lr": {"low": 0.01, "high": 0.001}}},
            r"optim.lr: Value error, empty range: low 0.01 must be below",
        ),
        ({"model": {"norm": []}}, r"model.norm: Value error, empty list of choices"),
        ({"held_out": {"leave_out": "phenotype"}}, r"held_out: Value error, leave_out: phenotype needs 'phenotype'"),
        ({"sampler": "nsga2"}, r"sampler: nsga2 is for objective.mode: multi"),
        ({"model": {"depth": [2, 0]}}, r"model.depth: 0: Input should be greater than or equal to 1"),
        ({"model": {"depth": {"low": 2, "high": 9}}}, r"model.depth: 9: Input should be less than or equal to 7"),
        ({"model": {"base_width": [2]}}, r"model.base_width: 2: Input should be greater than or equal to 4"),
        ({"optim": {"lr": {"low": 0.1, "high": 3}}}, r"optim.lr: 3.0: Input should be less than or equal to 1"),
        ({"optim": {"batch_size": [0]}}, r"optim.batch_size: 0: Input should be greater than or equal to 1"),
        ({"optim": {"epochs": 0}}, r"optim.epochs: 0: Input should be greater than or equal to 1"),
    ],
    ids=[
        "unknown key",
        "empty range",
        "empty choices",
        "incomplete held-out",
        "nsga2 single",
        "depth 0",
        "depth range past 7",
        "base width 2",
        "lr range past 1",
        "batch size 0",
        "no epochs",
    ],
)
def test_invalid_spaces_name_the_key(tmp_path, overrides, message):
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(space(**overrides)))
    with pytest.raises(ValueError, match=message):
        load_yaml(path, SearchSpace)


def test_conditions_are_checked_against_the_dataset():
    with pytest.raises(ValueError, match=r"held_out.conditions: unknown condition 'liver/toxic'"):
        ResolvedSpace(
            SearchSpace(**space(held_out={"leave_out": "explicit", "conditions": ["liver/toxic"]})), CONDITIONS
        )
    overlap = space(composition={"conditions": ["lung/toxic", "lung/non_toxic"]})
    with pytest.raises(ValueError, match=r"composition.conditions: 'lung/toxic' is held out"):
        ResolvedSpace(SearchSpace(**overlap), CONDITIONS)
    sharing = space(held_out={"leave_out": "both", "cell_type": "lung", "phenotype": "toxic"},
                    composition={"conditions": ["lung/non_toxic"]})  # fmt: skip
    with pytest.raises(ValueError, match=r"'lung/non_toxic' shares the held-out cell type or phenotype"):
        ResolvedSpace(SearchSpace(**sharing), CONDITIONS)


def test_cli_refuses_bad_space_before_ray_starts(tmp_path, small_screen, monkeypatch):
    import vsearch.cluster

    ray_starts = []
    monkeypatch.setattr(vsearch.cluster, "connect", lambda address: ray_starts.append(address))
    bad = space(dataset=small_screen, held_out={"leave_out": "explicit", "conditions": ["lung/toxic"]},
                composition={"conditions": ["lung/toxic"]})  # fmt: skip
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(bad))
    result = CliRunner().invoke(app, ["run", str(path)])
    assert result.exit_code == 2
    assert "composition.conditions: 'lung/toxic' is held out" in result.output
    assert ray_starts == []


def test_sampled_compositions_never_contain_held_out_conditions():
    resolved = ResolvedSpace(
        SearchSpace(
            **space(
                composition={"presets": ["single", "all_non_toxic", "all", "leave_one_type_out"], "min_weight": 0.1}
            )
        ),
        CONDITIONS,
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    kinds = set()
    for _ in range(300):
        trial = study.ask()
        sampled = resolved.suggest(trial)
        composition = sampled["composition"]
        kinds.add(sampled["composition_preset"].split(":")[0])
        check_composition(composition)
        assert not set(composition) & set(resolved.held_out)
        assert set(composition) <= set(resolved.trainable)
        assert min(composition.values()) >= 0.1 - 1e-12
        study.tell(trial, 0.0)
    assert kinds == {"single", "all_non_toxic", "all", "leave_one_type_out", "sampled"}


@pytest.mark.parametrize("name", ["demo", "composition", "baselines", "architecture", "paper"])
def test_shipped_search_spaces_are_valid(name):
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "search_spaces" / f"{name}.yaml"
    space = load_yaml(path, SearchSpace)
    assert space.num_trials >= 3  # a recommendation needs three scored trials
    resolved = ResolvedSpace(space, CONDITIONS)  # the shipped spaces name the synthetic screen's conditions
    assert not set(resolved.trainable) & set(resolved.held_out)


def test_grid_runs_every_preset_and_listed_value_once():
    grid_space = space(
        sampler="grid",
        composition={"presets": ["single", "leave_one_type_out", "all"], "sample_weights": False},
        model={"base_width": [4, 8], "depth": {"low": 2, "high": 2}},
        optim={"lr": [0.001, 0.003]},
    )
    resolved = ResolvedSpace(SearchSpace(**grid_space), CONDITIONS)
    non_toxic = ["breast/non_toxic", "lung/non_toxic", "ovarian/non_toxic"]
    presets = [f"single:{c}" for c in non_toxic] + [f"leave_one_type_out:{t}" for t in ("breast", "lung", "ovarian")]
    assert resolved.grid() == {"composition": [*presets, "all"], "depth": [2], "base_width": [4, 8],
                               "lr": [0.001, 0.003]}  # fmt: skip
    study = optuna.create_study(sampler=TuneGridSampler(resolved.grid(), seed=0))
    points = set()
    for _ in range(7 * 2 * 2):
        trial = study.ask()
        sampled = resolved.suggest(trial)
        points.add((sampled["composition_preset"], sampled["base_width"], sampled["lr"]))
        study.tell(trial, 0.0)
    assert len(points) == 28
    mixes = {preset: resolved.preset_weights(preset) for preset, _, _ in points}
    assert mixes["leave_one_type_out:lung"] == {"breast/non_toxic": 0.5, "ovarian/non_toxic": 0.5}
    assert mixes["all"] == dict.fromkeys(non_toxic, 1 / 3)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"composition": {"presets": ["single"], "sample_weights": True}}, "composition.sample_weights"),
        ({"composition": {"presets": ["all"], "sample_weights": False}, "optim": {"lr": {"low": 0.001, "high": 0.01}}},
         "optim.lr: a grid cannot enumerate a range"),
    ],
)  # fmt: skip
def test_grid_refuses_continuous_dimensions_naming_the_key(overrides, message):
    with pytest.raises(ValueError, match=message):
        ResolvedSpace(SearchSpace(**space(sampler="grid", **overrides)), CONDITIONS)


@pytest.mark.parametrize("name", ["demo", "paper"])
def test_shipped_studies_are_valid_designs(name):
    from pathlib import Path

    from vsearch.study.spec import StudySpec

    spec = load_yaml(Path(__file__).resolve().parents[1] / "studies" / f"{name}.yaml", StudySpec)
    sets = spec.training_sets.expand(CONDITIONS)  # the shipped studies name the synthetic screen's conditions
    assert all(abs(sum(w.values()) - 1) < 1e-9 for w in sets.values())
    assert len(spec.seeds) >= (1 if name == "demo" else 3)  # the demo draws a matrix; the paper's design answers


def test_each_configuration_repeats_at_the_next_seeds_and_optuna_is_told_their_mean():
    resolved = ResolvedSpace(SearchSpace(**space(seed=5, seeds_per_config=3)), CONDITIONS)
    searcher = HeldOutOptunaSearch(space=DefineByRun(resolved), metric=OBJECTIVE, mode="max",
                                   sampler=optuna.samplers.RandomSampler(seed=0), seeds_per_config=3)  # fmt: skip
    first, *repeats = [searcher.suggest(t)["trial_config"] for t in "abc"]
    assert [first["seed"], *(r["seed"] for r in repeats)] == [5, 6, 7]
    assert all({**r, "seed": 5} == first for r in repeats)
    second = searcher.suggest("d")["trial_config"]
    assert second["seed"] == 5 and second["composition"] != first["composition"]
    study = searcher._ot_study
    searcher.on_trial_complete("b", {OBJECTIVE: 0.4})
    searcher.on_trial_complete("a", {OBJECTIVE: 0.7})
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.RUNNING] * 2  # c has not ended
    searcher.on_trial_complete("c", None, error=True)
    assert study.trials[0].value == pytest.approx(0.55)  # the mean of the runs that finished
    assert [searcher.suggest(t)["trial_config"]["seed"] for t in "ef"] == [6, 7]  # d's repeats
    for trial_id in "def":  # ASHA stopped them: no held-out score to tell
        searcher.on_trial_complete(trial_id, {"val_score": 0.3})
    assert study.trials[1].state == optuna.trial.TrialState.PRUNED
