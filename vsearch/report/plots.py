"""Plotly figures of a search's trials table."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from vsearch.evaluate.score import FIELD_LEVELS
from vsearch.report.matrix import generalisation_matrix, ranked_completed, score_columns, training_set_labels
from vsearch.report.pareto import pareto_front

ROW_HEIGHT = 22  # pixels per training set in a matrix


def matrix_figure(trials, level: str) -> go.Figure:
    """The level's generalisation matrix: the mean over stains, then one panel per stain, on a shared 0–1 scale."""
    stains = list(dict.fromkeys(score_columns(trials).query("level == @level").stain))
    panels = [None, *stains]
    figure = make_subplots(
        rows=1, cols=len(panels), shared_yaxes=True, horizontal_spacing=0.02,
        subplot_titles=["mean of stains", *stains],
    )  # fmt: skip
    for col, stain in enumerate(panels, start=1):
        matrix = generalisation_matrix(trials, level, stain)
        figure.add_trace(
            go.Heatmap(
                z=matrix.to_numpy(), x=list(matrix.columns), y=list(matrix.index), zmin=0, zmax=1,
                colorscale="Viridis", texttemplate="%{z:.2f}", showscale=col == 1,
                colorbar={"title": "score"}, hovertemplate="%{y}<br>%{x}: %{z:.3f}<extra></extra>",
            ),
            row=1, col=col,
        )  # fmt: skip
    rows = len(ranked_completed(trials))
    figure.update_yaxes(autorange="reversed", automargin=True)  # best trial on top
    figure.update_layout(
        title=f"{level} score on held-out conditions (rows: training sets, best composite first)",
        height=200 + ROW_HEIGHT * max(rows, 4),
    )
    return figure


def pareto_figure(trials) -> go.Figure:
    """Pixel against instance score per completed trial, coloured by feature score; trials on the three-level
    Pareto front are drawn as diamonds."""
    done = ranked_completed(trials)
    front = pareto_front(done[list(FIELD_LEVELS)].to_numpy())
    labels = training_set_labels(done)
    figure = go.Figure(
        go.Scatter(
            x=done.pixel, y=done.instance, mode="markers", text=labels,
            marker={
                "color": done.feature, "colorscale": "Viridis", "cmin": 0, "cmax": 1, "colorbar": {"title": "feature"},
                "size": [14 if f else 8 for f in front], "symbol": ["diamond" if f else "circle" for f in front],
            },
            hovertemplate="%{text}<br>pixel %{x:.3f}, instance %{y:.3f}, feature %{marker.color:.3f}<extra></extra>",
        )
    )  # fmt: skip
    figure.update_layout(
        title=f"Levels per trial: {int(front.sum())} of {len(done)} on the Pareto front (diamonds)",
        xaxis_title="pixel score", yaxis_title="instance score", height=480,
    )  # fmt: skip
    return figure


def composition_figure(trials) -> go.Figure:
    """Composite score against each training condition's weight: how the mix drives held-out performance."""
    done = ranked_completed(trials)
    weights = [c for c in done.columns if c.startswith("w/")]
    figure = make_subplots(rows=1, cols=max(len(weights), 1), shared_yaxes=True, subplot_titles=weights)
    labels = training_set_labels(done)
    for col, weight in enumerate(weights, start=1):
        figure.add_trace(
            go.Scatter(
                x=done[weight], y=done.composite, mode="markers", text=labels, showlegend=False,
                hovertemplate="%{text}<br>weight %{x:.2f}, composite %{y:.3f}<extra></extra>",
            ),
            row=1, col=col,
        )  # fmt: skip
        figure.update_xaxes(range=[-0.05, 1.05], title_text="weight", row=1, col=col)
    figure.update_yaxes(title_text="composite score", row=1, col=1)
    figure.update_layout(title="Composition → held-out composite score", height=420)
    return figure
