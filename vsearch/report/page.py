"""``vsearch report``: one self-contained HTML file (plotly.js inlined) on a search's results folder."""

from __future__ import annotations

import html
import json

import pandas as pd

from vsearch.data import storage
from vsearch.evaluate.score import FIELD_LEVELS
from vsearch.recommend.sources import search_mix_scores
from vsearch.report.examples import examples_figure
from vsearch.report.matrix import ranked_completed, score_columns, training_set_label, training_set_labels
from vsearch.report.plots import (
    composition_figure,
    composition_points,
    matrix_figure,
    matrix_panels,
    pareto_figure,
    pareto_points,
)
from vsearch.report.recommendation import recommendation_section
from vsearch.report.study import study_report_html
from vsearch.search.examples import read_examples
from vsearch.search.results import TRIALS_FILE, read_trials
from vsearch.study.results import is_study

REPORT_FILE = "report.html"
TOP_TRIALS = 10


def _best_table(trials: pd.DataFrame) -> str:
    best = ranked_completed(trials).head(TOP_TRIALS)
    table = pd.DataFrame(
        {
            "training set": training_set_labels(best),
            **{column: best[column].round(3) for column in ("composite", *FIELD_LEVELS)},
            "model": [", ".join(f"{k}={v}" for k, v in json.loads(c).items()) for c in best.config],
        }
    )
    return table.to_html(index=False, border=0, classes="trials")


def _failed_table(trials: pd.DataFrame) -> str:
    """The failed trials and the last line of each one's error; nothing when none failed."""
    failed = trials[trials.status == "failed"]
    if failed.empty:
        return ""
    table = pd.DataFrame({"training set": training_set_labels(failed), "error": failed.error})
    return f"<h2>Failed trials</h2>{table.to_html(index=False, border=0, classes='trials')}"


def report_html(results: str) -> str:
    """The report page of a results folder."""
    trials, source = read_trials(results), storage.join(results, TRIALS_FILE)
    if ranked_completed(trials).empty:
        failed = trials[trials.status == "failed"]
        why = f"; trial {failed.trial_id.iloc[0]} failed: {failed.error.iloc[0]}" if len(failed) else ""
        raise ValueError(
            f"{source}: no completed trial to report on (statuses: {dict(trials.status.value_counts())}){why}"
        )
    levels = [level for level in FIELD_LEVELS if level in set(score_columns(trials).level)]
    figures = [
        *(matrix_figure(matrix_panels(trials, level), level) for level in levels),
        pareto_figure(pareto_points(trials)),
        composition_figure(composition_points(trials)),
    ]
    best = ranked_completed(trials).iloc[0]
    try:
        title = f"Best trial {training_set_label(best)}: one field of each held-out condition"
        figures.append(examples_figure(read_examples(results, best.trial_id), title))
        examples_note = ""
    except FileNotFoundError as missing:  # a search from before examples were saved: the rest of the report stands
        examples_note = f"<p>No example predictions: {html.escape(str(missing))}</p>"
    recommendation, recommendation_plot = recommendation_section(lambda: search_mix_scores(trials))
    figures += [recommendation_plot] if recommendation_plot else []
    plots = [f.to_html(full_html=False, include_plotlyjs=i == 0) for i, f in enumerate(figures)]
    examples_end = len(plots) - (1 if recommendation_plot else 0)
    counts = ", ".join(f"{n} {status}" for status, n in trials.status.value_counts().items())
    held_out = ", ".join(json.loads(trials.held_out.iloc[0]))
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>vsearch report: {html.escape(source)}</title>
<style>body{{font-family:sans-serif;margin:2em}} table.trials{{border-collapse:collapse}}
table.trials td,table.trials th{{padding:2px 10px;text-align:left;border-bottom:1px solid #ddd}}</style></head>
<body><h1>vsearch report</h1>
<p>{html.escape(source)}: {len(trials)} trials ({html.escape(counts)}). Held-out test conditions:
{html.escape(held_out)}. Scores are in [0, 1], higher is better; the composite is the search objective.</p>
<h2>Best trials</h2>{_best_table(trials)}{_failed_table(trials)}
<h2>Generalisation matrices</h2>{"".join(plots[: len(levels)])}
<h2>Levels and the Pareto front</h2>{plots[len(levels)]}
<h2>Training composition</h2>{plots[len(levels) + 1]}
<h2>Example predictions</h2>{"".join(plots[len(levels) + 2 : examples_end])}{examples_note}
<h2>Recommended training mix</h2>{recommendation}{"".join(plots[examples_end:])}
</body></html>
"""


def write_report(results: str, out: str | None = None) -> str:
    """Writes the report of ``results`` (a study's or a search's) to ``out`` (default ``RESULTS/report.html``);
    returns where. A local file is replaced whole, never left half-written."""
    page = study_report_html(results) if is_study(results) else report_html(results)
    return storage.publish(out or storage.join(results, REPORT_FILE), page.encode())
