#!/usr/bin/env bash
# Issue 4's GPU throughput check, on a device machine with no network (../shared/GPU.md):
#   here:   ../shared/tools/pack_device_wheels.sh .whl
#   there:  bash benchmarks/gpu_throughput.sh        (with .whl carried; $OUT collects the results)
# Installs the carried wheels, then runs benchmarks/train_throughput.py --preset gpu, eager and compiled: the JSON
# goes to $OUT/throughput.json, Ray Data's per-operator statistics and the logs to $OUT/throughput.log, and the
# measured rates into vsearch/cost/throughput.csv (copied to $OUT: commit it back to refresh --dry-run's costs).
set -euo pipefail
out=${OUT:-.}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD PATH=/tmp/site/bin:$PATH
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
python3 benchmarks/train_throughput.py --preset gpu --compile both --table vsearch/cost/throughput.csv \
  >"$out/throughput.json" 2>"$out/throughput.log"
cp vsearch/cost/throughput.csv "$out/"
cat "$out/throughput.json"
