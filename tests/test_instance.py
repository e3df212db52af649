"""Matching on hand-built label images (IoUs worked out by hand), and the default segmenters."""

import numpy as np
import pytest

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


def test_thresholds_are_half_to_095():
    np.testing.assert_allclose(IOU_THRESHOLDS, [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95])


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
