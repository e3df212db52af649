"""Search-space YAML → pydantic model → an Optuna define-by-run function.

The space names the dataset, the held-out design (which conditions the objective is computed on, and so may
never be trained on), the composition space (which conditions may enter the training mix, under a budget,
sampled on the simplex, plus presets), the architecture and optimiser ranges, resources, scheduler, sampler,
objective and trial count.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter, ValidationError, field_validator, model_validator

from vsearch.config import DataConfig, OptimConfig, Strict, TrainConfig, UNetConfig, model_config
from vsearch.data.manifest import Role, condition_of
from vsearch.evaluate.score import Level
from vsearch.search.composition import (
    MIX,
    SAMPLED,
    check_named_mixes,
    normalise,
    preset_choices,
    preset_weights,
    simplex_weights,
)

MODEL_KEYS = ("family", "depth", "base_width", "norm", "upsampling", "residual")


class FloatRange(Strict):
    low: float
    high: float
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> FloatRange:
        if not self.low < self.high:
            raise ValueError(f"empty range: low {self.low} must be below high {self.high}")
        if self.log and self.low <= 0:
            raise ValueError("a log range needs low > 0")
        return self


class IntRange(Strict):
    low: int
    high: int

    @model_validator(mode="after")
    def _ordered(self) -> IntRange:
        if not self.low <= self.high:
            raise ValueError(f"empty range: low {self.low} must not exceed high {self.high}")
        return self


def _non_empty(values: list) -> list:
    if not values:
        raise ValueError("empty list of choices")
    return values


class HeldOut(Strict):
    """``phenotype: toxic`` holds out every toxic condition; ``cell_type: breast`` every breast condition;
    ``both`` holds out (cell_type, phenotype) and trains on neither that type nor that phenotype;
    ``explicit`` lists the held-out conditions."""

    leave_out: Literal["phenotype", "cell_type", "both", "explicit"]
    phenotype: str | None = None
    cell_type: str | None = None
    conditions: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _complete(self) -> HeldOut:
        needs = {"phenotype": ["phenotype"], "cell_type": ["cell_type"], "both": ["cell_type", "phenotype"]}
        for key in needs.get(self.leave_out, []):
            if getattr(self, key) is None:
                raise ValueError(f"leave_out: {self.leave_out} needs '{key}'")
        if self.leave_out == "explicit" and not self.conditions:
            raise ValueError("leave_out: explicit needs a non-empty 'conditions' list")
        return self

    def split(self, conditions: list[str]) -> tuple[list[str], list[str]]:
        """(held-out conditions, conditions a training mix may use) among the dataset's ``conditions``."""
        parts = {c: c.split("/") for c in conditions}
        if self.leave_out == "phenotype":
            held = [c for c, (_, p) in parts.items() if p == self.phenotype]
            allowed = [c for c in conditions if c not in held]
        elif self.leave_out == "cell_type":
            held = [c for c, (t, _) in parts.items() if t == self.cell_type]
            allowed = [c for c in conditions if c not in held]
        elif self.leave_out == "both":
            held = [condition_of(self.cell_type, self.phenotype)]
            allowed = [c for c, (t, p) in parts.items() if t != self.cell_type and p != self.phenotype]
        else:
            held = list(self.conditions)
            allowed = [c for c in conditions if c not in held]
        return held, allowed


class CompositionSpace(Strict):
    conditions: list[str] | None = None  # which may enter the mix (default: every non-held-out condition)
    budget: int = Field(48, ge=1)
    min_weight: float = Field(0.0, ge=0, lt=1)
    presets: list[Literal["single", "all_non_toxic", "all", "leave_one_type_out"]] = Field(default_factory=list)
    sample_weights: bool = True  # besides presets, sample free weights on the simplex
    mixes: dict[str, dict[str, float]] = Field(default_factory=dict)  # named mixes, e.g. from `vsearch recommend`

    _mixes_on_simplex = field_validator("mixes")(check_named_mixes)


class ModelSpace(Strict):
    family: list[Literal["unet", "pix2pixhd"]] = Field(default_factory=lambda: ["unet"])
    depth: IntRange | list[int] = Field(default_factory=lambda: [3])
    base_width: list[int] = Field(default_factory=lambda: [16])
    norm: list[Literal["batch", "instance", "group"]] = Field(default_factory=lambda: ["batch"])
    upsampling: list[Literal["transpose", "bilinear", "pixelshuffle"]] = Field(default_factory=lambda: ["transpose"])
    residual: list[bool] = Field(default_factory=lambda: [False])

    _non_empty = field_validator("family", "base_width", "norm", "upsampling", "residual")(_non_empty)


class OptimSpace(Strict):
    lr: FloatRange | Annotated[list[float], Field(min_length=1)] | float = 2e-3
    batch_size: list[int] = Field(default_factory=lambda: [16])
    loss: list[Literal["l1", "l2", "l1_ssim"]] = Field(default_factory=lambda: ["l1"])
    epochs: IntRange | int = 3
    optimizer: Literal["adamw", "adam"] = "adamw"

    _non_empty = field_validator("batch_size", "loss")(_non_empty)


class TrialResources(Strict):
    workers: int = Field(1, ge=1)
    cpus_per_worker: float = Field(1, gt=0)
    gpus_per_worker: float = Field(0, ge=0)
    max_concurrent: int | None = Field(None, ge=1)  # default: as many as the cluster's resources allow
    max_failures: int = Field(1, ge=0)  # retries of a failed trial
    # a trial whose workers report no progress (a batch, validation, an epoch, scoring) for this long fails; it
    # must exceed the longest validation or held-out scoring step
    stall_timeout_s: float = Field(900, gt=0)


class Scheduler(Strict):
    type: Literal["asha", "none"] = "none"
    grace_period: int = Field(1, ge=1)
    reduction_factor: float = Field(2, gt=1)


class Objective(Strict):
    mode: Literal["composite", "multi"] = "composite"
    weights: dict[Level, float] = Field(default_factory=lambda: {"pixel": 1.0, "instance": 1.0, "feature": 1.0})
    eval_fields_per_condition: int = Field(8, ge=1)  # held-out fields scored per condition

    @field_validator("weights")
    @classmethod
    def _some_weight(cls, weights: dict[str, float]) -> dict[str, float]:
        if any(w < 0 for w in weights.values()) or not any(w > 0 for w in weights.values()):
            raise ValueError("weights must be non-negative with at least one above 0 (levels not named count 0)")
        return weights


class SearchSpace(Strict):
    dataset: str
    stains: list[str] = Field(default_factory=lambda: ["nuclei", "cytoplasm", "dna_damage"], min_length=1)
    roles: dict[Role, str | None] | None = None  # over the dataset's stain roles; null: no stain has the role
    held_out: HeldOut
    composition: CompositionSpace = Field(default_factory=CompositionSpace)
    model: ModelSpace = Field(default_factory=ModelSpace)
    optim: OptimSpace = Field(default_factory=OptimSpace)
    patch: int = Field(64, ge=16)
    patches_per_field: int = Field(8, ge=1)
    trial: TrialResources = Field(default_factory=TrialResources)
    scheduler: Scheduler = Field(default_factory=Scheduler)
    sampler: Literal["tpe", "nsga2", "random", "grid"] = "tpe"  # grid: every preset x listed value, for baselines
    objective: Objective = Field(default_factory=Objective)
    num_trials: int = Field(8, ge=1)  # configurations sampled
    seed: int = 0
    # each configuration trains with seeds seed, seed + 1, ...: the repeats measure the seed-to-seed noise that
    # `vsearch recommend` weighs differences against, and the sampler is told their mean
    seeds_per_config: int = Field(1, ge=1)
    storage: str | None = None  # Optuna storage URL; default: SQLite in the results folder
    results: str = "results/search"

    @model_validator(mode="after")
    def _consistent(self) -> SearchSpace:
        if self.objective.mode == "multi" and self.scheduler.type != "none":
            raise ValueError("scheduler: multi-objective search runs without early stopping (use type: none)")
        if self.sampler == "nsga2" and self.objective.mode != "multi":
            raise ValueError("sampler: nsga2 is for objective.mode: multi")
        if not (self.composition.sample_weights or self.composition.presets or self.composition.mixes):
            raise ValueError("composition: enable sample_weights, name at least one preset or list mixes")
        self._choices_within_train_bounds()
        return self

    def _choices_within_train_bounds(self) -> None:
        """Every value a trial could draw obeys the bound of the ``TrainConfig`` field it becomes, so a bad choice
        is refused here rather than failing (and being retried) inside a Ray trial."""
        m, o = self.model, self.optim
        checks = [
            ("model.depth", _endpoints(m.depth), UNetConfig, "depth"),
            ("model.base_width", m.base_width, UNetConfig, "base_width"),
            ("optim.lr", _endpoints(o.lr), OptimConfig, "lr"),
            ("optim.batch_size", o.batch_size, DataConfig, "batch_size"),
            ("optim.epochs", _endpoints(o.epochs), TrainConfig, "epochs"),
        ]
        for key, values, model, field in checks:
            info = model.model_fields[field]
            adapter = TypeAdapter(Annotated[info.annotation, *info.metadata])
            for value in values:
                try:
                    adapter.validate_python(value)
                except ValidationError as error:
                    raise ValueError(f"{key}: {value!r}: {error.errors()[0]['msg']}") from None


class ResolvedSpace:
    """A space checked against its dataset: held-out and trainable conditions, nothing shared."""

    def __init__(self, space: SearchSpace, dataset_conditions: list[str]) -> None:
        self.space = space
        known = sorted(dataset_conditions)
        named_in_mixes = [(f"composition.mixes.{n}", list(w)) for n, w in space.composition.mixes.items()]
        for key, names in (
            ("held_out.conditions", space.held_out.conditions),
            ("composition.conditions", space.composition.conditions or []),
            *named_in_mixes,
        ):
            unknown = [c for c in names if c not in known]
            if unknown:
                raise ValueError(f"{key}: unknown condition {unknown[0]!r}; the dataset has {known}")
        held, allowed = space.held_out.split(known)
        if not held:
            raise ValueError(f"held_out: no condition of the dataset is held out by {space.held_out.model_dump()}")
        trainable = space.composition.conditions if space.composition.conditions is not None else allowed
        overlap = sorted(set(trainable) & set(held))
        if overlap:
            raise ValueError(f"composition.conditions: {overlap[0]!r} is held out, so it cannot be in a training mix")
        excluded = sorted(set(trainable) - set(allowed))
        if excluded:
            raise ValueError(f"composition.conditions: {excluded[0]!r} shares the held-out cell type or phenotype")
        if not trainable:
            raise ValueError("composition: no condition is left to train on")
        for name, weights in space.composition.mixes.items():
            outside = sorted(set(weights) - set(trainable))
            if outside:
                raise ValueError(f"composition.mixes.{name}: {outside[0]!r} is not a trainable condition {trainable}")
        self.held_out, self.trainable = held, sorted(trainable)
        if space.sampler == "grid":
            self.grid()

    def suggest(self, trial: Any) -> dict[str, Any]:
        """Optuna define-by-run: samples one trial's composition, model and optimiser (its params are recorded)."""
        choice = _pick(trial, "composition", self.composition_choices())
        weights = self._sampled_weights(trial) if choice == SAMPLED else self.preset_weights(choice)
        sampled = {"composition": weights, "composition_preset": choice, **self._model(trial), **self._optim(trial)}
        return sampled | {"seed": self.space.seed}

    def composition_choices(self) -> list[str]:
        c = self.space.composition
        return [f"{MIX}:{name}" for name in c.mixes] + preset_choices(self.trainable, c.presets, c.sample_weights)

    def preset_weights(self, choice: str) -> dict[str, float]:
        kind, _, name = choice.partition(":")
        if kind == MIX:
            return normalise(self.space.composition.mixes[name])
        return preset_weights(choice, self.trainable)

    def _sampled_weights(self, trial: Any) -> dict[str, float]:
        uniforms = {k: trial.suggest_float(f"u_{k}", 0.0, 1.0) for k in self.trainable}
        return simplex_weights(uniforms, self.space.composition.min_weight)

    def grid(self) -> dict[str, list]:
        """The search space of Optuna's ``GridSampler``: every parameter ``suggest`` asks for, enumerated;
        refuses continuous dimensions, naming their key."""
        if self.space.composition.sample_weights:
            raise ValueError("composition.sample_weights: a grid enumerates presets only; set it to false")
        m, o = self.space.model, self.space.optim
        if isinstance(o.lr, FloatRange):
            raise ValueError("optim.lr: a grid cannot enumerate a range; give a value or a list of values")
        dimensions = {
            "composition": self.composition_choices(),
            **{k: getattr(m, k) for k in MODEL_KEYS if k != "depth"},
            "depth": _enumerate(m.depth),
            "lr": o.lr if isinstance(o.lr, list) else [o.lr],
            "epochs": _enumerate(o.epochs),
            "batch_size": o.batch_size,
            "loss": o.loss,
        }
        asked = {"depth": isinstance(m.depth, IntRange), "epochs": isinstance(o.epochs, IntRange)}  # suggest_int
        return {k: list(v) for k, v in dimensions.items() if len(v) > 1 or asked.get(k, False)}

    def _model(self, trial: Any) -> dict[str, Any]:
        m = self.space.model
        depth = (
            trial.suggest_int("depth", m.depth.low, m.depth.high)
            if isinstance(m.depth, IntRange)
            else _pick(trial, "depth", m.depth)
        )
        family = _pick(trial, "family", m.family)
        sampled = {
            "family": family,
            "depth": depth,
            "base_width": _pick(trial, "base_width", m.base_width),
            "norm": _pick(trial, "norm", m.norm),
        }
        if family == "unet":  # the U-Net's own choices, asked only of U-Net trials
            sampled |= {
                "upsampling": _pick(trial, "upsampling", m.upsampling),
                "residual": _pick(trial, "residual", m.residual),
            }
        return sampled

    def _optim(self, trial: Any) -> dict[str, Any]:
        o = self.space.optim
        if isinstance(o.lr, FloatRange):
            lr = trial.suggest_float("lr", o.lr.low, o.lr.high, log=o.lr.log)
        else:
            lr = _pick(trial, "lr", o.lr if isinstance(o.lr, list) else [o.lr])
        epochs = (
            trial.suggest_int("epochs", o.epochs.low, o.epochs.high) if isinstance(o.epochs, IntRange) else o.epochs
        )
        return {
            "lr": lr,
            "epochs": epochs,
            "batch_size": _pick(trial, "batch_size", o.batch_size),
            "loss": _pick(trial, "loss", o.loss),
        }

    def train_config(self, sampled: dict[str, Any], name: str, storage: str) -> TrainConfig:
        """The ``TrainConfig`` of one trial."""
        s = self.space
        return TrainConfig(
            data=DataConfig(
                dataset=s.dataset, stains=s.stains, composition=sampled["composition"], budget=s.composition.budget,
                patch=s.patch, patches_per_field=s.patches_per_field, batch_size=sampled["batch_size"],
            ),
            model=model_config(**{k: sampled[k] for k in MODEL_KEYS if k in sampled}),
            optim=OptimConfig(optimizer=s.optim.optimizer, lr=sampled["lr"], loss=sampled["loss"]),
            epochs=sampled["epochs"],
            workers=s.trial.workers,
            cpus_per_worker=s.trial.cpus_per_worker,
            use_gpu=s.trial.gpus_per_worker > 0,
            gpus_per_worker=s.trial.gpus_per_worker or None,
            seed=sampled["seed"],
            name=name,
            storage=storage,
        )  # fmt: skip


def _endpoints(values: FloatRange | IntRange | list | float | int) -> list:
    """The values to check of a choice list, a range (its ends) or a single value."""
    if isinstance(values, FloatRange | IntRange):
        return [values.low, values.high]
    return values if isinstance(values, list) else [values]


def _pick(trial: Any, name: str, choices: list) -> Any:
    return choices[0] if len(choices) == 1 else trial.suggest_categorical(name, choices)


def _enumerate(values: IntRange | list[int] | int) -> list[int]:
    if isinstance(values, IntRange):
        return list(range(values.low, values.high + 1))
    return values if isinstance(values, list) else [values]
