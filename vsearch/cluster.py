"""Joining a Ray cluster, or starting a local one."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

# run in every worker process of a vsearch job
WORKER_SETUP_HOOK = "vsearch.cluster.pin_cluster_address"
# never copied into a Ray runtime environment: Ray's runtime-env agent writes those to its log on every node
# Ray Train's controller looks at its workers every 2 s by default, and a run's start, each report and its end
# wait for the next look: seconds of every short trial spent idle. Set for the job (trials start the controllers).
TRAIN_POLL_VARIABLE, TRAIN_POLL_S = "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.25"
SECRET_VARIABLES = frozenset({"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN", "AWS_SESSION_TOKEN"})


def connect(address: str | None = None, num_cpus: int | None = None) -> None:
    """Joins the cluster at ``address`` (or ``RAY_ADDRESS``), or else starts a new local Ray (never a stale
    ``ray start`` cluster that Ray would otherwise find on this machine); a no-op when connected.

    A local Ray starts its dashboard whenever ``ray[default]`` is installed (vsearch depends on it): Ray Train
    removes the placement groups of a trial that Tune stops early (ASHA) only when it can query the dashboard's
    state API, and a leaked group starves later trials. A minimal Ray (a GPU box with only the wheels it was
    carried) starts without one, which training runs do not need. Every worker of the job runs
    ``pin_cluster_address`` first, so that query reaches this cluster even when another Ray runs on the machine.
    """
    import ray

    keep_secrets_out_of_runtime_envs()
    if ray.is_initialized():
        return
    poll = {TRAIN_POLL_VARIABLE: os.environ.setdefault(TRAIN_POLL_VARIABLE, TRAIN_POLL_S)}
    ray.init(
        address=address or os.environ.get("RAY_ADDRESS") or "local",
        num_cpus=num_cpus,
        configure_logging=False,
        log_to_driver=False,
        runtime_env={"worker_process_setup_hook": WORKER_SETUP_HOOK, "env_vars": poll},
    )


def pin_cluster_address() -> None:
    """Names the worker's own cluster in ``RAY_ADDRESS``. Ray code that looks the cluster up by itself (Ray
    Train's placement-group cleaner polls the state API) otherwise takes the last ``ray start`` cluster of the
    machine, or fails when it finds several local Ray instances, and the placement group of a stopped trial is
    never removed: the next trial waits for its resources forever."""
    import ray

    os.environ["RAY_ADDRESS"] = ray.get_runtime_context().gcs_address


def keep_secrets_out_of_runtime_envs() -> None:
    """Ray Tune copies the driver's AWS credentials into each trial actor's runtime environment, and Ray's
    runtime-env agent logs that environment in full. vsearch's workers take S3 credentials from their own node
    instead: the environment its Ray started with (a local Ray inherits the driver's), or an instance or pod role."""
    from ray.tune.execution import class_cache

    class_cache.ENV_VARS_TO_PROPAGATE = frozenset(class_cache.ENV_VARS_TO_PROPAGATE) - SECRET_VARIABLES


def cluster_capacity() -> dict[str, float]:
    """The connected cluster's resources at full scale: what its nodes have now or, for an autoscaling cluster
    (the Ray autoscaler, KubeRay), what its node groups' maximum counts give, whichever is more. Ray Train checks
    a worker group against the same maximum."""
    import ray
    from ray._private.state import state

    now = ray.cluster_resources()
    most = state.get_max_resources_from_cluster_config() or {}
    return {key: max(now.get(key, 0.0), float(most.get(key, 0))) for key in {*now, *most}}


def full_scale_nodes() -> int:
    """Nodes of the connected cluster: those alive now, or its node groups' maximum counts, whichever is more."""
    import ray
    from ray._private.state import state

    alive = sum(1 for node in ray.nodes() if node["Alive"])
    config = state.get_cluster_config()
    most = sum(group.max_count for group in config.node_group_configs) if config else 0
    return max(alive, most)


def refuse_node_local_paths(paths: dict[str, str], nodes: int) -> None:
    """On a cluster of more than one node every path a trial reads or writes must be shared storage: refuses
    the first local one of ``paths`` (key -> path), naming it."""
    from vsearch.data import storage

    if nodes <= 1:
        return
    for key, path in paths.items():
        if not storage.is_remote(path):
            raise ValueError(
                f"{key}: {path} is a local path, but the cluster has {nodes} nodes: trials on the other nodes cannot "
                "read or write it; use an s3:// prefix"
            )


CONTROLLER_EXIT_S = 30.0  # how long a failed trial's Ray Train controller may take to die with its trial


@contextmanager
def releasing_leftover_placement_groups() -> Iterator[None]:
    """Removes, when the block ends, the placement groups made during it that are still held or pending.

    Ray Train hands a trial's placement group to its cleaner only once the trial's workers have started. A trial
    the watchdog fails while it waits for resources leaves its group pending; when the resources come free the
    group is created and holds them for the rest of the session, and the next run's data stream never gets a CPU.
    Every trial of a search has ended when its tuner returns, so once their Ray Train controllers (which could
    still ask for a group) have died with them, the search's groups can all go; those of other jobs on the
    cluster are left alone (a group's id ends with its job's)."""
    import ray
    import ray.util
    from ray._raylet import PlacementGroupID
    from ray.util.placement_group import PlacementGroup

    job, before = ray.get_runtime_context().get_job_id(), set(ray.util.placement_group_table())
    try:
        yield
    finally:
        deadline = time.monotonic() + CONTROLLER_EXIT_S
        while _live_train_controllers(job) and time.monotonic() < deadline:
            time.sleep(0.5)
        for group_id, group in ray.util.placement_group_table().items():
            if group_id.endswith(job) and group_id not in before and group["state"] != "REMOVED":
                ray.util.remove_placement_group(PlacementGroup(PlacementGroupID.from_hex(group_id)))


def _live_train_controllers(job: str) -> int:
    from ray._private import state

    return sum(
        1
        for actor in state.actors().values()
        if actor["ActorClassName"] == "TrainController" and actor["JobID"] == job and actor["State"] != "DEAD"
    )
