"""What one training run holds on a cluster: its workers' CPUs and GPUs, plus the CPU its Ray Data stream needs.

Ray Train's workers hold their CPUs for the whole run, while the stream's read-and-patch tasks take one CPU each:
a run whose workers hold every CPU waits for its first batch forever. So every run (``vsearch train``, each trial
of ``vsearch run``) counts ``DATA_CPUS`` for its stream, and a run that cannot fit is refused before it starts."""

from __future__ import annotations

import math

DATA_CPUS = 1.0  # the stream's tasks run one at a time on it; more free CPUs only make it faster


def run_needs(workers: int, cpus_per_worker: float, gpus_per_worker: float) -> dict[str, float]:
    """CPUs (the workers' and the stream's) and GPUs of one run."""
    return {"CPU": workers * cpus_per_worker + DATA_CPUS, "GPU": workers * gpus_per_worker}


def fitting_runs(needs: dict[str, float], cluster: dict[str, float]) -> int:
    """How many runs of ``needs`` fit on ``cluster``'s resources at once (0: not one)."""
    return min(math.floor(cluster.get(key, 0.0) / need + 1e-9) for key, need in needs.items() if need > 0)


def unfit_reason(
    key: str, workers: int, cpus_per_worker: float, gpus_per_worker: float, cluster: dict[str, float]
) -> str | None:
    """Why one run cannot make progress on ``cluster`` (``key`` names the setting), or None when it fits."""
    needs = run_needs(workers, cpus_per_worker, gpus_per_worker)
    gpus = cluster.get("GPU", 0.0)
    if needs["GPU"] > gpus + 1e-9:
        return (
            f"{key}: {workers} worker(s) x {gpus_per_worker:g} GPU need {needs['GPU']:g} GPU(s); "
            f"the cluster has {gpus:g}"
        )
    cpus = cluster.get("CPU", 0.0)
    if needs["CPU"] > cpus + 1e-9:
        spare = (cpus - DATA_CPUS) / workers
        advice = (
            f"set cpus_per_worker to {math.floor(spare * 100) / 100:g} or less, or use fewer workers"
            if spare >= 0.01
            else f"the cluster needs more than {DATA_CPUS:g} CPU"
        )
        return (
            f"{key}: {workers} worker(s) x {cpus_per_worker:g} CPU + {DATA_CPUS:g} CPU for the data stream need "
            f"{needs['CPU']:g} CPUs; the cluster has {cpus:g}, and a stream without a CPU never delivers a batch: "
            f"{advice}"
        )
    return None


def refuse_unless_one_fits(
    key: str, workers: int, cpus_per_worker: float, gpus_per_worker: float, cluster: dict[str, float]
) -> None:
    """Raises ``ValueError`` with ``unfit_reason`` when one run cannot make progress on ``cluster``."""
    reason = unfit_reason(key, workers, cpus_per_worker, gpus_per_worker, cluster)
    if reason:
        raise ValueError(reason)
