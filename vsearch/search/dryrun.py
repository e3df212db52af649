"""``vsearch run --dry-run``: a search space resolved against its dataset and a cluster, with its estimated cost,
and nothing trained."""

from __future__ import annotations

from dataclasses import dataclass

from vsearch.cluster import refuse_node_local_paths
from vsearch.cluster_shape import ClusterShape
from vsearch.cost.estimate import SearchCost, estimate_search
from vsearch.data.dataset import open_dataset
from vsearch.search.space import SearchSpace
from vsearch.search.tuner import SearchPlan, max_concurrent, plan_search, planned_trials
from vsearch.train.resources import run_needs, unfit_reason


@dataclass
class DryRun:
    plan: SearchPlan
    cluster: ClusterShape
    fields: int  # in the dataset
    trials: int
    concurrent: int
    trial_needs: dict[str, float]  # CPUs (the workers' and one for Ray Data) and GPUs of one trial
    gpu: str | None  # the GPU the cost is for
    cost: SearchCost | None
    problems: list[str]  # why the search could not run on this cluster, or why there is no cost


def dry_run(space: SearchSpace, cluster: ClusterShape, results: str | None = None, gpu: str | None = None) -> DryRun:
    """Plans the search (every check ``vsearch run`` makes before Ray starts) for ``cluster``, and estimates its
    cost on ``gpu`` (default: the cluster's). Refuses a local dataset or results path when the cluster has more
    than one node, as ``vsearch run`` does."""
    plan = plan_search(space, results)
    dataset = open_dataset(plan.space.dataset)
    refuse_node_local_paths({"dataset": plan.space.dataset, "results": plan.results}, cluster.nodes)
    t, problems = plan.space.trial, []
    needs = run_needs(t.workers, t.cpus_per_worker, t.gpus_per_worker)
    unfit = unfit_reason("trial.workers", t.workers, t.cpus_per_worker, t.gpus_per_worker, cluster.resources)
    if unfit:
        problems.append(f"no trial fits {cluster.source}: {unfit}")
    trials, concurrent = planned_trials(plan), 0 if unfit else max_concurrent(t, cluster.resources)
    gpu = gpu or cluster.gpu
    cost = None
    if not needs["GPU"]:
        problems.append("no cost estimate: the trials train on CPUs, and the throughput table holds GPU figures")
    elif gpu is None:
        problems.append(f"no cost estimate: {cluster.source} names no GPU model; give one with --gpu-type")
    else:
        try:
            cost = estimate_search(plan.resolved, dataset, plan.eval_field_ids, trials, max(concurrent, 1), gpu)
        except ValueError as error:  # no throughput figure for that GPU or family
            problems.append(f"no cost estimate: {error}")
    return DryRun(plan, cluster, len(dataset.manifest), trials, concurrent, needs, gpu, cost, problems)
