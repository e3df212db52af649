"""Matching on hand-built label images (IoUs worked out by hand), and the default segmenters."""

from itertools import pairwise

import numpy as np
import pytest
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_bipartite_matching

from vsearch.evaluate.instance import IOU_THRESHOLDS, SeededCells, ThresholdWatershed, iou_matrix, match


def labels(*boxes: tuple[int, int, int, int, int], shape=(40, 40)) -> np.ndarray:
    """A label image from (label, y0, y1, x0, x1) boxes."""
    out = np.zeros(shape, np.int32)
    for label, y0, y1, x0, x1 in boxes:
        out[y0:y1, x0:x1] = label
    return out


def test_identical_objects_with_permuted_labels_match_perfectly():
    true = labels((1, 0, 10, 0, 10), (2, 20, 30, 20, 25), (3, 12, 18, 30, 38))
    pred = labels((7, 0, 10, 0, 10), (3, 20, 30, 20, 25), (1, 12, 18, 30, 38))
    result = match(true, pred)
    assert (result.n_true, result.n_pred) == (3, 3)
    assert np.all(result.tp == 3) and np.all(result.fp == 0) and np.all(result.fn == 0)
    assert result.f1_mean == 1.0 and result.mean_matched_iou == 1.0 and result.count_error == 0


def test_shifted_square_iou_two_thirds():
    # 10x10 squares offset by 2 columns: intersection 80, union 120, IoU 2/3
    true, pred = labels((1, 0, 10, 0, 10)), labels((1, 0, 10, 2, 12))
    assert iou_matrix(true, pred)[0, 0] == pytest.approx(2 / 3)
    result = match(true, pred)
    # a true positive at thresholds 0.50, 0.55, 0.60, 0.65; missed (1 FP + 1 FN) above
    assert list(result.tp) == [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    assert result.f1_mean == pytest.approx(0.4)
    assert result.mean_matched_iou == pytest.approx(2 / 3)


def test_split_object():
    # one 10x10 real object predicted as two 10x5 halves: each half has IoU 50/100 = 0.5
    true = labels((1, 0, 10, 0, 10))
    pred = labels((1, 0, 10, 0, 5), (2, 0, 10, 5, 10))
    result = match(true, pred)
    at50 = result.at(0.5)
    assert (result.tp[0], result.fp[0], result.fn[0]) == (1, 1, 0)
    assert at50["precision"] == 0.5 and at50["recall"] == 1.0 and at50["f1"] == pytest.approx(2 / 3)
    assert result.f1[1] == 0.0  # at IoU 0.55 nothing matches
    assert result.f1_mean == pytest.approx(2 / 3 / 10)
    assert result.count_error == 1


def test_merged_objects():
    true = labels((1, 0, 10, 0, 5), (2, 0, 10, 5, 10))
    pred = labels((5, 0, 10, 0, 10))
    result = match(true, pred)
    assert (result.tp[0], result.fp[0], result.fn[0]) == (1, 0, 1)
    assert result.at(0.5)["recall"] == 0.5 and result.count_error == -1


def test_overlapping_neighbours_are_matched_one_to_one():
    # true 1: cols 0-9, true 2: cols 10-19; pred 1 drawn on cols 2-11 then pred 2 on cols 11-19,
    # so pred 1 keeps cols 2-10 (90 px): IoU with true 1 = 80 / 110, with true 2 = 10 / 180; pred 2: 90 / 100
    true = labels((1, 0, 10, 0, 10), (2, 0, 10, 10, 20))
    pred = labels((1, 0, 10, 2, 12), (2, 0, 10, 11, 20))
    np.testing.assert_allclose(iou_matrix(true, pred), [[80 / 110, 0.0], [10 / 180, 0.9]])
    result = match(true, pred)
    assert result.tp[0] == 2
    np.testing.assert_allclose(sorted(result.matched_iou), [80 / 110, 0.9])
    assert result.mean_matched_iou == pytest.approx((80 / 110 + 0.9) / 2)


def test_empty_and_all_missed():
    empty = np.zeros((20, 20), np.int32)
    both_empty = match(empty, empty)
    assert both_empty.f1_mean == 1.0 and both_empty.count_error == 0
    some = labels((1, 0, 5, 0, 5), (2, 10, 15, 10, 15), shape=(20, 20))
    missed = match(some, empty)
    assert np.all(missed.fn == 2) and np.all(missed.recall == 0) and missed.f1_mean == 0.0
    invented = match(empty, some)
    assert np.all(invented.fp == 2) and np.all(invented.precision == 0) and invented.f1_mean == 0.0
    disjoint = match(labels((1, 0, 5, 0, 5), shape=(20, 20)), labels((1, 10, 15, 10, 15), shape=(20, 20)))
    assert disjoint.tp.sum() == 0 and np.isnan(disjoint.mean_matched_iou)


def test_watershed_splits_touching_discs_and_cells_contain_their_nuclei():
    yy, xx = np.mgrid[0:60, 0:80]
    image = np.zeros((60, 80))
    for cy, cx in ((30, 25), (30, 41), (12, 65)):  # the first two discs touch
        image[(yy - cy) ** 2 + (xx - cx) ** 2 <= 64] = 1000
    nuclei = ThresholdWatershed()(image.astype(np.uint16))
    assert nuclei.max() == 3
    cytoplasm = np.zeros((60, 80))
    cytoplasm[5:55, 5:75] = 500
    cells = SeededCells()(cytoplasm.astype(np.uint16), nuclei)
    inside = nuclei > 0
    assert np.array_equal(cells[inside], nuclei[inside]) and cells.max() == 3


def test_merge_plus_split_counts_the_largest_set_of_pairs():
    # true A: 10 rows x 100 columns, B: 10 x 30 beside it; predicted X covers B and 66 columns of A, Y the other 34.
    # IoU(A, X) = 660 / 1300 = 0.508, IoU(B, X) = 300 / 960, IoU(A, Y) = 340 / 1000: one pair reaches 0.5, while
    # the assignment of largest total IoU (A-Y, B-X: 0.65 against 0.51) has none.
    true = labels((1, 0, 10, 0, 100), (2, 0, 10, 100, 130), shape=(10, 130))
    pred = labels((1, 0, 10, 34, 130), (2, 0, 10, 0, 34), shape=(10, 130))
    np.testing.assert_allclose(iou_matrix(true, pred), [[660 / 1300, 340 / 1000], [300 / 960, 0.0]])
    result = match(true, pred)
    assert (result.tp[0], result.fp[0], result.fn[0]) == (1, 1, 1)
    assert result.at(0.5)["f1"] == pytest.approx(0.5) and result.at(0.5)["ap"] == pytest.approx(1 / 3)
    assert result.tp[1] == 0  # 0.508 < 0.55
    np.testing.assert_allclose(result.matched_iou, [660 / 1300])


def test_ap_is_tp_over_tp_fp_fn():
    true = labels((1, 0, 10, 0, 10), (2, 20, 30, 0, 10), (3, 0, 10, 20, 30))
    pred = labels((1, 0, 10, 0, 10), (2, 20, 30, 2, 12))  # a perfect match, an IoU of 80/120, a miss
    result = match(true, pred)
    # thresholds 0.50-0.65: tp 2, fp 0, fn 1 -> AP 2/3; from 0.70: tp 1, fp 1, fn 2 -> AP 1/4
    np.testing.assert_allclose(result.ap, [2 / 3] * 4 + [1 / 4] * 6)
    assert result.ap_mean == pytest.approx((4 * 2 / 3 + 6 / 4) / 10)


def _iou_by_masks(true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    t_ids, p_ids = [i for i in np.unique(true) if i], [i for i in np.unique(pred) if i]
    out = np.zeros((len(t_ids), len(p_ids)))
    for i, a in enumerate(t_ids):
        for j, b in enumerate(p_ids):
            inter = np.logical_and(true == a, pred == b).sum()
            out[i, j] = inter / np.logical_or(true == a, pred == b).sum()
    return out


def _maximum_matching_size(iou: np.ndarray, threshold: float) -> int:
    """Hopcroft-Karp on the bipartite graph of pairs with IoU >= threshold."""
    graph = csr_matrix((iou >= threshold - 1e-12).astype(np.int8))
    if graph.nnz == 0:
        return 0
    return int((maximum_bipartite_matching(graph, perm_type="column") >= 0).sum())


def _random_pair(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Rows of touching objects, real and predicted cut at different places, so predicted objects split, merge
    and straddle real ones; some objects on either side are dropped (missed or invented ones)."""
    true = np.zeros((64, 64), np.int32)
    pred = np.zeros_like(true)
    for image, jitter in ((true, 0), (pred, 2)):
        label = 0
        for y0 in range(2, 60, 16):
            cuts = np.sort(rng.choice(np.arange(4, 61), size=int(rng.integers(1, 5)), replace=False))
            edges = [0, *cuts.tolist(), 64]
            top = y0 + int(rng.integers(-jitter, jitter + 1))
            for x0, x1 in pairwise(edges):
                if rng.random() < 0.85:
                    label += 1
                    image[top : top + 10, x0:x1] = label
    return true, pred


def test_random_pairs_agree_with_an_independent_maximum_matching():
    rng = np.random.default_rng(11)
    thresholds = np.array([0.3, 0.4, *IOU_THRESHOLDS])
    for _ in range(50):  # at the thresholds below 0.5, a real object often has two candidates
        true, pred = _random_pair(rng)
        iou = _iou_by_masks(true, pred)
        result = match(true, pred, thresholds=thresholds)
        expected = [_maximum_matching_size(iou, t) for t in thresholds]
        assert list(result.tp) == expected
        np.testing.assert_array_equal(result.fn, iou.shape[0] - np.array(expected))
        np.testing.assert_array_equal(result.fp, iou.shape[1] - np.array(expected))
