"""The figure of a trial's example predictions (saved by the search, see ``vsearch.search.examples``)."""

from __future__ import annotations

import numpy as np
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from vsearch.search.examples import GREY_LEVELS, Example

PANEL_PX = 160  # displayed size of each image


def example_panels(examples: list[Example]) -> tuple[list[str], list[str], list[list[np.ndarray]]]:
    """(column titles, row titles, rows of uint8 images): per field its bright-field, then each stain's real,
    predicted and |error| images."""
    stains = list(examples[0].real)
    columns = ["bright-field", *(f"{s} {kind}" for s in stains for kind in ("real", "predicted", "|error|"))]
    rows = [f"{e.condition}<br>{e.field_id}" for e in examples]
    images = []
    for example in examples:
        row = [example.bright_field]
        for stain in stains:
            row += [example.real[stain], example.predicted[stain], example.error(stain)]
        images.append([np.rint(np.clip(image, 0, 1) * GREY_LEVELS).astype(np.uint8) for image in row])
    return columns, rows, images


def examples_figure(examples: list[Example], title: str) -> go.Figure:
    columns, rows, images = example_panels(examples)
    figure = make_subplots(
        rows=len(rows), cols=len(columns), horizontal_spacing=0.005, vertical_spacing=0.03,
        column_titles=columns, row_titles=rows,
    )  # fmt: skip
    for row, panels in enumerate(images, start=1):
        for col, pixels in enumerate(panels, start=1):
            figure.add_trace(px.imshow(pixels, binary_string=True).data[0], row=row, col=col)
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    figure.update_layout(
        title=title, width=PANEL_PX * len(columns) + 200, height=PANEL_PX * len(rows) + 120,
        margin={"l": 10, "r": 120, "t": 100, "b": 10},
    )  # fmt: skip
    return figure
