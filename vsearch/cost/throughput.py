"""The measured training throughput table (``throughput.csv``): patches per second of one GPU for a model
family, width, depth, patch size, batch and compile setting; rows are added or replaced by the GPU benchmark."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from vsearch.config import DataConfig, TrainConfig, model_config

TABLE = Path(__file__).with_name("throughput.csv")
KEY = ["gpu", "family", "depth", "base_width", "generator_blocks", "patch", "batch", "compiled"]
COLUMNS = [*KEY, "patches_per_s", "measured", "source"]


@dataclass(frozen=True)
class Measurement:
    """One row of the table: the configuration measured and its rate."""

    gpu: str
    family: str
    depth: int
    base_width: int
    generator_blocks: int | None
    patch: int
    batch: int
    compiled: bool
    patches_per_s: float
    measured: str
    source: str

    def train_config(self) -> TrainConfig:
        """The training configuration measured (an L1 loss; the GAN's, with its default discriminator)."""
        model = {"family": self.family, "depth": self.depth, "base_width": self.base_width}
        if self.generator_blocks is not None:
            model["generator_blocks"] = self.generator_blocks
        data = DataConfig(dataset="-", composition={"measured/config": 1.0}, patch=self.patch, batch_size=self.batch)
        return TrainConfig(data=data, model=model_config(**model), compile=self.compiled)


def read_table(path: Path = TABLE) -> list[Measurement]:
    """The table's rows; refuses a missing column or a non-positive rate, naming the file and row."""
    table = pd.read_csv(path, dtype={"measured": str, "source": str})
    missing = [c for c in COLUMNS if c not in table]
    if missing:
        raise ValueError(f"{path}: missing column {missing[0]!r}")
    rows = []
    for number, row in enumerate(table.to_dict("records"), start=2):
        if not row["patches_per_s"] > 0:
            raise ValueError(f"{path}, line {number}: patches_per_s must be above 0, got {row['patches_per_s']}")
        blocks = None if pd.isna(row["generator_blocks"]) else int(row["generator_blocks"])
        compiled = str(row["compiled"]).lower() == "true"
        integers = {k: int(row[k]) for k in ("depth", "base_width", "patch", "batch")}
        texts = {k: str(row[k]) for k in ("gpu", "family", "measured", "source")}
        rows.append(Measurement(**texts, **integers, generator_blocks=blocks, compiled=compiled,
                                patches_per_s=float(row["patches_per_s"])))  # fmt: skip
    return rows


def nearest(table: list[Measurement], gpu: str, family: str, patch: int, batch: int, compiled: bool):
    """The measurement on ``gpu`` of ``family`` closest to ``patch`` and ``batch`` (log distance, patch first),
    with the same compile setting when the table has one; None when ``gpu`` has no row for the family."""
    rows = [m for m in table if m.gpu == gpu and m.family == family]
    if not rows:
        return None
    same_compile = [m for m in rows if m.compiled == compiled]
    rows = same_compile or rows
    return min(rows, key=lambda m: (abs(math.log(m.patch / patch)), abs(math.log(m.batch / batch))))


def gpu_model(device_name: str) -> str:
    """The model in a GPU's device name, as Ray names accelerator types: "NVIDIA H200" and
    "NVIDIA H100 80GB HBM3" give H200 and H100, "NVIDIA A100-SXM4-80GB" A100, "Tesla T4" T4."""
    found = re.search(r"\b([A-Z]{1,2}\d{1,4}[A-Z]?)\b", device_name.replace("-", " "))
    return found.group(1) if found else device_name.strip()


def record(measurement: Measurement, path: Path = TABLE) -> None:
    """Adds ``measurement`` to the table, replacing the row of the same configuration."""
    kept = [m for m in read_table(path) if _key(m) != _key(measurement)]
    frame = pd.DataFrame([asdict(m) for m in [*kept, measurement]], columns=COLUMNS)
    frame["compiled"] = frame.compiled.map({True: "true", False: "false"})
    frame["generator_blocks"] = frame.generator_blocks.astype("Int64")
    frame.to_csv(path, index=False)


def _key(measurement: Measurement) -> tuple:
    return tuple(getattr(measurement, column) for column in KEY)
