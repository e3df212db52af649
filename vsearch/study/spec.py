"""Study YAML → pydantic model → the cells of a train × test design: every training set × model × seed, each
trained on its conditions' training wells and scored on the test wells of every condition."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from vsearch.config import DataConfig, ModelConfig, OptimConfig, Strict, TrainConfig, UNetConfig, model_config
from vsearch.data.manifest import Role
from vsearch.evaluate.score import Level
from vsearch.search.composition import NON_TOXIC, check_named_mixes, normalise
from vsearch.search.space import TrialResources

TOXIC = "toxic"
PRESETS = ("all_non_toxic", "all_toxic", "leave_one_type_out", "all")


class TrainingSets(Strict):
    """``singles``: one training set per condition (the paper's design); ``presets``: pooled sets; ``mixes``:
    named compositions (``cell_type/phenotype: weight``, summing to 1)."""

    singles: bool = True
    presets: list[Literal["all_non_toxic", "all_toxic", "leave_one_type_out", "all"]] = Field(default_factory=list)
    mixes: dict[str, dict[str, float]] = Field(default_factory=dict)

    _mixes_on_simplex = field_validator("mixes")(check_named_mixes)

    def expand(self, conditions: list[str]) -> dict[str, dict[str, float]]:
        """Training-set name → composition over the dataset's ``conditions``; refuses unknown conditions."""
        known = sorted(conditions)
        sets: dict[str, dict[str, float]] = {}
        if self.singles:
            sets |= {condition: {condition: 1.0} for condition in known}
        types = sorted({c.split("/")[0] for c in known})
        for preset in self.presets:
            if preset == "leave_one_type_out":
                sets |= {f"all but {t}": _uniform(c for c in known if c.split("/")[0] != t) for t in types}
            elif preset == "all":
                sets["all"] = _uniform(known)
            else:
                phenotype = NON_TOXIC if preset == "all_non_toxic" else TOXIC
                chosen = [c for c in known if c.split("/")[1] == phenotype]
                if not chosen:
                    raise ValueError(f"training_sets.presets: {preset} but the dataset has no {phenotype} condition")
                sets[f"all {phenotype}"] = _uniform(chosen)
        for name, composition in self.mixes.items():
            unknown = [c for c in composition if c not in known]
            if unknown:
                raise ValueError(
                    f"training_sets.mixes.{name}: unknown condition {unknown[0]!r}; the dataset has {known}"
                )
            sets[name] = normalise({c: w for c, w in composition.items() if w > 0})
        if not sets:
            raise ValueError("training_sets: no training set (enable singles, or name presets or mixes)")
        return sets


def _uniform(conditions) -> dict[str, float]:
    return normalise(dict.fromkeys(conditions, 1.0))


class StudyModel(Strict):
    """One model and how it is trained."""

    name: str | None = None  # default: family, depth and width
    model: ModelConfig = Field(default_factory=UNetConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    epochs: int = Field(8, ge=1)
    batch_size: int = Field(16, ge=1)

    def label(self) -> str:
        return self.name or f"{self.model.family} d{self.model.depth} w{self.model.base_width}"


class ModelsFromSearch(Strict):
    """The best ``best`` completed trials (by composite) of the search whose results are at ``results``."""

    results: str
    best: int = Field(1, ge=1)
    epochs: int | None = Field(None, ge=1)  # train them this long instead of as the trial did (a cheaper proxy)


class StudySpec(Strict):
    dataset: str
    stains: list[str] = Field(default_factory=lambda: ["nuclei", "cytoplasm", "dna_damage"], min_length=1)
    roles: dict[Role, str | None] | None = None
    training_sets: TrainingSets = Field(default_factory=TrainingSets)
    models: list[StudyModel] = Field(default_factory=lambda: [StudyModel()])
    models_from_search: ModelsFromSearch | None = None  # replaces ``models``
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    budget: int = Field(48, ge=1)  # training fields of every training set, so sets compare at equal size
    patch: int = Field(64, ge=16)
    patches_per_field: int = Field(8, ge=1)
    test_fields_per_condition: int = Field(8, ge=1)  # test-well fields scored per condition
    val_fraction: float = Field(0.2, ge=0, lt=1)
    test_fraction: float = Field(0.25, gt=0, lt=1)
    split_seed: int = 0
    weights: dict[Level, float] = Field(default_factory=lambda: {"pixel": 1.0, "instance": 1.0, "feature": 1.0})
    trial: TrialResources = Field(default_factory=TrialResources)
    results: str = "results/study"

    @field_validator("seeds")
    @classmethod
    def _distinct(cls, seeds: list[int]) -> list[int]:
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds repeat: {seeds}")
        return seeds

    @model_validator(mode="after")
    def _splits_leave_training_wells(self) -> StudySpec:
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError("val_fraction + test_fraction must leave wells for training")
        labels = [m.label() for m in self.models]
        if len(set(labels)) != len(labels):
            raise ValueError(f"models: two models share the name {sorted(labels)}; give each a name")
        return self


def models_from_trials(trials, best: int, epochs: int | None = None) -> list[StudyModel]:
    """The ``best`` completed trials of a search's trials table as study models (their model, optimiser,
    epochs, unless ``epochs`` is given, and batch size)."""
    done = trials[trials.status == "completed"].sort_values(["composite", "trial_id"], ascending=[False, True])
    if done.empty:
        raise ValueError("models_from_search: the search has no completed trial")
    models = []
    for trial in done.head(best).itertuples():
        config = json.loads(trial.config)
        model_keys = {
            k: config[k] for k in ("family", "depth", "base_width", "norm", "upsampling", "residual") if k in config
        }
        models.append(
            StudyModel(
                name=f"trial {trial.trial_id}",
                model=model_config(**model_keys),
                optim=OptimConfig(lr=config["lr"], loss=config.get("loss", "l1")),
                epochs=epochs or config["epochs"],
                batch_size=config["batch_size"],
            )
        )
    return models


def cell_train_config(spec: StudySpec, cell: dict[str, Any], name: str, storage: str) -> TrainConfig:
    """The ``TrainConfig`` of one cell of the design (``cell`` as ``StudyPlan.cells`` lists it)."""
    model = StudyModel.model_validate(cell["model"])
    return TrainConfig(
        data=DataConfig(
            dataset=spec.dataset, stains=spec.stains, composition=cell["composition"], budget=spec.budget,
            patch=spec.patch, patches_per_field=spec.patches_per_field, batch_size=model.batch_size,
            val_fraction=spec.val_fraction, test_fraction=spec.test_fraction, split_seed=spec.split_seed,
        ),
        model=model.model,
        optim=model.optim,
        epochs=model.epochs,
        workers=spec.trial.workers,
        cpus_per_worker=spec.trial.cpus_per_worker,
        use_gpu=spec.trial.gpus_per_worker > 0,
        gpus_per_worker=spec.trial.gpus_per_worker or None,
        seed=cell["seed"],
        name=name,
        storage=storage,
    )  # fmt: skip
