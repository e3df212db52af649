"""Plotly figures of a search's trials table. Each figure has a pure function that returns its data (tested
against hand-computed values) and one that draws it, as ``optuna.visualization`` does."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from vsearch.evaluate.score import FIELD_LEVELS
from vsearch.report.matrix import generalisation_matrix, ranked_completed, score_columns, training_set_labels
from vsearch.report.pareto import pareto_front
from vsearch.study.matrix import MEAN_OF_STAINS

ROW_HEIGHT = 22  # pixels per training set in a matrix
WEIGHT_PREFIX = "w/"


def matrix_panels(trials: pd.DataFrame, level: str) -> dict[str, pd.DataFrame]:
    """The level's generalisation matrices: the mean over stains, then one per stain that any completed trial
    scored at the level (``generalisation_matrix``); a stain the level cannot score, such as the instance level
    of a stain without objects of its own, gets no empty panel."""
    columns = score_columns(trials).query("level == @level")
    done = ranked_completed(trials)
    scored = [bool(done[column].notna().any()) for column in columns.column]
    stains = list(dict.fromkeys(columns.stain[scored]))
    return {MEAN_OF_STAINS: generalisation_matrix(trials, level)} | {
        stain: generalisation_matrix(trials, level, stain) for stain in stains
    }


def matrix_figure(panels: dict[str, pd.DataFrame], level: str) -> go.Figure:
    """One heatmap per panel of ``matrix_panels``, on a shared 0–1 scale, best trial on top."""
    figure = make_subplots(
        rows=1, cols=len(panels), shared_yaxes=True, horizontal_spacing=0.02, subplot_titles=list(panels),
    )  # fmt: skip
    for col, matrix in enumerate(panels.values(), start=1):
        figure.add_trace(
            go.Heatmap(
                z=matrix.to_numpy(), x=list(matrix.columns), y=list(matrix.index), zmin=0, zmax=1,
                colorscale="Viridis", texttemplate="%{z:.2f}", showscale=col == 1,
                colorbar={"title": "score"}, hovertemplate="%{y}<br>%{x}: %{z:.3f}<extra></extra>",
            ),
            row=1, col=col,
        )  # fmt: skip
    rows = len(next(iter(panels.values())))
    figure.update_yaxes(autorange="reversed", automargin=True)
    figure.update_layout(
        title=f"{level} score on held-out conditions (rows: training sets, best composite first)",
        height=200 + ROW_HEIGHT * max(rows, 4),
    )
    return figure


def pareto_points(trials: pd.DataFrame) -> pd.DataFrame:
    """One row per completed trial (best composite first): ``label``, the field levels, and ``on_front``, whether
    no other trial is at least as good at every level and better at one."""
    done = ranked_completed(trials)
    points = done[list(FIELD_LEVELS)].reset_index(drop=True)
    points.insert(0, "label", training_set_labels(done))
    points["on_front"] = pareto_front(points[list(FIELD_LEVELS)].to_numpy())
    return points


def pareto_figure(points: pd.DataFrame) -> go.Figure:
    """Pixel against instance score, coloured by feature score; trials on the Pareto front are diamonds."""
    front = points.on_front.to_numpy()
    figure = go.Figure(
        go.Scatter(
            x=points.pixel, y=points.instance, mode="markers", text=points.label,
            marker={
                "color": points.feature, "colorscale": "Viridis", "cmin": 0, "cmax": 1,
                "colorbar": {"title": "feature"},
                "size": [14 if f else 8 for f in front], "symbol": ["diamond" if f else "circle" for f in front],
            },
            hovertemplate="%{text}<br>pixel %{x:.3f}, instance %{y:.3f}, feature %{marker.color:.3f}<extra></extra>",
        )
    )  # fmt: skip
    figure.update_layout(
        title=f"Levels per trial: {int(front.sum())} of {len(points)} on the Pareto front (diamonds)",
        xaxis_title="pixel score", yaxis_title="instance score", height=480,
    )  # fmt: skip
    return figure


def composition_points(trials: pd.DataFrame) -> pd.DataFrame:
    """Long table of completed trials × training conditions: ``label``, ``condition``, its ``weight`` in the
    trial's mix and the trial's ``composite``."""
    done = ranked_completed(trials)
    weights = [c for c in done.columns if c.startswith(WEIGHT_PREFIX)]
    wide = done[["composite", *weights]].assign(label=training_set_labels(done))
    long = wide.melt(id_vars=["label", "composite"], value_vars=weights, var_name="condition", value_name="weight")
    long["condition"] = long.condition.str.removeprefix(WEIGHT_PREFIX)
    return long[["label", "condition", "weight", "composite"]]


def composition_figure(points: pd.DataFrame) -> go.Figure:
    """Composite score against each training condition's weight: how the mix drives held-out performance."""
    conditions = list(dict.fromkeys(points.condition))
    figure = make_subplots(rows=1, cols=max(len(conditions), 1), shared_yaxes=True, subplot_titles=conditions)
    for col, condition in enumerate(conditions, start=1):
        one = points[points.condition == condition]
        figure.add_trace(
            go.Scatter(
                x=one.weight, y=one.composite, mode="markers", text=one.label, showlegend=False,
                hovertemplate="%{text}<br>weight %{x:.2f}, composite %{y:.3f}<extra></extra>",
            ),
            row=1, col=col,
        )  # fmt: skip
        figure.update_xaxes(range=[-0.05, 1.05], title_text="weight", row=1, col=col)
    figure.update_yaxes(title_text="composite score", row=1, col=1)
    figure.update_layout(title="Composition → held-out composite score", height=420)
    return figure
