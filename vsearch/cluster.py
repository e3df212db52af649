"""Joining a Ray cluster, or starting a local one."""

from __future__ import annotations

import os


def connect(address: str | None = None, num_cpus: int | None = None) -> None:
    """Joins the cluster at ``address`` (or ``RAY_ADDRESS``), or else starts a new local Ray (never a stale
    ``ray start`` cluster that Ray would otherwise find on this machine); a no-op when connected.

    A local Ray starts its dashboard whenever ``ray[default]`` is installed (vsearch depends on it): Ray Train
    removes the placement groups of a trial that Tune stops early (ASHA) only when it can query the dashboard's
    state API, and a leaked group starves later trials. A minimal Ray (a GPU box with only the wheels it was
    carried) starts without one, which training runs do not need.
    """
    import ray

    if ray.is_initialized():
        return
    ray.init(
        address=address or os.environ.get("RAY_ADDRESS") or "local",
        num_cpus=num_cpus,
        configure_logging=False,
        log_to_driver=False,
    )
