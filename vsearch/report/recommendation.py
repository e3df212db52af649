"""The report's recommended-mix section: the recommendation in words and the surrogate's predicted score over
the simplex (a ternary map for three conditions, per-condition response curves for more) with the tried mixes."""

from __future__ import annotations

import html
from collections.abc import Callable

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from vsearch.recommend.mixes import MixModel, MixScores, Recommendation, best_tried_rows, fit_mix_model, recommend_mix
from vsearch.recommend.simplex import simplex_lattice

TERNARY_STEP = 0.025
CURVE_POINTS = 41


def simplex_surface(model: MixModel, mixes: MixScores) -> pd.DataFrame:
    """The predicted score on a lattice of three-condition mixes, at the best tried mix's settings."""
    lattice = simplex_lattice(3, TERNARY_STEP)
    mean, sd = model.predict(lattice, best_tried_rows(mixes)[0])
    return pd.DataFrame({**{c: lattice[:, i] for i, c in enumerate(mixes.conditions)}, "mean": mean, "sd": sd})


def response_curves(model: MixModel, mixes: MixScores, recommendation: Recommendation) -> pd.DataFrame:
    """Per condition, the predicted score as its weight runs from 0 to 1 while the others keep their shares of
    the recommended mix (equal shares where the recommendation gives them none)."""
    centre = np.array([recommendation.weights.get(c, 0.0) for c in mixes.conditions])
    rows = []
    for i, condition in enumerate(mixes.conditions):
        others = np.delete(centre, i)
        shares = others / others.sum() if others.sum() > 0 else np.full(len(others), 1 / len(others))
        t = np.linspace(0, 1, CURVE_POINTS)
        weights = np.insert(np.outer(1 - t, shares), i, t, axis=1)
        mean, sd = model.predict(weights, best_tried_rows(mixes)[0])
        rows.append(pd.DataFrame({"condition": condition, "weight": t, "mean": mean, "sd": sd}))
    return pd.concat(rows, ignore_index=True)


def recommendation_figure(model: MixModel, mixes: MixScores, recommendation: Recommendation) -> go.Figure:
    conditions, objective = mixes.conditions, mixes.objective
    recommended = [recommendation.weights.get(c, 0.0) for c in conditions]
    title = f"Surrogate's predicted {objective} over the training mixes (at the best tried mix's model settings)"
    if len(conditions) == 3:
        surface = simplex_surface(model, mixes)
        tried_labels = [f"trial {t}: {s:.3f}" for t, s in zip(mixes.trial_ids, mixes.scores, strict=True)]
        axes = {"a": conditions[0], "b": conditions[1], "c": conditions[2]}
        figure = go.Figure(
            [
                go.Scatterternary(
                    **{k: surface[c] for k, c in axes.items()}, mode="markers", name="predicted",
                    marker={"color": surface["mean"], "colorscale": "Viridis", "size": 7, "symbol": "square",
                            "colorbar": {"title": objective}},
                    hovertemplate="predicted %{marker.color:.3f}<extra></extra>",
                ),
                go.Scatterternary(
                    a=mixes.weights[:, 0], b=mixes.weights[:, 1], c=mixes.weights[:, 2], mode="markers",
                    name="tried", cliponaxis=False, text=tried_labels,
                    marker={"color": "white", "size": 9, "line": {"color": "black", "width": 1.5}},
                    hovertemplate="%{text}<extra></extra>",
                ),
                go.Scatterternary(
                    a=[recommended[0]], b=[recommended[1]], c=[recommended[2]], mode="markers", name="recommended",
                    cliponaxis=False,
                    marker={"color": "red", "size": 16, "symbol": "star", "line": {"color": "black", "width": 1}},
                ),
            ]
        )  # fmt: skip
        figure.update_layout(
            title=title,
            ternary={f"{k}axis": {"title": c, "min": 0} for k, c in axes.items()},
            legend={"orientation": "h", "x": 0, "y": -0.08},
            height=600,
        )
        return figure
    curves = response_curves(model, mixes, recommendation)
    figure = go.Figure()
    for condition, curve in curves.groupby("condition", sort=False):
        figure.add_scatter(x=curve.weight, y=curve["mean"], mode="lines", name=condition,
                           error_y={"type": "data", "array": curve.sd, "visible": True, "thickness": 0.5})  # fmt: skip
    figure.update_layout(
        title=title + ": each condition's weight varied, the others in the recommended proportions",
        xaxis_title="weight of the condition",
        yaxis_title=f"predicted {objective}",
        height=460,
    )
    return figure


def recommendation_text(recommendation: Recommendation) -> str:
    """The recommendation as an HTML paragraph and a list of the next mixes."""
    r = recommendation
    mix = ", ".join(f"{k} {v:.2f}" for k, v in r.weights.items())
    best = ", ".join(f"{k} {v:.2f}" for k, v in r.best_tried.items())
    trust = "" if r.trusted else " Too few trials, or too low a correlation, to trust its ranking: try more mixes."
    fields = f" For {sum(r.fields.values())} fields: " + ", ".join(f"{k} {n}" for k, n in r.fields.items()) + "." if (
        r.fields) else ""  # fmt: skip
    proposed = "".join(
        f"<li>{html.escape(', '.join(f'{k} {v:.2f}' for k, v in m.weights.items()))}: predicted {m.predicted:.3f} "
        f"± {m.sd:.3f}</li>"
        for m in r.next_mixes
    )
    return (
        f"<p><b>Recommended mix</b> ({html.escape(r.objective)}, from {r.trials} trials): {html.escape(mix)}, "
        f"predicted {r.predicted:.3f} (95% interval {r.interval[0]:.3f}–{r.interval[1]:.3f}).{html.escape(fields)} "
        f"Best mix tried: {html.escape(best)}, {r.best_tried_score:.3f} over {r.best_tried_runs} run(s). "
        f"{html.escape(r.verdict[0].upper() + r.verdict[1:])}"
        + (
            f"; the seed noise SD is {r.noise_sd:.3f} ({html.escape(r.noise_source)})"
            if np.isfinite(r.noise_sd)
            else ""
        )
        + f". The surrogate (a Gaussian process) ranks each trial, left out, with a "
        f"rank correlation of {r.loo_spearman:.2f}.{trust}</p><p>Next mixes worth trying (expected improvement; "
        f"<code>vsearch recommend</code> writes them as a search space):</p><ul>{proposed}</ul>"
    )


def recommendation_section(scored_mixes: Callable[[], MixScores]) -> tuple[str, go.Figure | None]:
    """The section's text and figure for the mixes ``scored_mixes`` reads; too few scored trials give the reason
    and no figure."""
    try:
        mixes = scored_mixes()
        model = fit_mix_model(mixes)
        recommendation = recommend_mix(mixes, model=model)
    except ValueError as error:
        return f"<p>No recommendation: {html.escape(str(error))}</p>", None
    return recommendation_text(recommendation), recommendation_figure(model, mixes, recommendation)
