"""What a training run holds: its workers' CPUs and GPUs and one CPU for its data stream, and the refusals."""

import pytest

from vsearch.search.space import TrialResources
from vsearch.search.tuner import max_concurrent
from vsearch.train.resources import fitting_runs, refuse_unless_one_fits, run_needs, unfit_reason


def test_a_run_needs_its_workers_resources_and_one_cpu_for_its_stream():
    assert run_needs(2, 0.5, 0) == {"CPU": 2.0, "GPU": 0}
    assert run_needs(4, 8, 1) == {"CPU": 33.0, "GPU": 4}


def test_runs_that_fit_count_every_resource_they_need():
    assert fitting_runs({"CPU": 2.0, "GPU": 0}, {"CPU": 2.0}) == 1
    assert fitting_runs({"CPU": 2.0, "GPU": 0}, {"CPU": 7.0}) == 3  # 7 // 2
    assert fitting_runs({"CPU": 3.0, "GPU": 0.5}, {"CPU": 16.0, "GPU": 1.0}) == 2  # the GPU holds two halves
    assert fitting_runs({"CPU": 3.0, "GPU": 1.0}, {"CPU": 16.0}) == 0
    assert fitting_runs({"CPU": 1.1, "GPU": 0}, {"CPU": 3.3}) == 3  # 3.3 / 1.1 is 2.9999999999999996 in floats


def test_two_workers_that_take_both_cpus_are_refused_with_the_numbers_and_the_fix():
    assert unfit_reason("workers", 2, 1, 0, {"CPU": 2.0}) == (
        "workers: 2 worker(s) x 1 CPU + 1 CPU for the data stream need 3 CPUs; the cluster has 2, and a stream "
        "without a CPU never delivers a batch: set cpus_per_worker to 0.5 or less, or use fewer workers"
    )
    assert unfit_reason("workers", 2, 0.5, 0, {"CPU": 2.0}) is None
    assert unfit_reason("trial.workers", 3, 1, 0, {"CPU": 2.0}).endswith(
        "set cpus_per_worker to 0.33 or less, or use fewer workers"
    )
    assert unfit_reason("workers", 1, 1, 0, {"CPU": 1.0}).endswith("the cluster needs more than 1 CPU")


def test_more_gpus_than_the_cluster_has_are_refused_before_cpus_are_counted():
    with pytest.raises(ValueError) as refused:
        refuse_unless_one_fits("trial.workers", 2, 8, 1, {"CPU": 2.0, "GPU": 1.0})
    assert str(refused.value) == "trial.workers: 2 worker(s) x 1 GPU need 2 GPU(s); the cluster has 1"


def test_concurrent_trials_leave_each_stream_its_cpu():
    two_workers = TrialResources(workers=2, cpus_per_worker=0.5)
    assert max_concurrent(two_workers, {"CPU": 8.0}) == 4  # 4 x (2 x 0.5 + 1)
    assert max_concurrent(two_workers.model_copy(update={"max_concurrent": 3}), {"CPU": 8.0}) == 3
