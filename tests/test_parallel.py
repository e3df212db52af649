"""Data-parallel Ray Train: runs that cannot feed their stream are refused, workers take distinct shares of an
epoch, DDP averages their gradients, and a 2-worker training finishes and resumes on two CPUs (a search of
2-worker trials: ``tests/test_roles.py``)."""

import hashlib
import json
from collections import Counter
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from tests.test_search import write_space
from tests.test_train import small_config
from vsearch.cli import app
from vsearch.config import Pix2PixHDConfig, TrainConfig, UNetConfig
from vsearch.train.checkpoint import unwrap
from vsearch.train.steps import build_learner, train_epoch
from vsearch.train.trainer import dataset_config, plan_training, scaling_config, train, training_patches

pytestmark = pytest.mark.slow  # Ray jobs: `pytest -m "not slow"` leaves them out

REFUSAL = (
    "2 worker(s) x 1 CPU + 1 CPU for the data stream need 3 CPUs; the cluster has 2, and a stream without a CPU "
    "never delivers a batch: set cpus_per_worker to 0.5 or less, or use fewer workers"
)


def test_two_workers_that_hold_both_cpus_are_refused_by_train_and_run_before_anything_is_written(
    small_screen, tmp_path, ray_local
):
    runs = tmp_path / "runs"
    with pytest.raises(ValueError) as refused:
        train(small_config(small_screen, str(runs), "two", workers=2))
    assert str(refused.value) == f"workers: {REFUSAL}"
    assert not runs.exists()
    results = tmp_path / "results"
    path = write_space(tmp_path / "s.yaml", small_screen, str(results), trial={"workers": 2})
    ran = CliRunner().invoke(app, ["run", str(path)])
    assert ran.exit_code == 2, ran.output
    assert f"trial.workers: {REFUSAL}" in " ".join(ran.output.split())
    assert not results.exists()  # no lock, no study, no table


def patch_ids(batch: dict[str, np.ndarray]) -> list[str]:
    """One id per patch: a hash of its input and target pixels."""
    return [hashlib.sha1(x.tobytes() + y.tobytes()).hexdigest() for x, y in zip(batch["x"], batch["y"], strict=True)]


def record_shard(loop_config: dict) -> None:
    """Ray Train worker: writes the ids of the patches its ``train`` shard delivers in one epoch."""
    import ray.train

    rank = ray.train.get_context().get_world_rank()
    shard = ray.train.get_dataset_shard("train")
    ids = [i for batch in shard.iter_batches(batch_size=8, batch_format="numpy") for i in patch_ids(batch)]
    Path(loop_config["out"], f"rank{rank}.json").write_text(json.dumps(ids))


def test_two_workers_take_distinct_shares_that_make_up_the_whole_epoch(small_screen, tmp_path, ray_local):
    from ray.train import RunConfig
    from ray.train.torch import TorchTrainer

    config = small_config(small_screen, str(tmp_path / "runs"), "shares", workers=2, cpus_per_worker=0.5)
    plan = plan_training(config)
    epoch = Counter(i for batch in training_patches(config, plan).iter_batches(batch_format="numpy")
                    for i in patch_ids(batch))  # fmt: skip
    assert sum(epoch.values()) == plan.sample.copies.sum() * config.data.patches_per_field == 48
    TorchTrainer(
        record_shard,
        train_loop_config={"out": str(tmp_path)},
        scaling_config=scaling_config(config),
        run_config=RunConfig(name="shares", storage_path=str(tmp_path / "runs")),
        datasets={"train": training_patches(config, plan)},  # a new stream: the same epoch-0 patches
        dataset_config=dataset_config(config),
    ).fit()
    shares = [Counter(json.loads((tmp_path / f"rank{r}.json").read_text())) for r in (0, 1)]
    assert sum(shares[0].values()) == sum(shares[1].values()) == 24
    assert shares[0] + shares[1] == epoch  # every patch once: none twice, none lost
    assert not shares[0].keys() & shares[1].keys()


MODELS = {
    # group norm: batch norm on CPU workers normalises by each worker's own share of the batch
    "unet": UNetConfig(depth=2, base_width=8, norm="group"),
    # the discriminator's instance norm is per patch, and it judges fake and real pairs in one pass
    "pix2pixhd": Pix2PixHDConfig(depth=2, base_width=8, generator_blocks=1, discriminator_scales=2, l1_weight=1.0),
}


def step_config(model, workers: int) -> TrainConfig:
    return small_config("unused", "unused", "ddp", workers=workers, cpus_per_worker=0.5, model=model)


def stepped(learner) -> dict:
    """The generator's weights after a step, and the gradients it stepped along."""
    model = unwrap(learner.model)
    return {"weights": model.state_dict(), "grads": {k: v.grad for k, v in model.named_parameters()}}


def one_step(loop_config: dict) -> None:
    """Ray Train worker: for each model, one training step on its rows of ``loop_config["batch"]`` (rank r of n
    takes the r-th of n equal parts); rank 0 saves what ``stepped`` returns (DDP's averaged gradients)."""
    import ray.train

    from vsearch.train.loop import prepared_learner

    context = ray.train.get_context()
    rank, size = context.get_world_rank(), context.get_world_size()
    part = {key: torch.as_tensor(np.array_split(value, size)[rank]) for key, value in loop_config["batch"].items()}
    for name, config in loop_config["configs"].items():
        config = TrainConfig.model_validate(config)
        torch.manual_seed(0)
        learner, _ = prepared_learner(config, bf_planes=3, stains=2, memory_format=torch.contiguous_format)
        train_epoch(learner, [part], config, torch.device("cpu"), nullcontext())
        if rank == 0:
            torch.save(stepped(learner), Path(loop_config["out"], f"{name}.pt"))


def test_two_workers_with_batch_b_take_the_step_one_worker_takes_with_batch_2b(tmp_path, ray_local):
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    rng = np.random.default_rng(0)
    b, p = 4, 32
    batch = {
        "x": rng.integers(-2000, 2000, (2 * b, 3, p, p)).astype(np.int16),
        "y": rng.integers(-2000, 2000, (2 * b, 2, p, p)).astype(np.int16),
        "x_offset": rng.normal(0, 100, (2 * b, 3)).astype(np.float32),
        "x_scale": np.full((2 * b, 3), 1e-3, np.float32),
        "y_offset": np.full((2 * b, 2), -2000, np.float32),
        "y_scale": np.full((2 * b, 2), 1 / 4000, np.float32),
    }
    TorchTrainer(
        one_step,
        train_loop_config={
            "configs": {name: step_config(model, 2).model_dump() for name, model in MODELS.items()},
            "batch": batch,
            "out": str(tmp_path),
        },
        scaling_config=ScalingConfig(num_workers=2, resources_per_worker={"CPU": 0.5}),
        run_config=RunConfig(name="ddp", storage_path=str(tmp_path / "runs")),
    ).fit()
    whole = {key: torch.as_tensor(value) for key, value in batch.items()}
    for name, model in MODELS.items():
        config = step_config(model, 1)
        torch.manual_seed(0)
        alone = build_learner(config, 3, 2)  # one process, no DDP, the whole batch of 2B
        start = {k: v.clone() for k, v in alone.model.state_dict().items()}
        train_epoch(alone, [whole], config, torch.device("cpu"), nullcontext())
        one, two = stepped(alone), torch.load(tmp_path / f"{name}.pt")
        assert one["grads"].keys() == two["grads"].keys() and two["weights"].keys() == start.keys()
        for key, grad in one["grads"].items():
            # the same sums in another order: equal to 1e-5 of the gradient's largest element
            torch.testing.assert_close(two["grads"][key], grad, rtol=0, atol=1e-5 * float(grad.abs().max()), msg=key)
        lr = config.optim.lr
        assert max(float((one["weights"][k] - start[k]).abs().max()) for k in start) > 0.5 * lr  # the step moved them
        # Adam's first step is lr * g / (|g| + eps): a rounding difference in a gradient near eps moves a weight by
        # a visible part of lr, so the weights agree to a hundredth of a step
        for key, weight in one["weights"].items():
            torch.testing.assert_close(two["weights"][key], weight, rtol=0, atol=0.01 * lr, msg=f"{name} {key}")


def test_a_two_worker_training_finishes_on_two_cpus_and_resumes_with_two_workers(small_screen, tmp_path, ray_local):
    runs = str(tmp_path / "runs")
    first = train(small_config(small_screen, runs, "two", workers=2, cpus_per_worker=0.5, epochs=1))
    assert first.error is None and first.metrics["epoch"] == 0 and 0 < first.metrics["val_score"] <= 1
    resumed = train(small_config(small_screen, runs, "two", workers=2, cpus_per_worker=0.5))
    assert resumed.error is None
    assert (resumed.metrics["start_epoch"], resumed.metrics["epoch"]) == (1, 1)
    assert {"val_r_nuclei", "val_ssim_cytoplasm", "val_l1", "patches_per_s"} <= resumed.metrics.keys()
    folders = sorted(p for p in Path(runs, "two").glob("checkpoint_*") if p.is_dir())
    assert [json.loads((p / "meta.json").read_text())["epoch"] for p in folders] == [0, 1]  # rank 0's, one an epoch
