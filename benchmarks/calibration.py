"""Calibration of the level scores: the synthetic screen's own stains, degraded (noise 1/5/10% of each image's
range, blur σ 1/2/4 px, ×1.2 brightness, all zeros), scored against the originals. Prints JSON, then a table.

    .venv/bin/python benchmarks/calibration.py [--data URI] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vsearch.data.dataset import open_dataset
from vsearch.data.synth import SynthSpec, synthesize
from vsearch.evaluate.calibration import calibrate
from vsearch.evaluate.features import StainRoles
from vsearch.evaluate.field import EvaluationConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="dataset to calibrate on (default: the default synthetic screen)")
    parser.add_argument("--workers", type=int, help="fields evaluated at once (default: all CPUs)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        uri = args.data or f"{tmp}/screen"
        if not args.data:
            synthesize(SynthSpec(), uri)
        dataset = open_dataset(uri)
        info, fields = dataset.info, len(dataset.manifest)
        roles = StainRoles.resolve(info.stain_roles(), info.stains)
        started = time.perf_counter()
        table = calibrate(uri, EvaluationConfig(stains=tuple(info.stains), roles=roles), workers=args.workers)
        seconds = time.perf_counter() - started
    result = {
        "benchmark": "calibration",
        "dataset": args.data or f"synthetic {SynthSpec()}",
        "fields": fields,
        "seconds": round(seconds, 1),
        "scores": {name: {k: round(v, 4) for k, v in row.items()} for name, row in table.iterrows()},
    }
    print(json.dumps(result, indent=2))
    print(table.round(4).to_string())


if __name__ == "__main__":
    main()
