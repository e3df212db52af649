"""Bad input, fuzzed: malformed search spaces, training configs and layouts, generated from valid ones, are each
refused by the CLI before Ray starts, naming the key (or file), and nothing is written."""

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray
import yaml
from typer.testing import CliRunner

from tests.test_ingest import GOOD, HEADER, images, write_layout  # noqa: F401 (images is a fixture)
from vsearch.cli import app

UNBOUNDED = {"seed", "split_seed"}  # integers any value of which is valid


def valid_space(dataset: str, results: str) -> dict:
    return {
        "dataset": dataset,
        "held_out": {"leave_out": "phenotype", "phenotype": "toxic"},
        "composition": {"budget": 8, "min_weight": 0.05, "presets": ["single"], "sample_weights": True,
                        "mixes": {"half": {"lung/non_toxic": 0.5, "breast/non_toxic": 0.5}}},
        "model": {"depth": [2], "base_width": [4, 8]},
        "optim": {"lr": {"low": 0.0005, "high": 0.005, "log": True}, "batch_size": [8], "epochs": 2},
        "patch": 48,
        "patches_per_field": 2,
        "trial": {"workers": 1, "cpus_per_worker": 1, "max_failures": 0, "stall_timeout_s": 600},
        "scheduler": {"type": "asha", "grace_period": 1, "reduction_factor": 2},
        "objective": {"eval_fields_per_condition": 3, "weights": {"pixel": 1.0, "feature": 2.0}},
        "num_trials": 2,
        "seeds_per_config": 1,
        "seed": 0,
        "results": results,
    }  # fmt: skip


def valid_training(dataset: str, storage: str) -> dict:
    return {
        "data": {"dataset": dataset, "stains": ["nuclei"], "composition": {"lung/non_toxic": 0.5,
                 "lung/toxic": 0.5}, "budget": 8, "patch": 32, "patches_per_field": 2, "batch_size": 4,
                 "val_fraction": 0.2, "test_fraction": 0.2, "split_seed": 0},
        "optim": {"lr": 0.001},
        "epochs": 1,
        "seed": 0,
        "storage": storage,
    }  # fmt: skip


def mutations(config: dict, prefix: str = "") -> Iterator[tuple[str, dict, str]]:
    """(case, mutated config, the key its refusal must name) for each key of ``config``, recursively: a value of
    the wrong type, an unknown key beside it and, for numbers, a negative, NaN and infinite value."""
    for key, value in config.items():
        path = f"{prefix}{key}"
        wrong = ["a", "list"] if isinstance(value, dict) else {"a": "mapping"}
        yield f"{path}: wrong type", _set(config, key, wrong), path
        yield f"{path}: unknown key beside it", config | {f"{key}_typo": 1}, f"{prefix}{key}_typo"
        if isinstance(value, dict):
            for case, mutated, named in mutations(value, f"{path}."):
                yield case, _set(config, key, mutated), named
        elif isinstance(value, int | float) and not isinstance(value, bool):
            for bad in (-5, math.nan, math.inf):
                if not (bad == -5 and key in UNBOUNDED):
                    yield f"{path}: {bad}", _set(config, key, bad), path


def _set(config: dict, key: str, value) -> dict:
    return config | {key: value}


def refusal_names(path: str) -> str:
    """What a refusal must name: the key down to its second level (``optim.lr`` for ``optim.lr.low``; a mix's
    or composition's own checks name the mapping, ``composition.mixes``, not the condition inside it)."""
    return ".".join(path.split(".")[:2])


@pytest.fixture
def no_ray(monkeypatch):
    """Ray may not start: a refusal must come first."""

    def started(*args, **kwargs):
        raise AssertionError("Ray was started for input that should have been refused")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", started)


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")}


def refused(command: list[str], folder: Path, named: str) -> None:
    before = files_under(folder)
    ran = CliRunner().invoke(app, command)
    output = " ".join(ran.output.split())
    assert ran.exit_code == 2, f"{command}: exit {ran.exit_code}: {output} {ran.exception!r}"
    assert "Traceback" not in ran.output
    assert named in output, output
    assert files_under(folder) == before  # nothing written


# (command, case, config, key): every mutation of a valid search space (`vsearch run`) and training config
# (`vsearch train`), whose paths are placeholders the test fills in
CONFIG_CASES = [
    *(("run", *case) for case in mutations(valid_space("DATASET", "OUTPUT"))),
    *(("train", *case) for case in mutations(valid_training("DATASET", "OUTPUT"))),
]


@pytest.mark.parametrize(
    ("command", "case", "config", "named"), CONFIG_CASES, ids=[f"{c[0]} {c[1]}" for c in CONFIG_CASES]
)
def test_a_malformed_config_is_refused_naming_the_key(command, case, config, named, small_screen, tmp_path, no_ray):
    text = yaml.safe_dump(config).replace("DATASET", small_screen).replace("OUTPUT", str(tmp_path / "out"))
    path = tmp_path / "config.yaml"
    path.write_text(text)
    refused([command, str(path)], tmp_path, refusal_names(named))


def space_cases(screen: str, missing: str) -> dict[str, tuple[dict, str]]:
    """Semantic faults the schema cannot see: (space overrides, what the refusal names)."""
    return {
        "empty composition": ({"composition": {"presets": [], "sample_weights": False}}, "composition: enable"),
        "held-out condition absent": (
            {"held_out": {"leave_out": "explicit", "conditions": ["liver/toxic"]}},
            "held_out.conditions: unknown condition 'liver/toxic'",
        ),
        "mix of a held-out condition": (
            {"composition": {"mixes": {"leak": {"lung/toxic": 1.0}}}},
            "composition.mixes.leak: 'lung/toxic' is not a trainable condition",
        ),
        "dataset that does not exist": ({"dataset": missing}, missing),
        "stain the dataset lacks": ({"stains": ["actin"]}, "stains: 'actin' is not a stain of"),
    }


@pytest.mark.parametrize(
    "case",
    ["empty composition", "held-out condition absent", "mix of a held-out condition", "dataset that does not exist",
     "stain the dataset lacks"],
)  # fmt: skip
def test_a_search_space_that_contradicts_its_dataset_is_refused(case, small_screen, tmp_path, no_ray):
    overrides, named = space_cases(small_screen, str(tmp_path / "no-such-screen"))[case]
    space = valid_space(small_screen, str(tmp_path / "results")) | overrides
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(space))
    refused(["run", str(path)], tmp_path, named)


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"composition": {}}, "data.composition"),
        ({"composition": {"liver/toxic": 1.0}}, "liver/toxic"),
        ({"stains": ["actin"]}, "data.stains: 'actin' is not a stain of"),
    ],
    ids=["empty composition", "condition absent", "stain absent"],
)
def test_a_training_config_that_contradicts_its_dataset_is_refused(data, named, small_screen, tmp_path, no_ray):
    config = valid_training(small_screen, str(tmp_path / "runs"))
    config["data"] |= data
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(config))
    refused(["train", str(path)], tmp_path, named)


def test_an_s3_dataset_without_credentials_is_refused_naming_the_uri(s3_bucket, tmp_path, monkeypatch, no_ray):
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    uri = f"{s3_bucket}/screens/small"
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(valid_space(uri, str(tmp_path / "results"))))
    refused(["run", str(path)], tmp_path, uri)


LAYOUT_COLUMNS = HEADER


def layout_cases() -> Iterator[tuple[str, list[str], list[list], str]]:
    """(case, header, rows, what the refusal names), from the good layout: each column blanked in a row,
    dropped from the header, and each image path pointed at a file that does not exist."""
    for column, name in enumerate(HEADER):
        rows = [list(r) for r in GOOD]
        rows[1][column] = ""
        yield f"{name} blank", HEADER, rows, "row 3"
        yield (
            f"{name} column missing",
            [h for h in HEADER if h != name],
            [r[:column] + r[column + 1 :] for r in GOOD],
            name,
        )
    for row in range(len(GOOD)):
        rows = [list(r) for r in GOOD]
        rows[row][-1] = "gone.png"
        yield f"row {row + 2} path missing", HEADER, rows, f"row {row + 2} (gone.png)"


LAYOUT_CASES = list(layout_cases())


@pytest.mark.parametrize(("case", "header", "rows", "named"), LAYOUT_CASES, ids=[c[0] for c in LAYOUT_CASES])
def test_a_malformed_layout_is_refused_naming_the_row_or_column(case, header, rows, named, images, no_ray):  # noqa: F811
    layout = write_layout(images / "layout.csv", rows, header)
    refused(["data", "ingest", str(layout), "--out", str(images / "out")], images, named)
