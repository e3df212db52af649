"""Pearson r of a search's best trial on the held-out fields every trial was scored on (the pixel level mixes r
with SSIM; this is r alone, per condition and stain, the number the virtual-staining literature quotes).

    .venv/bin/python benchmarks/heldout_r.py demo_out/results [--stain nuclei]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vsearch.data.dataset import open_dataset
from vsearch.search.results import read_held_out_fields, read_space, read_trials
from vsearch.train.checkpoint import find_checkpoint, load_model
from vsearch.train.prediction import predict_fields


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results")
    parser.add_argument("--stain", default="nuclei")
    args = parser.parse_args()
    trials = read_trials(args.results)
    best = trials[trials.status == "completed"].sort_values("composite", ascending=False).iloc[0]
    model, meta = load_model(find_checkpoint(Path(args.results) / "runs" / f"trial_{best.trial_id}"))
    dataset = open_dataset(read_space(args.results)["dataset"])
    by_condition = {}
    for condition, ids in read_held_out_fields(args.results).items():
        truth = list(dataset.iter_fields(ids))
        predicted = predict_fields(model.eval(), meta, truth)
        by_condition[condition] = [
            float(np.corrcoef(t.stains[args.stain].ravel(), p.stains[args.stain].ravel())[0, 1])
            for t, p in zip(truth, predicted, strict=True)
        ]
    means = {c: round(float(np.mean(r)), 3) for c, r in by_condition.items()}
    print(json.dumps({"trial": best.trial_id, "stain": args.stain, "pearson_r_by_condition": means,
                      "mean_over_conditions": round(float(np.mean(list(means.values()))), 3),
                      "fields": sum(len(r) for r in by_condition.values())}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
