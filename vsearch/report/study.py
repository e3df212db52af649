"""The report of a study: the generalisation matrix per level (mean ± sd over seeds, the in-distribution diagonal
outlined, a generalisation-gap column), scores by distribution shift, and the paper's questions answered."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from vsearch.data import storage
from vsearch.evaluate.score import FIELD_LEVELS, LEVELS
from vsearch.recommend.sources import study_mix_scores
from vsearch.report.recommendation import recommendation_section
from vsearch.study.answers import answer_questions, answers_table
from vsearch.study.matrix import (
    IN_DISTRIBUTION,
    MEAN_OF_STAINS,
    SHIFTS,
    cell_summary,
    generalisation_gap,
    matrix_grid,
    shift_summary,
)
from vsearch.study.results import MATRIX_FILE, read_cells, read_matrix

ROW_HEIGHT = 34  # pixels per training set
GAP = "gap (in − out)"
DIAGONAL = "#ff7f0e"  # outline of the in-distribution cells


def study_panels(matrix: pd.DataFrame, level: str) -> dict[str, pd.DataFrame]:
    """``cell_summary`` of the level for the mean over stains, then each stain."""
    scored = matrix[(matrix.level == level) & matrix.score.notna()]
    stains = list(dict.fromkeys(scored.stain))  # a stain the level cannot score (no objects of its own) is left out
    return {MEAN_OF_STAINS: cell_summary(matrix, level)} | {s: cell_summary(matrix, level, s) for s in stains}


def _cell_text(mean: pd.DataFrame, sd: pd.DataFrame) -> np.ndarray:
    text = np.full(mean.shape, "", dtype=object)
    for (i, j), value in np.ndenumerate(mean.to_numpy()):
        if np.isfinite(value):
            spread = sd.to_numpy()[i, j]
            text[i, j] = f"{value:.2f}" + (f"<br>±{spread:.2f}" if np.isfinite(spread) else "")
    return text


def study_matrix_figure(panels: dict[str, pd.DataFrame], gap: pd.DataFrame, level: str) -> go.Figure:
    """One heatmap per panel (rows: training set · model; columns: test conditions; in-distribution cells
    outlined), then the generalisation gap of the mean over stains."""
    titles = [*panels, GAP]
    figure = make_subplots(
        rows=1, cols=len(titles), shared_yaxes=True, horizontal_spacing=0.015, subplot_titles=titles,
        column_widths=[1.0] * len(panels) + [0.25],
    )  # fmt: skip
    for col, summary in enumerate(panels.values(), start=1):
        mean, sd = matrix_grid(summary, "mean"), matrix_grid(summary, "sd")
        figure.add_trace(
            go.Heatmap(
                z=mean.to_numpy(), x=list(mean.columns), y=list(mean.index), zmin=0, zmax=1, colorscale="Viridis",
                text=_cell_text(mean, sd), texttemplate="%{text}", showscale=col == 1, colorbar={"title": level},
                hovertemplate="trained on %{y}<br>tested on %{x}: %{z:.3f}<extra></extra>",
            ),
            row=1, col=col,
        )  # fmt: skip
        inside = matrix_grid(summary.assign(diagonal=summary["shift"] == IN_DISTRIBUTION), "diagonal")
        for i, j in zip(*np.nonzero(inside.fillna(False).to_numpy().astype(bool)), strict=True):
            figure.add_shape(
                type="rect", x0=j - 0.45, x1=j + 0.45, y0=i - 0.45, y1=i + 0.45, line={"color": DIAGONAL, "width": 3},
                row=1, col=col,
            )  # fmt: skip
    labels = list(matrix_grid(next(iter(panels.values()))).index)
    gaps = gap.assign(row=gap.training_set + " · " + gap.model).set_index("row").reindex(labels)
    figure.add_trace(
        go.Heatmap(
            z=gaps[["mean"]].to_numpy(), x=[GAP], y=labels, colorscale="RdBu_r", zmid=0, showscale=False,
            text=_cell_text(gaps[["mean"]], gaps[["sd"]]), texttemplate="%{text}",
            hovertemplate="%{y}<br>in-distribution minus out-of-distribution: %{z:.3f}<extra></extra>",
        ),
        row=1, col=len(titles),
    )  # fmt: skip
    figure.update_yaxes(autorange="reversed", automargin=True)
    figure.update_layout(
        title=f"{level}: trained on (rows) × tested on the test wells of (columns); mean ± sd over seeds, "
        "in-distribution outlined in orange",
        height=220 + ROW_HEIGHT * max(len(labels), 4),
    )
    return figure


def shift_figure(shifts: pd.DataFrame, level: str) -> go.Figure:
    """Mean ± sd over seeds per training set, one bar per distribution shift."""
    figure = go.Figure()
    labels = shifts.training_set + " · " + shifts.model
    for shift in [s for s in SHIFTS if s in set(shifts["shift"])]:
        rows = shifts["shift"] == shift
        figure.add_trace(
            go.Bar(
                name=shift, x=labels[rows], y=shifts["mean"][rows],
                error_y={"type": "data", "array": shifts["sd"][rows].fillna(0).to_numpy()},
            )
        )  # fmt: skip
    figure.update_layout(
        barmode="group", title=f"{level} score by distribution shift (mean over stains and test conditions)",
        yaxis={"title": f"{level} score", "range": [0, 1]}, height=460,
    )  # fmt: skip
    return figure


def study_report_html(results: str) -> str:
    """The report page of a study's results folder."""
    matrix, source = read_matrix(results), storage.join(results, MATRIX_FILE)
    if matrix.empty:
        raise ValueError(f"{source}: no scored model to report on")
    levels = [
        level for level in LEVELS if level in set(matrix.level) and matrix[matrix.level == level].score.notna().any()
    ]
    figures = [study_matrix_figure(study_panels(matrix, lv), generalisation_gap(matrix, lv), lv) for lv in levels]
    figures.append(shift_figure(shift_summary(matrix, "pixel"), "pixel"))
    recommendation, recommendation_plot = recommendation_section(lambda: study_mix_scores(read_cells(results), matrix))
    figures += [recommendation_plot] if recommendation_plot else []
    plots = [f.to_html(full_html=False, include_plotlyjs=i == 0) for i, f in enumerate(figures)]
    answered = [a for level in levels if level in FIELD_LEVELS for a in answer_questions(matrix, level)]
    answers = answers_table(answered).to_html(index=False, border=0, classes="trials")
    seeds = matrix.groupby(["training_set", "model"]).seed.nunique()
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>vsearch study: {html.escape(source)}</title>
<style>body{{font-family:sans-serif;margin:2em}} table.trials{{border-collapse:collapse}}
table.trials td,table.trials th{{padding:2px 10px;text-align:left;border-bottom:1px solid #ddd}}</style></head>
<body><h1>vsearch study</h1>
<p>{html.escape(source)}: {matrix.training_set.nunique()} training sets × {matrix.model.nunique()} model(s) ×
{seeds.min()}–{seeds.max()} seeds, each tested on the test wells of {matrix.test_condition.nunique()} conditions
(wells no model trained on). Scores are in [0, 1], higher is better.</p>
<h2>Generalisation matrices</h2>{"".join(plots[: len(levels)])}
<h2>The paper's questions</h2>
<p>At each level, averaged over stains. The transfer questions compare losses against each test condition's own
model: a model's score minus that of the same config and seed trained on the test condition alone (0: it
transfers perfectly), so a test condition that is hard for every model does not decide them. A difference counts
when a paired t-test over seeds finds it at the 5% level (beyond 12.7 standard errors for 2 seeds, 4.30 for 3,
2.78 for 5): with few seeds, most answers say "no clear difference".</p>
{answers}
<h2>Distribution shifts</h2>{plots[len(levels)]}
<h2>Recommended training mix</h2>{recommendation}{"".join(plots[len(levels) + 1 :])}
</body></html>
"""
