"""Pydantic models of the YAML files users write; unknown keys and bad values fail with the key named."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from vsearch.search.composition import check_composition


class Strict(BaseModel):
    """Unknown keys and non-finite numbers (NaN, inf: YAML's .nan, .inf) are refused, naming the key."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class UNetConfig(Strict):
    family: Literal["unet"] = "unet"
    depth: int = Field(3, ge=1, le=7)
    base_width: int = Field(16, ge=4, le=512)
    norm: Literal["batch", "instance", "group"] = "batch"
    upsampling: Literal["transpose", "bilinear", "pixelshuffle"] = "transpose"
    residual: bool = False


class Pix2PixHDConfig(Strict):
    """pix2pixHD's global generator and multi-scale PatchGAN (Wang et al. 2018), with the paper's instance norm."""

    family: Literal["pix2pixhd"] = "pix2pixhd"
    depth: int = Field(3, ge=1, le=7)  # the global generator's downsamplings
    base_width: int = Field(16, ge=4, le=512)
    norm: Literal["batch", "instance", "group"] = "instance"
    generator_blocks: int = Field(9, ge=1, le=18)
    discriminator_scales: int = Field(3, ge=1, le=4)
    feature_matching_weight: float = Field(10.0, ge=0)
    l1_weight: float = Field(0.0, ge=0)  # optional L1 between predicted and real stains


def _family(value: object) -> str:
    return value.get("family", "unet") if isinstance(value, dict) else getattr(value, "family", "unet")


# a model's keys are those of its family; a YAML model without ``family`` is a U-Net
ModelConfig = Annotated[
    Annotated[UNetConfig, Tag("unet")] | Annotated[Pix2PixHDConfig, Tag("pix2pixhd")], Discriminator(_family)
]
MODEL_FAMILIES = ("unet", "pix2pixhd")


def model_config(**values: object) -> UNetConfig | Pix2PixHDConfig:
    """The config of the family ``values["family"]`` names (default U-Net); keys of another family are refused."""
    return TypeAdapter(ModelConfig).validate_python(values)


class OptimConfig(Strict):
    optimizer: Literal["adamw", "adam"] = "adamw"
    lr: float = Field(2e-3, gt=0, le=1)
    weight_decay: float = Field(1e-4, ge=0)
    beta1: float = Field(0.9, ge=0, lt=1)  # U-Net only: the GAN always uses pix2pixHD's 0.5
    schedule: Literal["cosine", "constant"] = "cosine"
    loss: Literal["l1", "l2", "l1_ssim"] = "l1"


class DataConfig(Strict):
    dataset: str
    stains: list[str] = Field(default_factory=lambda: ["nuclei", "cytoplasm", "dna_damage"], min_length=1)
    composition: dict[str, float]  # "cell_type/phenotype" -> weight, summing to 1
    budget: int = Field(64, ge=1)  # training fields drawn for the composition
    patch: int = Field(64, ge=16)
    patches_per_field: int = Field(8, ge=1)
    batch_size: int = Field(16, ge=1)
    val_fraction: float = Field(0.2, ge=0, lt=1)
    test_fraction: float = Field(0.2, ge=0, lt=1)
    split_seed: int = 0
    target_normalisation: Literal["dataset", "field"] = "dataset"

    @field_validator("composition")
    @classmethod
    def _weights_on_simplex(cls, composition: dict[str, float]) -> dict[str, float]:
        check_composition(composition)
        return composition

    @model_validator(mode="after")
    def _fractions(self) -> DataConfig:
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError("val_fraction + test_fraction must leave wells for training")
        return self


class TrainConfig(Strict):
    data: DataConfig
    model: ModelConfig = Field(default_factory=UNetConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    epochs: int = Field(10, ge=1)
    workers: int = Field(1, ge=1)
    cpus_per_worker: float = Field(1, gt=0)
    use_gpu: bool = False
    gpus_per_worker: float | None = Field(None, gt=0)  # with use_gpu; None: one GPU each; 0.5: two share one
    bf16: bool = True  # autocast on GPU only
    compile: bool = False
    seed: int = 0
    name: str = "vsearch-train"
    storage: str = "results/train"  # local folder or s3:// prefix for checkpoints

    @model_validator(mode="after")
    def _gpus_need_use_gpu(self) -> TrainConfig:
        if self.gpus_per_worker is not None and not self.use_gpu:
            raise ValueError("gpus_per_worker is set but use_gpu is false")
        return self

    def resources_per_worker(self) -> dict[str, float]:
        """What each Ray Train worker reserves: its CPUs, and its GPU share when training on GPUs."""
        if not self.use_gpu:
            return {"CPU": self.cpus_per_worker}
        return {"CPU": self.cpus_per_worker, "GPU": self.gpus_per_worker or 1.0}


def load_yaml(path: str | Path, model: type[BaseModel]) -> BaseModel:
    """Parse a YAML file into ``model``; errors name the file and the offending key path."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not valid YAML: {error}") from None
    try:
        return model.model_validate(raw or {})
    except ValidationError as error:
        raise ValueError(f"{path}: {describe_errors(error)}") from None


_TYPE_TAGS = {"float", "int", "str", "bool", "list", "dict", "none", "literal_error", *MODEL_FAMILIES}


def describe_errors(error: ValidationError) -> str:
    """One message per offending key (``a.b.c: why``): union branches' type tags are dropped, and a value error
    is preferred to the type mismatches of the other branches."""
    by_key: dict[str, str] = {}
    for e in error.errors():
        parts = [
            str(p) for p in e["loc"] if not (isinstance(p, str) and ("[" in p or p in _TYPE_TAGS or p[:1].isupper()))
        ]
        key = ".".join(parts) or "(top level)"
        if key not in by_key or (e["type"] == "value_error" and not by_key[key].startswith("Value error")):
            by_key[key] = e["msg"]
    return "; ".join(f"{key}: {message}" for key, message in by_key.items())
