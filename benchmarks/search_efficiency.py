"""How fast does each way of choosing training mixes find the best one? A tabular benchmark with a known optimum.

Once: one fixed U-Net trained on every mix of a lattice over the three non-toxic conditions of the synthetic
screen (step 0.25: 15 mixes) × 2 seeds, 8 epochs each, scored on the test wells of the toxic conditions, which no mix
trains on (a `vsearch study`). The table is kept in ``--out`` and reused.

Then: selection strategies replayed on the table, each allowed to pick only lattice mixes; a pick returns the
score of one of that mix's seeds, drawn at random, so strategies see seed noise as a real search does.
- random: lattice mixes in random order;
- TPE: Optuna's TPE through the search's own define-by-run space (free weights), snapped to the nearest mix;
- paper: the single-condition mixes only (Tonks et al.'s design);
- recommend: 3 random mixes, then `vsearch recommend`'s surrogate proposes each next mix (expected improvement).
Regret after k picks: the grid optimum's mean score minus the mean score of the mix the strategy would hand the
user (the best single observation so far; for recommend, the surrogate's best predicted mix), as a percentage of
the optimum; mean over the replays.

    .venv/bin/python benchmarks/search_efficiency.py [--out benchmarks/out/search_efficiency] [--replays 20]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import plotly.graph_objects as go

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vsearch.config import OptimConfig, UNetConfig
from vsearch.data.synth import SynthSpec, synthesize
from vsearch.recommend.mixes import MixScores, fit_mix_model, propose_mixes
from vsearch.recommend.simplex import simplex_lattice
from vsearch.recommend.sources import study_mix_scores
from vsearch.search.space import ResolvedSpace, SearchSpace
from vsearch.study.results import read_cells, read_matrix
from vsearch.study.runner import run_study
from vsearch.study.spec import StudyModel, StudySpec, TrainingSets

SCREEN = SynthSpec(plates=4, wells_per_condition=4, sites=2, size=128, seed=0)
CONDITIONS = ["breast/non_toxic", "lung/non_toxic", "ovarian/non_toxic"]
WITHIN = 2.0  # % of the optimum counted as found
RANDOM_START = 3  # random picks before the surrogate proposes


def grid_table(out: Path, step: float, seeds: int, epochs: int) -> tuple[pd.DataFrame, float]:
    """Rows: mix index, seed, weights, score; and the wall seconds of the run (0 when read back)."""
    table_path = out / "grid.parquet"
    if table_path.exists():
        return pd.read_parquet(table_path), 0.0
    screen = out / "screen"
    if not (screen / "manifest.parquet").exists():
        synthesize(SCREEN, str(screen), overwrite=True)
    lattice = simplex_lattice(len(CONDITIONS), step)
    mixes = {f"mix-{i:02d}": {c: float(w) for c, w in zip(CONDITIONS, row, strict=True) if w > 0}
             for i, row in enumerate(lattice)}  # fmt: skip
    spec = StudySpec(
        dataset=str(screen),
        training_sets=TrainingSets(singles=False, mixes=mixes),
        models=[StudyModel(model=UNetConfig(depth=3, base_width=16), optim=OptimConfig(lr=0.003), epochs=epochs)],
        seeds=list(range(seeds)), budget=24, patch=64, patches_per_field=8, test_fields_per_condition=4,
        results=str(out / "study"),
    )  # fmt: skip
    started = time.perf_counter()
    run_study(spec, resume=(out / "study" / "study").exists())
    wall = time.perf_counter() - started
    cells = read_cells(spec.results)
    scored = study_mix_scores(cells, read_matrix(spec.results))
    by_trial = cells.set_index("trial_id")
    rows = []
    for trial_id, weights, score in zip(scored.trial_ids, scored.weights, scored.scores, strict=True):
        full = np.array([dict(zip(scored.conditions, weights, strict=True)).get(c, 0.0) for c in CONDITIONS])
        mix = int(np.argmin(np.abs(lattice - full).sum(axis=1)))
        rows.append({"mix": mix, "seed": int(by_trial.loc[trial_id, "seed"]), "score": float(score),
                     **{f"w/{c}": float(lattice[mix, i]) for i, c in enumerate(CONDITIONS)}})  # fmt: skip
    table = pd.DataFrame(rows).sort_values(["mix", "seed"]).reset_index(drop=True)
    table.to_parquet(table_path)
    return table, wall


def observe(table: pd.DataFrame, mix: int, rng: np.random.Generator) -> float:
    runs = table[table.mix == mix].score.to_numpy()
    return float(runs[rng.integers(len(runs))])


def weights_of(table: pd.DataFrame) -> np.ndarray:
    return table.drop_duplicates("mix").sort_values("mix")[[f"w/{c}" for c in CONDITIONS]].to_numpy()


def random_strategy(table: pd.DataFrame, rng: np.random.Generator, picks: int) -> list[tuple[int, float]]:
    order = rng.permutation(table.mix.nunique())[:picks]
    return [(int(m), observe(table, m, rng)) for m in order]


def paper_strategy(table: pd.DataFrame, rng: np.random.Generator, picks: int) -> list[tuple[int, float]]:
    lattice = weights_of(table)
    singles = [int(i) for i in np.flatnonzero(lattice.max(axis=1) == 1)]
    return [(m, observe(table, m, rng)) for m in rng.permutation(singles)][:picks]


def tpe_strategy(table: pd.DataFrame, rng: np.random.Generator, picks: int) -> list[tuple[int, float]]:
    space = SearchSpace(dataset="grid", held_out={"leave_out": "phenotype", "phenotype": "toxic"})
    resolved = ResolvedSpace(space, [*CONDITIONS, *(c.replace("non_toxic", "toxic") for c in CONDITIONS)])
    lattice = weights_of(table)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=int(rng.integers(2**31))))
    chosen = []
    for _ in range(picks):
        trial = study.ask()
        sampled = resolved.suggest(trial)["composition"]
        point = np.array([sampled.get(c, 0.0) for c in CONDITIONS])
        mix = int(np.argmin(np.abs(lattice - point).sum(axis=1)))
        score = observe(table, mix, rng)
        study.tell(trial, score)
        chosen.append((mix, score))
    return chosen


def recommend_strategy(table: pd.DataFrame, rng: np.random.Generator, picks: int) -> list[tuple]:
    """Picks as (mix, score, incumbent): after each pick the mix it hands the user is the surrogate's best
    predicted lattice mix, as `vsearch recommend` does, not the best single observation."""
    lattice = weights_of(table)
    chosen: list[tuple] = random_strategy(table, rng, min(RANDOM_START, picks))
    while True:
        mixes = MixScores(CONDITIONS, lattice[[c[0] for c in chosen]], np.array([c[1] for c in chosen]),
                          [{}] * len(chosen), list(range(len(chosen))), [str(i) for i in range(len(chosen))],
                          "composite")  # fmt: skip
        model = fit_mix_model(mixes, seed=int(rng.integers(2**31)))
        chosen[-1] = (*chosen[-1][:2], int(np.argmax(model.predict(lattice, 0)[0])))
        if len(chosen) >= picks:
            return chosen
        proposed = propose_mixes(model.surrogate, lattice, model.settings_x[0], CONDITIONS, 1)[0]
        point = np.array([proposed.weights.get(c, 0.0) for c in CONDITIONS])
        mix = int(np.argmin(np.abs(lattice - point).sum(axis=1)))
        chosen.append((mix, observe(table, mix, rng)))


STRATEGIES = {"random": random_strategy, "TPE": tpe_strategy, "paper": paper_strategy, "recommend": recommend_strategy}


def regret_curve(table: pd.DataFrame, chosen: list[tuple], picks: int) -> np.ndarray:
    """Regret (% of the optimum) of the mix a strategy hands the user after each pick: its third entry when
    given (the surrogate's pick), else the best observation so far; a strategy that stops early keeps its last."""
    true = table.groupby("mix").score.mean()
    optimum = true.max()
    regret, best_mix, best_seen = [], None, -np.inf
    for mix, seen, *incumbent in chosen:
        if seen > best_seen:
            best_mix, best_seen = mix, seen
        handed = incumbent[0] if incumbent and incumbent[0] is not None else best_mix
        regret.append(100 * (optimum - true[handed]) / optimum)
    return np.array(regret + [regret[-1]] * (picks - len(regret)))


def replay(table: pd.DataFrame, strategy, picks: int, replays: int) -> np.ndarray:
    """[replays, picks] regret curves, replay ``r`` seeded with ``r``."""
    return np.array(
        [regret_curve(table, strategy(table, np.random.default_rng(r), picks), picks) for r in range(replays)]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="benchmarks/out/search_efficiency")
    parser.add_argument("--replays", type=int, default=20)
    parser.add_argument("--step", type=float, default=0.25)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    table, wall = grid_table(out, args.step, args.seeds, args.epochs)
    mixes = table.mix.nunique()
    picks = mixes
    curves = {name: replay(table, strategy, picks, args.replays) for name, strategy in STRATEGIES.items()}
    quarter = math.floor(0.25 * mixes)
    true = table.groupby("mix").score.mean()
    summary = pd.DataFrame(
        {
            "strategy": list(curves),
            **{f"regret % after {k}": [round(float(c[:, k - 1].mean()), 2) for c in curves.values()]
               for k in sorted({3, quarter, mixes // 2, mixes})},
            f"replays within {WITHIN:g}% after {quarter}": [float((c[:, quarter - 1] <= WITHIN).mean())
                                                             for c in curves.values()],
        }
    )  # fmt: skip
    figure = go.Figure()
    for name, c in curves.items():
        figure.add_scatter(x=np.arange(1, picks + 1), y=c.mean(axis=0), mode="lines+markers", name=name)
    figure.update_layout(title=f"Regret of the best mix found ({args.replays} replays, {mixes} lattice mixes)",
                         xaxis_title="mixes tried", yaxis_title="regret, % of the grid optimum")  # fmt: skip
    figure.write_html(out / "regret.html", include_plotlyjs=True)
    summary.to_csv(out / "regret.csv", index=False)
    noise = table.groupby("mix").score.std(ddof=1).pow(2).mean() ** 0.5
    best_single = true[weights_of(table).max(axis=1) == 1].max()
    facts = {
        "grid_wall_seconds": round(wall), "mixes": mixes, "runs": len(table),
        "optimum": {"mix": dict(zip(CONDITIONS, weights_of(table)[true.idxmax()].tolist(), strict=True)),
                    "score": round(float(true.max()), 4)},
        "best_single_condition_regret_pct": round(float(100 * (true.max() - best_single) / true.max()), 2),
        "spread_of_mix_means_pct": round(float(100 * (true.max() - true.min()) / true.max()), 2),
        "seed_noise_sd": round(float(noise), 4),
    }  # fmt: skip
    (out / "facts.json").write_text(json.dumps(facts, indent=2))
    print(summary.to_string(index=False))
    print(json.dumps(facts, indent=2))


if __name__ == "__main__":
    main()
