"""The training stream honours compositions, splits never share a well, fields are decoded once per epoch."""

import numpy as np
import pandas as pd
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view
from pydantic import ValidationError

from vsearch.config import DataConfig
from vsearch.data.dataset import open_dataset
from vsearch.data.normalise import normalise_inputs, normalise_targets, target_ranges
from vsearch.data.pipeline import augment_patches, patch_tasks, training_stream
from vsearch.data.splits import assign_splits
from vsearch.search.composition import composition_counts, sample_composition
from vsearch.train.steps import normalised_patches

pytestmark = pytest.mark.slow  # Ray jobs: `pytest -m "not slow"` leaves them out

STAINS = ["nuclei", "cytoplasm", "dna_damage"]


def test_composition_counts_by_largest_remainder():
    # 7 × (0.5, 0.3, 0.2) = 3.5, 2.1, 1.4 -> floors 3, 2, 1; the one left goes to the largest remainder (a)
    assert composition_counts({"a/x": 0.5, "b/x": 0.3, "c/x": 0.2}, 7) == {"a/x": 4, "b/x": 2, "c/x": 1}
    assert composition_counts({"a/x": 1.0, "b/x": 0.0}, 5) == {"a/x": 5, "b/x": 0}


def test_stream_shares_match_weights_over_5000_patches(small_screen, ray_local):
    ds = open_dataset(small_screen)
    train = ds.manifest[assign_splits(ds.manifest, 0.2, 0.2) == "train"]
    weights = {"lung/toxic": 0.45, "breast/non_toxic": 0.35, "ovarian/toxic": 0.2, "lung/non_toxic": 0.0}
    sample = sample_composition(train, weights, budget=700, seed=3)
    stream = training_stream(*patch_tasks(ds, sample, STAINS, patch=32, patches_per_field=8, ranges=None, seed=0))
    counts: dict[str, int] = {}
    total = 0
    for batch in stream.iter_batches(batch_size=512, batch_format="numpy"):
        assert batch["x"].shape[1:] == (2, 32, 32) and batch["y"].shape[1:] == (3, 32, 32)
        for condition, n in zip(*np.unique(batch["condition"], return_counts=True), strict=True):
            counts[condition] = counts.get(condition, 0) + int(n)
        total += len(batch["condition"])
    assert total >= 5000
    assert "lung/non_toxic" not in counts
    for condition, weight in weights.items():
        assert abs(counts.get(condition, 0) / total - weight) <= 0.03, condition


def test_augmentation_is_new_each_epoch_and_the_same_in_a_rerun(small_screen, ray_local):
    ds = open_dataset(small_screen)
    sample = sample_composition(ds.manifest, {"breast/toxic": 1.0}, budget=8, seed=0)

    def epochs(seed: int, count: int) -> list[np.ndarray]:
        stream = training_stream(
            *patch_tasks(ds, sample, STAINS, patch=32, patches_per_field=3, ranges=None, seed=seed)
        )
        stream.context.execution_options.preserve_order = True
        return [np.concatenate([b["x"] for b in stream.iter_batches(batch_format="numpy")]) for _ in range(count)]

    first, rerun = epochs(0, 2), epochs(0, 2)
    assert np.array_equal(first[0], rerun[0]) and np.array_equal(first[1], rerun[1])
    assert not np.array_equal(first[0], first[1])  # new crops, flips and turns each epoch
    assert not np.array_equal(epochs(1, 1)[0], first[0])


def test_each_sampled_field_is_read_in_one_task_however_many_copies(small_screen, ray_local):
    ds = open_dataset(small_screen)
    sample = sample_composition(ds.manifest, {"breast/toxic": 1.0}, budget=40, seed=0)
    assert sample.copies.sum() == 40 and sample.copies.max() > 1 and sample.field_id.is_unique
    stream = training_stream(*patch_tasks(ds, sample, STAINS, patch=32, patches_per_field=3, ranges=None, seed=0))
    assert stream.count() == 40 * 3
    patches = pd.Series(np.concatenate([b["field_id"] for b in stream.iter_batches(batch_format="numpy")]))
    # every copy's patches come from the field's single decode: counts are copies x patches_per_field
    assert patches.value_counts().sort_index().to_dict() == dict(zip(sample.field_id, sample.copies * 3, strict=True))


def test_unknown_condition_and_bad_weights_are_refused(small_screen):
    ds = open_dataset(small_screen)
    with pytest.raises(ValueError, match=r"composition names condition 'liver/toxic', which has no training fields"):
        sample_composition(ds.manifest, {"liver/toxic": 1.0}, 10, 0)
    with pytest.raises(ValidationError, match=r"composition weights sum to 0.9, not 1"):
        DataConfig(dataset="x", composition={"lung/toxic": 0.6, "lung/non_toxic": 0.3})
    with pytest.raises(ValidationError, match="composition key 'lung' is not 'cell_type/phenotype'"):
        DataConfig(dataset="x", composition={"lung": 1.0})
    with pytest.raises(ValidationError, match="negative"):
        DataConfig(dataset="x", composition={"lung/toxic": 1.5, "lung/non_toxic": -0.5})
    DataConfig(dataset="x", composition={"lung/toxic": 0.6, "lung/non_toxic": 0.4 + 5e-7})  # within 1e-6


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_well_is_in_two_splits(default_screen, seed):
    m = open_dataset(default_screen).manifest
    split = assign_splits(m, val_fraction=0.2, test_fraction=0.2, seed=seed)
    per_well = pd.DataFrame({"group": m.split_group, "split": split}).groupby("group").split.nunique()
    assert (per_well == 1).all()
    wells = {s: set(m.split_group[split == s]) for s in ("train", "val", "test")}
    assert (
        not (wells["train"] & wells["val"])
        and not (wells["train"] & wells["test"])
        and not (wells["val"] & wells["test"])
    )
    conditions = m.cell_type + "/" + m.phenotype
    for condition in conditions.unique():  # every condition keeps wells in each split
        assert set(split[conditions == condition]) == {"train", "val", "test"}, condition


def test_patches_keep_input_and_target_aligned():
    rng = np.random.default_rng(0)
    x = rng.random((2, 40, 50))
    y = np.stack([2 * x[0], x[1] - x[0]])
    xp, yp = np.empty((64, 2, 16, 16)), np.empty((64, 2, 16, 16))
    augment_patches(x, y, xp, yp, rng)
    np.testing.assert_allclose(yp[:, 0], 2 * xp[:, 0], rtol=1e-6)
    np.testing.assert_allclose(yp[:, 1], xp[:, 1] - xp[:, 0], rtol=1e-6, atol=1e-7)
    # every patch is some flip / rotation of some window of the source
    windows = {
        np.round(np.sort(x[0, i : i + 16, j : j + 16].ravel()), 6).tobytes() for i in range(25) for j in range(35)
    }
    assert all(np.round(np.sort(p.ravel()), 6).tobytes() in windows for p in xp[:, 0])
    with pytest.raises(ValueError, match="smaller than the 64-pixel patch"):
        augment_patches(x, y, np.empty((1, 2, 64, 64)), np.empty((1, 2, 64, 64)), rng)


def _window_and_turn(patch: np.ndarray, source: np.ndarray) -> tuple[int, int, int, bool]:
    """(row, column, quarter turns, flipped) such that ``patch`` is that window of ``source``, flipped then turned."""
    size = patch.shape[-1]
    windows = sliding_window_view(source, (size, size), axis=(1, 2))
    for flipped in (False, True):
        for turns in range(4):
            candidate = np.rot90(patch, -turns, axes=(1, 2))
            candidate = candidate[:, :, ::-1] if flipped else candidate
            error = np.abs(windows - candidate[:, None, None]).max(axis=(0, 3, 4))
            row, column = np.unravel_index(error.argmin(), error.shape)
            if error[row, column] < 1e-4:
                return int(row), int(column), turns, flipped
    raise AssertionError("the patch is no flip or rotation of any window of its field")


def test_stream_patches_are_normalised_windows_of_their_field(small_screen, ray_local):
    ds = open_dataset(small_screen)
    ranges = target_ranges(ds, ds.manifest.field_id.tolist(), STAINS)
    sample = sample_composition(ds.manifest, {"lung/toxic": 0.5, "breast/non_toxic": 0.5}, budget=4, seed=1)
    stream = training_stream(*patch_tasks(ds, sample, STAINS, patch=32, patches_per_field=3, ranges=ranges, seed=0))
    seen = 0
    for batch in stream.iter_batches(batch_size=None, batch_format="numpy"):
        tensors = {k: torch.tensor(v) for k, v in batch.items() if k not in ("field_id", "condition")}
        x, y = normalised_patches(tensors)
        for field_id, x_patch, y_patch in zip(batch["field_id"], x.numpy(), y.numpy(), strict=True):
            field = ds.read(field_id)
            row, column, turns, flipped = _window_and_turn(x_patch, normalise_inputs(field.bf))
            target = normalise_targets(field.stains, STAINS, ranges)[:, row : row + 32, column : column + 32]
            target = target[:, :, ::-1] if flipped else target
            np.testing.assert_allclose(y_patch, np.rot90(target, turns, axes=(1, 2)), atol=1e-4)
            seen += 1
    assert seen == 4 * 3
