"""GPUs' dense bf16 tensor-core peaks (no sparsity), from the vendors' datasheets (SXM parts), and the model FLOP
utilisation (MFU) of a measured rate: the FLOP/s a model's own arithmetic achieves over that peak."""

from __future__ import annotations

BF16_DENSE_TFLOPS = {"A100": 312.0, "L4": 121.0, "L40S": 362.0, "H100": 989.4, "H200": 989.4, "B200": 2250.0}


def model_flops_utilisation(flops_per_s: float, gpu: str) -> float:
    """``flops_per_s`` (counted FLOPs of the model's work, e.g. ``training_step_flops`` x patches/s) over the bf16
    dense peak of ``gpu`` (a model as ``throughput.gpu_model`` names it)."""
    if gpu not in BF16_DENSE_TFLOPS:
        raise ValueError(f"no bf16 peak known for GPU {gpu!r}; known: {', '.join(sorted(BF16_DENSE_TFLOPS))}")
    return flops_per_s / (BF16_DENSE_TFLOPS[gpu] * 1e12)
