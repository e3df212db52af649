"""The cost plan of ``vsearch run --dry-run``: FLOPs counted against convolutions summed by hand, the throughput
table's round trip, and a search's GPU-hours checked by hand against the measured H200 figures."""

import math
import shutil

import pytest
import torch
from torch import nn

from vsearch.config import DataConfig, TrainConfig, model_config
from vsearch.cost import throughput
from vsearch.cost.estimate import estimate_search
from vsearch.cost.flops import prediction_flops, training_step_flops
from vsearch.cost.peaks import model_flops_utilisation
from vsearch.data.dataset import open_dataset
from vsearch.data.manifest import conditions_of
from vsearch.data.splits import assign_splits
from vsearch.data.synth import SynthSpec, synthesize
from vsearch.search.space import SearchSpace
from vsearch.search.tuner import plan_search


def conv_flops(model: nn.Module, x: torch.Tensor) -> list[int]:
    """Each convolution's forward FLOPs (2 per multiply-add), in call order, from the layers' shapes alone."""
    flops = []

    def count(layer, inputs, output):
        kernel = layer.kernel_size[0] * layer.kernel_size[1] // layer.groups
        if isinstance(layer, nn.ConvTranspose2d):  # every input pixel meets every output channel's kernel
            flops.append(2 * inputs[0][0].numel() * layer.out_channels * kernel)
        else:  # every output pixel sums over its input channels' kernels
            flops.append(2 * output[0].numel() * layer.in_channels * kernel)

    layers = [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    hooks = [layer.register_forward_hook(count) for layer in layers]
    with torch.no_grad():
        model.eval()(x)
    for hook in hooks:
        hook.remove()
    return flops


def train_config(patch: int, batch: int, **model) -> TrainConfig:
    data = DataConfig(dataset="-", composition={"lung/non_toxic": 1.0}, patch=patch, batch_size=batch)
    return TrainConfig(data=data, model=model_config(**model))


def unet_step_by_hand(bf_planes: int, stains: int, patch: int) -> int:
    """A U-Net's training step per patch: forward, then backward's input and weight gradients (each the
    forward's FLOPs) at every convolution but the first, whose input needs no gradient."""
    from vsearch.models import build_model

    config = model_config(family="unet", depth=4, base_width=64)
    per_layer = conv_flops(build_model(config, bf_planes, stains), torch.zeros(1, bf_planes, patch, patch))
    return 3 * sum(per_layer) - per_layer[0]


def test_a_single_convolution_counts_as_by_hand():
    from torch.utils.flop_counter import FlopCounterMode

    layer, counter = nn.Conv2d(3, 8, 3, padding=1), FlopCounterMode(display=False)
    with counter:
        layer(torch.zeros(1, 3, 10, 10))
    assert counter.get_total_flops() == 2 * (8 * 10 * 10) * (3 * 3 * 3)  # outputs x multiply-adds per output
    assert conv_flops(layer, torch.zeros(1, 3, 10, 10)) == [2 * 8 * 100 * 27]


@pytest.mark.parametrize(
    "model",
    [{"family": "unet", "depth": 3, "base_width": 8, "upsampling": "transpose"},
     {"family": "pix2pixhd", "depth": 2, "base_width": 8, "generator_blocks": 2}],
    ids=["unet", "pix2pixhd"],
)  # fmt: skip
def test_prediction_flops_are_the_sum_of_the_generators_convolutions(model):
    from vsearch.models import build_model

    config = train_config(64, 2, **model)
    by_hand = sum(conv_flops(build_model(config.model, 2, 3), torch.zeros(1, 2, 40, 56)))
    assert prediction_flops(config, 2, 3, 40, 56) == by_hand


def test_unet_training_step_matches_the_convolutions_and_the_h200_reference():
    config = train_config(256, 32, family="unet", depth=4, base_width=64)
    assert training_step_flops(config, 2, 3) == unet_step_by_hand(2, 3, 256)
    # ../shared/GPU.md: U-Net 64 / depth 4, 1 -> 3 channels, 256 x 256: 289 GFLOP per patch forward + backward
    assert training_step_flops(config, 1, 3) / 1e9 == pytest.approx(289, rel=0.005)


def test_mfu_of_the_h200_compiled_unet_is_the_third_of_peak_shared_gpu_md_reports():
    # ../shared/GPU.md: torch.compile 1131 img/s, "326 TFLOP/s, about a third of the card's ~990 TFLOP/s" peak
    flops = training_step_flops(train_config(256, 32, family="unet", depth=4, base_width=64), 1, 3) * 1131
    assert flops / 1e12 == pytest.approx(326, rel=0.005)
    assert model_flops_utilisation(flops, "H200") == pytest.approx(326 / 989.4, rel=0.005)
    with pytest.raises(ValueError, match="no bf16 peak known for GPU 'T4'; known: A100, B200, H100"):
        model_flops_utilisation(flops, "T4")


def test_throughput_table_round_trip_replaces_a_configuration(tmp_path):
    table = tmp_path / "throughput.csv"
    shutil.copy(throughput.TABLE, table)
    before = throughput.read_table(table)
    h200_unet = next(m for m in before if m.gpu == "H200" and m.family == "unet" and not m.compiled)
    remeasured = throughput.Measurement(**{**h200_unet.__dict__, "patches_per_s": 842.5, "measured": "2026-12-04"})
    new_gpu = throughput.Measurement(**{**h200_unet.__dict__, "gpu": "B200", "patches_per_s": 1500.0})
    throughput.record(remeasured, table)
    throughput.record(new_gpu, table)
    after = throughput.read_table(table)
    assert len(after) == len(before) + 1
    assert remeasured in after and new_gpu in after and h200_unet not in after
    assert [m for m in after if m not in (remeasured, new_gpu)] == [m for m in before if m != h200_unet]


def test_throughput_table_refuses_bad_rows_naming_file_and_line(tmp_path):
    table = tmp_path / "t.csv"
    text = throughput.TABLE.read_text().splitlines()
    table.write_text("\n".join([text[0], text[1].replace(",810,", ",0,")]) + "\n")
    with pytest.raises(ValueError, match=rf"{table}, line 2: patches_per_s must be above 0"):
        throughput.read_table(table)
    table.write_text(text[0].replace(",source", "") + "\n")
    with pytest.raises(ValueError, match="missing column 'source'"):
        throughput.read_table(table)


@pytest.mark.parametrize(
    ("device", "model"),
    [("NVIDIA H200", "H200"), ("NVIDIA H100 80GB HBM3", "H100"), ("NVIDIA A100-SXM4-80GB", "A100"),
     ("Tesla T4", "T4"), ("NVIDIA L40S", "L40S"), ("NVIDIA-H200", "H200")],
)  # fmt: skip
def test_gpu_model_from_device_names(device, model):
    assert throughput.gpu_model(device) == model


@pytest.fixture(scope="module")
def screen_256(tmp_path_factory) -> str:
    """One bright-field plane and 256 x 256 fields: the GPU.md U-Net's input."""
    out = str(tmp_path_factory.mktemp("screen") / "s256")
    synthesize(SynthSpec(plates=2, wells_per_condition=3, sites=1, size=256, bf_planes=1, seed=3), out)
    return out


def unet_space(dataset: str, **overrides) -> SearchSpace:
    space = {
        "dataset": dataset,
        "held_out": {"leave_out": "phenotype", "phenotype": "toxic"},
        "composition": {"budget": 100, "presets": ["all"], "sample_weights": False},
        "model": {"family": ["unet"], "depth": [4], "base_width": [64], "upsampling": ["transpose"]},
        "optim": {"batch_size": [32], "epochs": 3},
        "patch": 256,
        "patches_per_field": 2,
        "trial": {"gpus_per_worker": 1},
        "objective": {"eval_fields_per_condition": 2},
        "num_trials": 10,
        "results": "unused",
    }
    return SearchSpace.model_validate(space | overrides)


def test_cost_of_a_unet_search_checked_by_hand(screen_256):
    plan = plan_search(unet_space(screen_256))
    dataset = open_dataset(plan.space.dataset)
    cost = estimate_search(plan.resolved, dataset, plan.eval_field_ids, trials=10, concurrent=4, gpu="H200")
    (trial,) = cost.configurations
    # the table's own configuration (H200, U-Net 64/4, 256 px, batch 32, eager) runs at its measured 810 patches/s
    assert trial.patches_per_s == pytest.approx(810)
    assert trial.train_patches == 3 * 100 * 2  # epochs x budget x patches per field
    # validation (every epoch, whole fields of the trainable conditions) and held-out prediction, forward only,
    # at the FLOP rate of the measured step
    manifest = dataset.manifest
    splits = assign_splits(manifest, 0.2, 0.2, 0)  # a trial's default val and test fractions and split seed
    n_val = int(((splits == "val") & conditions_of(manifest).str.endswith("/non_toxic")).sum())
    n_eval = len(plan.eval_field_ids)
    assert n_val == 6 and n_eval == 6  # n_eval: 2 per held-out condition
    from vsearch.models import build_model

    field = sum(conv_flops(build_model(model_config(family="unet", depth=4, base_width=64), 1, 3),
                           torch.zeros(1, 1, 256, 256)))  # fmt: skip
    flop_rate = 810 * unet_step_by_hand(1, 3, 256)
    by_hand = 600 / 810 + (3 * n_val + n_eval) * field / flop_rate
    assert trial.gpu_seconds == pytest.approx(by_hand, rel=1e-9)
    low, mean, high = cost.gpu_hours()
    assert low == mean == high == pytest.approx(10 * by_hand / 3600)
    assert cost.wall_hours()[1] == pytest.approx(math.ceil(10 / 4) * by_hand / 3600)  # 3 waves of 4 trials


def test_the_papers_recipe_costs_about_27_h200_hours_per_model(screen_256):
    """../shared/GPU.md: 21,000 fields x 100 epochs at about 1024 px, Pix2PixHD at 21.8 patches/s on an H200."""
    space = unet_space(
        screen_256, model={"family": ["pix2pixhd"], "depth": [4], "base_width": [64]},
        optim={"batch_size": [4], "epochs": 100}, patch=1024, patches_per_field=1,
        composition={"budget": 21000, "presets": ["all"], "sample_weights": False},
    )  # fmt: skip
    plan = plan_search(space)
    cost = estimate_search(plan.resolved, open_dataset(plan.space.dataset), plan.eval_field_ids, 1, 1, "H200")
    (trial,) = cost.configurations
    assert trial.patches_per_s == pytest.approx(21.8)
    assert trial.train_patches / trial.patches_per_s / 3600 == pytest.approx(2_100_000 / 21.8 / 3600)  # 26.8 h
    assert 26.7 < trial.gpu_hours < 27.5


def test_a_smaller_generator_costs_less_in_proportion_to_its_flops(screen_256):
    """A configuration the table lacks is scaled from the nearest measured one by FLOPs per step."""
    model = {"family": ["pix2pixhd"], "depth": [3, 4], "base_width": [64]}
    space = unet_space(screen_256, model=model, optim={"batch_size": [16], "epochs": 2}, patch=512)
    plan = plan_search(space)
    cost = estimate_search(plan.resolved, open_dataset(plan.space.dataset), plan.eval_field_ids, 4, 2, "H200")
    by_depth = {c.choices["depth"]: c for c in cost.configurations}
    assert by_depth[4].patches_per_s == pytest.approx(93)  # measured
    flops = {d: training_step_flops(train_config(512, 16, family="pix2pixhd", depth=d, base_width=64), 1, 3)
             for d in (3, 4)}  # fmt: skip
    assert by_depth[3].patches_per_s == pytest.approx(93 * flops[4] / flops[3])
    low, mean, high = cost.gpu_hours()
    assert low == pytest.approx(4 * by_depth[3].gpu_hours) and high == pytest.approx(4 * by_depth[4].gpu_hours)
    assert mean == pytest.approx(2 * (by_depth[3].gpu_hours + by_depth[4].gpu_hours))


def test_estimate_refuses_cpu_trials_and_gpus_the_table_lacks(screen_256):
    plan = plan_search(unet_space(screen_256))
    dataset = open_dataset(plan.space.dataset)
    with pytest.raises(ValueError, match=r"no throughput figure for unet on V100; the table has \[\('H100', 'unet'\)"):
        estimate_search(plan.resolved, dataset, plan.eval_field_ids, 1, 1, "V100")
    cpu = plan_search(unet_space(screen_256, trial={"gpus_per_worker": 0}))
    with pytest.raises(ValueError, match=r"trial\.gpus_per_worker is 0"):
        estimate_search(cpu.resolved, dataset, cpu.eval_field_ids, 1, 1, "H200")
