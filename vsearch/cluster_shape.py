"""The cluster a search would run on, at full scale, for ``vsearch run --dry-run``: the connected Ray cluster,
a Ray cluster-launcher YAML or KubeRay manifest (its node types at their maximum counts), or this machine."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ACCELERATOR = "accelerator_type:"  # Ray's resource naming a node's GPU model, e.g. accelerator_type:H200
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"  # set on Kubernetes nodes by NVIDIA's GPU feature discovery


@dataclass(frozen=True)
class ClusterShape:
    source: str  # what it was read from
    nodes: int  # at full scale
    resources: dict[str, float] = field(default_factory=dict)  # CPU and GPU totals at full scale
    gpu: str | None = None  # the GPU model, as Ray names accelerator types


def this_machine() -> ClusterShape:
    """The local Ray ``vsearch run`` would start here: this machine's CPUs and CUDA GPUs."""
    import torch

    from vsearch.cost.throughput import gpu_model

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    gpu = gpu_model(torch.cuda.get_device_name(0)) if gpus else None
    return ClusterShape("this machine (a local Ray)", 1, {"CPU": float(os.cpu_count() or 1), "GPU": float(gpus)}, gpu)


def connected_cluster(address: str) -> ClusterShape:
    """The Ray cluster this process is connected to, at its autoscaler's maximum when it has one."""
    from vsearch.cluster import cluster_capacity, full_scale_nodes

    capacity = cluster_capacity()
    gpus = sorted(_accelerators(capacity))
    return ClusterShape(f"the Ray cluster at {address}", full_scale_nodes(), capacity, gpus[0] if gpus else None)


def _accelerators(resources: dict[str, float]) -> set[str]:
    return {key.removeprefix(ACCELERATOR) for key in resources if key.startswith(ACCELERATOR)}


def from_file(path: str) -> ClusterShape:
    """A Ray cluster-launcher config (``available_node_types``) or a KubeRay ``RayCluster`` / ``RayJob``, at full
    scale; refuses anything else, naming the file."""
    try:
        document = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f"{path}: cannot read a cluster config: {error}") from None
    if not isinstance(document, dict):
        raise ValueError(f"{path}: not a cluster config (expected a mapping)")
    if "available_node_types" in document:
        return _launcher_shape(document, path)
    if document.get("kind") == "RayCluster":
        return _kuberay_shape(document.get("spec") or {}, path)
    if document.get("kind") == "RayJob":
        return _kuberay_shape((document.get("spec") or {}).get("rayClusterSpec") or {}, path)
    raise ValueError(f"{path}: neither a Ray cluster-launcher config nor a KubeRay RayCluster or RayJob")


def _launcher_shape(config: dict, path: str) -> ClusterShape:
    """Node types' ``resources`` times their counts: one head, each worker type's ``max_workers``."""
    head, types = config.get("head_node_type"), config["available_node_types"]
    nodes, totals, gpus = 0, {"CPU": 0.0, "GPU": 0.0}, set()
    for name, node_type in types.items():
        count = 1 if name == head else int(node_type.get("max_workers", config.get("max_workers", 0)))
        resources = node_type.get("resources") or {}
        for key in ("CPU", "GPU"):
            totals[key] += count * float(resources.get(key, 0))
        if count and resources.get("GPU"):
            gpus |= _accelerators(resources)
        nodes += count
    return ClusterShape(f"{path} at full scale", nodes, totals, min(gpus) if gpus else None)


def _kuberay_shape(spec: dict, path: str) -> ClusterShape:
    """The head pod plus each worker group's ``maxReplicas`` (times ``numOfHosts``) pods; a pod's CPUs and GPUs
    are its ``rayStartParams`` or else its container's limits."""
    from vsearch.cost.throughput import gpu_model

    head = spec.get("headGroupSpec") or {}
    groups = [(head, 1), *((g, int(g.get("maxReplicas", 0)) * int(g.get("numOfHosts", 1))) for g in
                           spec.get("workerGroupSpecs") or [])]  # fmt: skip
    nodes, totals, gpus = 0, {"CPU": 0.0, "GPU": 0.0}, set()
    for group, count in groups:
        cpus, gpu_count, product = _pod_resources(group)
        totals["CPU"] += count * cpus
        totals["GPU"] += count * gpu_count
        if count and gpu_count and product:
            gpus.add(gpu_model(product.replace("-", " ")))
        nodes += count
    return ClusterShape(f"{path} at full scale", nodes, totals, min(gpus) if gpus else None)


def _pod_resources(group: dict) -> tuple[float, float, str | None]:
    params = group.get("rayStartParams") or {}
    pod = (group.get("template") or {}).get("spec") or {}
    limits = ((pod.get("containers") or [{}])[0].get("resources") or {}).get("limits") or {}
    cpus = params.get("num-cpus", limits.get("cpu", 0))
    gpus = params.get("num-gpus", limits.get("nvidia.com/gpu", 0))
    return quantity(cpus), quantity(gpus), (pod.get("nodeSelector") or {}).get(GPU_PRODUCT_LABEL)


def quantity(value: str | float) -> float:
    """A Kubernetes CPU quantity: 8, "8", "500m" (0.5)."""
    text = str(value).strip()
    if not re.fullmatch(r"\d+(\.\d+)?m?", text):
        raise ValueError(f"not a CPU or GPU count: {value!r}")
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)
