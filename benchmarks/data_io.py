"""Data I/O speed: synthetic fields/s, and read MB/s through ``open_dataset`` (local and moto S3) against a bare
``pyarrow.parquet.read_table`` of the same shards. Prints JSON.

    .venv/bin/python benchmarks/data_io.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.s3server import moto_server
from vsearch.data.dataset import open_dataset
from vsearch.data.synth import SynthSpec, count_fields, iter_screen, synthesize


def best_rate(run, repeats: int) -> float:
    """Best of ``repeats`` runs of ``run()``, which returns the bytes it read; MB/s."""
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        nbytes = run()
        rates.append(nbytes / (time.perf_counter() - start) / 1e6)
    return max(rates)


def read_rates(uri: str, repeats: int) -> dict[str, float]:
    ds = open_dataset(uri)
    shards = [ds.shard_path(s) for s in sorted(set(ds.manifest["shard"]))]

    def through_dataset() -> int:
        return sum(f.nbytes for f in ds.iter_fields())

    def bare_parquet() -> int:
        total = 0
        for shard in shards:
            table = pq.read_table(shard, filesystem=ds.fs)
            total += sum(
                c.nbytes for name, c in zip(table.column_names, table.columns, strict=True) if name != "field_id"
            )
        return total

    dataset_rate, bare_rate = best_rate(through_dataset, repeats), best_rate(bare_parquet, repeats)
    return {
        "open_dataset_MBps": round(dataset_rate, 1),
        "read_table_MBps": round(bare_rate, 1),
        "ratio": round(dataset_rate / bare_rate, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    spec = SynthSpec()
    out: dict[str, object] = {"spec": f"{spec}", "fields": count_fields(spec)}

    start = time.perf_counter()
    for _ in iter_screen(spec):
        pass
    out["synth_fields_per_s"] = round(count_fields(spec) / (time.perf_counter() - start), 1)

    with tempfile.TemporaryDirectory() as tmp:
        local = f"{tmp}/screen"
        start = time.perf_counter()
        synthesize(spec, local)
        out["synth_and_write_fields_per_s"] = round(count_fields(spec) / (time.perf_counter() - start), 1)
        out["local"] = read_rates(local, args.repeats)

        with moto_server() as endpoint:
            os.environ.update(VSEARCH_S3_ENDPOINT=endpoint, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")
            ds = open_dataset(local)
            ds_s3 = "s3://bench/screen"
            from vsearch.data import storage

            fs, _ = storage.filesystem(ds_s3)
            fs.mkdir("bench")
            fs.put(f"{tmp}/screen", "bench/screen", recursive=True)
            assert len(open_dataset(ds_s3).manifest) == len(ds.manifest)
            out["moto_s3"] = read_rates(ds_s3, args.repeats)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
