"""Evaluation speed: fields/s for each level with one and two Ray workers on 256×256 fields, and the per-field
cost of vsearch's feature extraction against calling cp_measure directly with the same masks. Prints JSON.

    .venv/bin/python benchmarks/evaluate.py
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import ray
from cp_measure.core.measuregranularity import get_granularity
from cp_measure.core.measureobjectintensity import get_intensity
from cp_measure.core.measureobjectsizeshape import get_sizeshape
from cp_measure.core.measuretexture import get_texture

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vsearch.cluster import connect
from vsearch.data.dataset import open_dataset
from vsearch.data.synth import SynthSpec, synthesize
from vsearch.evaluate.features import (
    GRANULARITY_SCALES,
    TEXTURE_SCALE,
    FociDetector,
    StainRoles,
    object_features,
    to_unit,
)
from vsearch.evaluate.field import EvaluationConfig
from vsearch.evaluate.instance import SeededCells, ThresholdWatershed
from vsearch.evaluate.runner import evaluate_datasets

STAINS = ("nuclei", "cytoplasm", "dna_damage")


def direct_cp_measure(stains: dict[str, np.ndarray], nuclei: np.ndarray, cells: np.ndarray) -> None:
    """The same cp_measure calls as ``object_features``, made directly."""
    nuc, cyto, damage = (to_unit(stains[s]) for s in STAINS)
    get_sizeshape(nuclei, None, calculate_advanced=False)
    get_intensity(nuclei, nuc)
    get_texture(nuclei, nuc, scale=TEXTURE_SCALE)
    get_granularity(nuclei, nuc, granular_spectrum_length=GRANULARITY_SCALES)
    get_sizeshape(cells, None, calculate_advanced=False)
    get_intensity(cells, cyto)
    get_texture(cells, cyto, scale=TEXTURE_SCALE)
    get_intensity(nuclei, damage)


def feature_overhead(uri: str, n_fields: int = 24) -> dict[str, float]:
    ds = open_dataset(uri)
    fields = list(ds.iter_fields(list(ds.manifest.field_id[:n_fields])))
    segmented = []
    for f in fields:
        nuclei = ThresholdWatershed()(f.stains["nuclei"])
        segmented.append((f.stains, nuclei, SeededCells()(f.stains["cytoplasm"], nuclei)))
    no_foci = StainRoles(foci=None)

    def timed(run) -> float:
        best = np.inf
        for _ in range(3):
            start = time.perf_counter()
            for stains, nuclei, cells in segmented:
                run(stains, nuclei, cells)
            best = min(best, time.perf_counter() - start)
        return best / len(segmented) * 1e3

    direct = timed(direct_cp_measure)
    ours = timed(lambda s, n, c: (object_features(s, n, c, no_foci), get_intensity(n, to_unit(s["dna_damage"]))))
    full = timed(lambda s, n, c: object_features(s, n, c, StainRoles(), FociDetector()))
    return {
        "cp_measure_direct_ms_per_field": round(direct, 2),
        "vsearch_same_features_ms_per_field": round(ours, 2),
        "overhead": round(ours / direct - 1, 4),
        "vsearch_with_foci_ms_per_field": round(full, 2),
    }


def level_rates(uri: str) -> dict[str, dict[str, float]]:
    fields = len(open_dataset(uri).manifest)
    out: dict[str, dict[str, float]] = {}
    for level in ("pixel", "instance", "feature"):
        config = EvaluationConfig(stains=STAINS, levels=(level,))
        rates = {}
        for workers in (1, 2):
            evaluate_datasets(
                uri, uri, config, workers=workers, field_ids=list(open_dataset(uri).manifest.field_id[:8])
            )
            start = time.perf_counter()
            evaluate_datasets(uri, uri, config, workers=workers)
            rates[f"workers_{workers}_fields_per_s"] = round(fields / (time.perf_counter() - start), 2)
        rates["speedup"] = round(rates["workers_2_fields_per_s"] / rates["workers_1_fields_per_s"], 3)
        out[level] = rates
    return out


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"{tmp}/screen"
        spec = SynthSpec(size=256)
        synthesize(spec, uri)
        result: dict[str, object] = {"fields": len(open_dataset(uri).manifest), "size": spec.size}
        result["features"] = feature_overhead(uri)
        connect(num_cpus=2)
        result["levels"] = level_rates(uri)
        ray.shutdown()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
