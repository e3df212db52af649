"""Tonks et al.'s 6 × 6 design on the synthetic screen: one U-Net per single condition × seeds, each tested on the
test wells of all six conditions; writes the study's results and report, the pixel-level matrix as a PNG and
the answers to the paper's questions and the transfer losses between cell types as Markdown.

    .venv/bin/python analysis/paper_matrix.py [--out analysis_out] [--seeds 3] [--epochs 12]

On a real screen and a GPU cluster, run ``vsearch study studies/paper.yaml`` instead (see analysis/README.md).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from vsearch.config import OptimConfig, UNetConfig
from vsearch.data.synth import SynthSpec, synthesize
from vsearch.evaluate.score import FIELD_LEVELS
from vsearch.report.page import write_report
from vsearch.report.study import study_matrix_figure, study_panels
from vsearch.study.answers import answer_questions, answers_table, transfer_losses
from vsearch.study.matrix import generalisation_gap
from vsearch.study.runner import run_study
from vsearch.study.spec import StudyModel, StudySpec, TrainingSets

# a screen with enough wells that every condition keeps test, validation and training wells
SCREEN = SynthSpec(plates=4, wells_per_condition=4, sites=2, size=128, seed=0)
PNG_LIMIT = 300_000  # bytes


def screenshot(figure, out: Path, width: int, height: int) -> None:
    """A PNG of a plotly figure, drawn by headless Chromium (no kaleido needed)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("the PNG needs Debian's chromium; the report was written without it")
    figure.update_layout(width=width, height=height, margin={"l": 10, "r": 10, "t": 60, "b": 10})
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "figure.html"
        page.write_text(figure.to_html(full_html=True, include_plotlyjs=True))
        subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp}/profile",
             "--hide-scrollbars", f"--window-size={width},{height}", "--virtual-time-budget=10000",
             f"--screenshot={out.absolute()}", page.as_uri()],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip


def markdown(table) -> str:
    rows = [list(table.columns), ["---"] * len(table.columns), *table.astype(str).to_numpy().tolist()]
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def type_transfer_table(matrix: pd.DataFrame) -> pd.DataFrame:
    """Rows: level and trained cell type; columns: tested cell type; cells: mean transfer loss (over phenotypes,
    then seeds) against the test condition's own model, ± its standard error over seeds."""
    rows = []
    for level in FIELD_LEVELS:
        losses = transfer_losses(matrix, level)
        trained, tested = losses.trained_on.str.split("/").str[0], losses.test_condition.str.split("/").str[0]
        other = losses[trained != tested].assign(trained=trained, tested=tested)
        by_seed = other.groupby(["trained", "tested", "seed"]).score.mean()
        for (t, u), seeds in by_seed.groupby(["trained", "tested"]):
            se = seeds.std(ddof=1) / np.sqrt(len(seeds))
            rows.append({"level": level, "trained on": t, "tested on": u, "loss": f"{seeds.mean():+.3f} ± {se:.3f}"})
    table = pd.DataFrame(rows).pivot(index=["level", "trained on"], columns="tested on", values="loss")
    return table.reindex(FIELD_LEVELS, level=0).fillna("").reset_index()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="analysis_out")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=12)
    args = parser.parse_args()
    out = Path(args.out)
    screen = out / "screen"
    if not (screen / "manifest.parquet").exists():
        synthesize(SCREEN, str(screen), overwrite=True)
    spec = StudySpec(
        dataset=str(screen),
        training_sets=TrainingSets(singles=True),
        models=[StudyModel(model=UNetConfig(depth=3, base_width=16), optim=OptimConfig(lr=0.003), epochs=args.epochs)],
        seeds=list(range(args.seeds)),
        budget=24,
        patch=64,
        patches_per_field=8,
        test_fields_per_condition=4,
        results=str(out / "results"),
    )
    started = time.perf_counter()
    matrix, _ = run_study(spec)
    wall = time.perf_counter() - started
    report = write_report(spec.results)

    figure = study_matrix_figure(study_panels(matrix, "pixel"), generalisation_gap(matrix, "pixel"), "pixel")
    png = Path(__file__).parent / "paper_matrix.png"
    screenshot(figure, png, width=1700, height=520)
    answers = answers_table([a for level in FIELD_LEVELS for a in answer_questions(matrix, level)])
    types = type_transfer_table(matrix)
    (out / "answers.md").write_text(markdown(answers) + "\n\n" + markdown(types) + "\n")
    summary = {"wall_seconds": round(wall), "models": int(matrix.trial_id.nunique()), "report": report,
               "png_bytes": png.stat().st_size}  # fmt: skip
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(markdown(answers), markdown(types), sep="\n\n")
    print(json.dumps(summary, indent=2))
    if summary["png_bytes"] > PNG_LIMIT:
        raise SystemExit(f"{png} is {summary['png_bytes']} bytes, over {PNG_LIMIT}")


if __name__ == "__main__":
    main()
