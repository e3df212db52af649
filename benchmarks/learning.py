"""Does a small U-Net learn? Trains on one condition of the default synthetic screen at 128×128 on this machine,
then scores held-out wells (test split) of that condition against a baseline that predicts each field's mean.
Prints JSON: Pearson r, SSIM and normalised MAE per stain, and the wall time.

    .venv/bin/python benchmarks/learning.py [--epochs 12] [--condition lung/non_toxic]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vsearch.cluster import connect
from vsearch.config import DataConfig, OptimConfig, TrainConfig, UNetConfig
from vsearch.data.dataset import open_dataset
from vsearch.data.synth import SynthSpec, synthesize
from vsearch.evaluate.pixel import normalise_pair, pearson_r, ssim
from vsearch.train.prediction import predict
from vsearch.train.trainer import plan_training, train


def scores(truth: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    t, p = normalise_pair(truth, pred)
    r = float(np.nan_to_num(pearson_r(t, p), nan=0.0))
    return {"r": r, "ssim": float(ssim(t, p, data_range=1.0)), "nmae": float(np.abs(t - p).mean())}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--condition", default="lung/non_toxic")
    args = parser.parse_args()
    connect(num_cpus=2)
    with tempfile.TemporaryDirectory() as tmp:
        screen = f"{tmp}/screen"
        synthesize(SynthSpec(size=128), screen)
        config = TrainConfig(
            data=DataConfig(
                dataset=screen, composition={args.condition: 1.0}, budget=48, patch=64, patches_per_field=8,
                batch_size=16,
            ),
            model=UNetConfig(depth=3, base_width=16),
            optim=OptimConfig(lr=3e-3, loss="l1"),
            epochs=args.epochs,
            name="learning",
            storage=f"{tmp}/runs",
        )  # fmt: skip
        started = time.perf_counter()
        result = train(config)
        train_s = time.perf_counter() - started
        plan = plan_training(config)
        manifest = plan.dataset.manifest
        test_ids = manifest.field_id[
            (plan.splits == "test") & (manifest.cell_type + "/" + manifest.phenotype == args.condition)
        ].tolist()
        predict(result.checkpoint.path, screen, f"{tmp}/pred", field_ids=test_ids)
        truth, pred = open_dataset(screen), open_dataset(f"{tmp}/pred")
        model_scores: dict[str, list] = {s: [] for s in config.data.stains}
        baseline: dict[str, list] = {s: [] for s in config.data.stains}
        for real in truth.iter_fields(test_ids):
            predicted = pred.read(real.field_id)
            for s in config.data.stains:
                model_scores[s].append(scores(real.stains[s], predicted.stains[s]))
                mean_field = np.full_like(real.stains[s], real.stains[s].mean(), dtype=np.float64)
                baseline[s].append(scores(real.stains[s], mean_field))

    def mean(rows: list[dict]) -> dict[str, float]:
        return {k: round(float(np.mean([r[k] for r in rows])), 4) for k in rows[0]}

    print(
        json.dumps(
            {
                "condition": args.condition,
                "test_fields": len(test_ids),
                "train_seconds": round(train_s, 1),
                "epochs": args.epochs,
                "model": {s: mean(v) for s, v in model_scores.items()},
                "field_mean_baseline": {s: mean(v) for s, v in baseline.items()},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
