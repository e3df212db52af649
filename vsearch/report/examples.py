"""Example predictions of a search's best trial on held-out fields: bright-field, real and predicted stains, and
their error, for the report."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from vsearch.config import TrainConfig
from vsearch.data.dataset import open_dataset
from vsearch.data.manifest import conditions_of
from vsearch.data.normalise import normalise_inputs
from vsearch.evaluate.pixel import normalise_pair
from vsearch.search.results import read_held_out_fields, trial_run
from vsearch.train.checkpoint import load_model
from vsearch.train.predict import local_checkpoint, predict_fields

PANEL_PX = 160  # displayed size of each image


@dataclass
class Example:
    """One field, every image on a display scale of [0, 1]: the bright-field as the model sees it, stains by the
    real image's 0.5–99.5th percentiles (as the pixel level scores them), so a prediction that is too bright or
    too dark looks it."""

    field_id: str
    condition: str
    bright_field: np.ndarray  # the middle plane
    real: dict[str, np.ndarray]
    predicted: dict[str, np.ndarray]

    def error(self, stain: str) -> np.ndarray:
        return np.abs(self.predicted[stain] - self.real[stain])


def display_pair(real: np.ndarray, predicted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    real, predicted = normalise_pair(real, predicted)
    return np.clip(real, 0, 1), np.clip(predicted, 0, 1)


def trial_examples(results: str, trial: pd.Series, per_condition: int = 1) -> list[Example]:
    """Predictions of the trial's last checkpoint on the first ``per_condition`` of the fields the search scored
    in each held-out condition (saved with its results)."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with local_checkpoint(trial_run(results, trial.trial_id)) as folder:
        model, meta = load_model(folder, device)
    config = TrainConfig.model_validate(meta["config"])
    dataset = open_dataset(config.data.dataset)
    field_ids = [field_id for ids in read_held_out_fields(results).values() for field_id in ids[:per_condition]]
    fields = list(dataset.iter_fields(field_ids, stains=meta["stains"], labels=False))
    conditions = dict(zip(dataset.manifest.field_id, conditions_of(dataset.manifest), strict=True))
    examples = []
    for field, prediction in zip(fields, predict_fields(model, meta, fields, device=device), strict=True):
        pairs = {s: display_pair(field.stains[s], prediction.stains[s]) for s in meta["stains"]}
        middle = len(field.bf) // 2
        examples.append(
            Example(
                field.field_id, conditions[field.field_id],
                np.clip(normalise_inputs(field.bf[middle : middle + 1])[0], 0, 1),  # as the model sees it
                {s: real for s, (real, _) in pairs.items()}, {s: pred for s, (_, pred) in pairs.items()},
            )
        )  # fmt: skip
    return examples


def examples_figure(examples: list[Example], title: str) -> go.Figure:
    """One row per field: bright-field, then each stain's real, predicted and |error| images."""
    stains = list(examples[0].real)
    columns = ["bright-field", *(f"{s} {kind}" for s in stains for kind in ("real", "predicted", "|error|"))]
    figure = make_subplots(
        rows=len(examples), cols=len(columns), horizontal_spacing=0.005, vertical_spacing=0.03,
        column_titles=columns, row_titles=[f"{e.condition}<br>{e.field_id}" for e in examples],
    )  # fmt: skip
    for row, example in enumerate(examples, start=1):
        images = [example.bright_field]
        for stain in stains:
            images += [example.real[stain], example.predicted[stain], example.error(stain)]
        for col, image in enumerate(images, start=1):
            pixels = np.rint(image * 255).astype(np.uint8)
            figure.add_trace(px.imshow(pixels, binary_string=True).data[0], row=row, col=col)
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    figure.update_layout(
        title=title, width=PANEL_PX * len(columns) + 200, height=PANEL_PX * len(examples) + 120,
        margin={"l": 10, "r": 120, "t": 100, "b": 10},
    )  # fmt: skip
    return figure
