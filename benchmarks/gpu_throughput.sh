#!/usr/bin/env bash
# Issue 4's GPU throughput check, on a device machine with no network (../shared/GPU.md):
#   here:   ../shared/tools/pack_device_wheels.sh .whl
#   there:  bash benchmarks/gpu_throughput.sh        (with .whl carried; $OUT collects the results)
# Installs the carried wheels, then runs benchmarks/train_throughput.py --preset gpu, eager and compiled: the JSON
# goes to $OUT/throughput.json, Ray Data's per-operator statistics and the logs to $OUT/throughput.log, and the
# measured rates into vsearch/cost/throughput.csv (copied to $OUT: commit it back to refresh --dry-run's costs).
# Then, with the GPUs this machine has, data-parallel scaling (--workers), trials packed onto one GPU
# (benchmarks/gpu_packing.py: $OUT/packing.json) and a small search's cost per answer (benchmarks/search_cost.py:
# $OUT/search_cost.json). Every run prints model TFLOP/s and MFU.
set -euo pipefail
out=${OUT:-.}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD PATH=/tmp/site/bin:$PATH
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
python3 benchmarks/train_throughput.py --preset gpu --compile both --table vsearch/cost/throughput.csv \
  >"$out/throughput.json" 2>"$out/throughput.log"
cp vsearch/cost/throughput.csv "$out/"
cat "$out/throughput.json"
gpus=$(nvidia-smi -L | grep -c '^GPU ')
if [ "$gpus" -gt 1 ]; then
  python3 benchmarks/train_throughput.py --preset gpu --workers "$(seq -s, 1 "$gpus")" \
    >"$out/scaling.json" 2>>"$out/throughput.log"
  tail -25 "$out/scaling.json"
fi
python3 benchmarks/gpu_packing.py --trials 1,2,4 >"$out/packing.json" 2>"$out/packing.log"
cat "$out/packing.json"
python3 benchmarks/search_cost.py --trials 8 >"$out/search_cost.json" 2>"$out/search_cost.log"
cat "$out/search_cost.json"
