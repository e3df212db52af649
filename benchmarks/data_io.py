"""Data I/O speed: synthetic fields/s, read MB/s through ``open_dataset`` (local and moto S3) against a bare
``pyarrow.parquet.read_table`` of the same shards, and ingest MB/s and peak RSS for big OME-TIFF fields
(2048×2048, 3 bright-field z-planes + 3 stains; goal: peak RSS under 2 GB). Prints JSON.

    .venv/bin/python benchmarks/data_io.py [--repeats 3] [--big-fields 40] [--big-size 2048]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import tifffile

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


def write_big_fields(folder: Path, fields: int, size: int) -> tuple[Path, int]:
    """``fields`` fields as a ZYX OME-TIFF of 3 bright-field planes and a CYX OME-TIFF of 3 stains each, and their
    layout; returns the layout and the pixel bytes."""
    rng = np.random.default_rng(0)
    rows = []
    for index in range(fields):
        well = f"{chr(ord('A') + index // 24)}{index % 24 + 1:02d}"
        bf, stains = folder / f"{well}_bf.ome.tif", folder / f"{well}_stains.ome.tif"
        tifffile.imwrite(
            bf,
            rng.integers(0, 4096, (3, size, size), dtype=np.uint16),
            ome=True,
            metadata={"axes": "ZYX", "PhysicalSizeX": 0.65},
        )
        tifffile.imwrite(
            stains,
            rng.integers(0, 4096, (3, size, size), dtype=np.uint16),
            ome=True,
            metadata={"axes": "CYX", "PhysicalSizeX": 0.65},
        )
        base = ["P1", well, 0, "hek", "toxic" if index % 2 else "non_toxic"]
        rows.append([*base, "bf", bf.name, ""])
        rows += [[*base, stain, stains.name, c] for c, stain in enumerate(("nuclei", "cytoplasm", "dna_damage"))]
    layout = folder / "layout.csv"
    with layout.open("w", newline="") as f:
        csv.writer(f).writerows([["plate", "well", "site", "cell_type", "phenotype", "channel", "path", "c"], *rows])
    return layout, fields * 6 * size * size * 2


def child_peak_rss_mib(code: str) -> tuple[str, float]:
    """Run ``code`` in a fresh interpreter; (what it printed, its peak RSS in MiB). Must run before any other
    child, since the kernel reports the largest child's peak."""
    done = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=Path(__file__).parents[1]
    )
    return done.stdout, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def big_field_ingest(fields: int, size: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        layout, pixel_bytes = write_big_fields(Path(tmp), fields, size)
        _, import_rss = child_peak_rss_mib("import vsearch.data.layout")
        printed, peak_rss = child_peak_rss_mib(
            "import time\nfrom vsearch.data.layout import ingest\nstart = time.perf_counter()\n"
            f"ingest({str(layout)!r}, {tmp + '/ds'!r})\nprint(time.perf_counter() - start)"
        )
        seconds = float(printed)
    return {
        "fields": fields,
        "size": size,
        "pixel_MB": round(pixel_bytes / 1e6),
        "ingest_MBps": round(pixel_bytes / seconds / 1e6, 1),
        "peak_rss_MiB": round(peak_rss),
        "import_rss_MiB": round(import_rss),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--big-fields", type=int, default=40)
    parser.add_argument("--big-size", type=int, default=2048)
    args = parser.parse_args()
    spec = SynthSpec()
    out: dict[str, object] = {"big_field_ingest": big_field_ingest(args.big_fields, args.big_size)}
    out.update(spec=f"{spec}", fields=count_fields(spec))

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
