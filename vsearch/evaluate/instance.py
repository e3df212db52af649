"""Instance level: segmenting nuclei and cells, and matching predicted objects to real ones by IoU."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from scipy import ndimage
from scipy.optimize import linear_sum_assignment
from skimage import filters, morphology, segmentation

IOU_THRESHOLDS = np.round(np.arange(0.5, 0.951, 0.05), 2)


class NucleiSegmenter(Protocol):
    def __call__(self, image: np.ndarray) -> np.ndarray:
        """Label image (int32, 0 = background) of the nuclei in a nuclear-stain image."""
        ...


class CellSegmenter(Protocol):
    def __call__(self, image: np.ndarray, nuclei: np.ndarray) -> np.ndarray:
        """Label image of the cells in a cytoplasm-stain image, cell i containing nucleus i."""
        ...


@dataclass(frozen=True)
class ThresholdWatershed:
    """Classical nuclei segmenter: Gaussian smoothing, Otsu threshold (times ``threshold_scale``), small-object
    removal, hole filling, then a watershed of the distance transform from its h-maxima, which splits touching
    round nuclei without cutting irregular ones."""

    smoothing_sigma: float = 1.0
    threshold_scale: float = 1.0
    min_size: int = 12
    h_maxima: float = 1.5

    def __call__(self, image: np.ndarray) -> np.ndarray:
        smoothed = filters.gaussian(image.astype(np.float64), self.smoothing_sigma, preserve_range=True)
        if np.ptp(smoothed) == 0:
            return np.zeros(image.shape, np.int32)
        mask = smoothed > filters.threshold_otsu(smoothed) * self.threshold_scale
        mask = ndimage.binary_fill_holes(morphology.remove_small_objects(mask, max_size=self.min_size - 1))
        distance = ndimage.distance_transform_edt(mask)
        markers, _ = ndimage.label(morphology.h_maxima(distance, self.h_maxima), structure=np.ones((3, 3)))
        labels = segmentation.watershed(-distance, markers, mask=mask)
        return segmentation.relabel_sequential(labels)[0].astype(np.int32)


@dataclass(frozen=True)
class SeededCells:
    """Cells grown from nuclei over the thresholded cytoplasm stain: each foreground pixel joins the nucleus it
    reaches first in a watershed over distance from the nuclei, so cell i always contains nucleus i."""

    smoothing_sigma: float = 1.5
    threshold_scale: float = 1.0

    def __call__(self, image: np.ndarray, nuclei: np.ndarray) -> np.ndarray:
        smoothed = filters.gaussian(image.astype(np.float64), self.smoothing_sigma, preserve_range=True)
        foreground = nuclei > 0
        if np.ptp(smoothed) > 0:
            foreground |= smoothed > filters.threshold_otsu(smoothed) * self.threshold_scale
        distance = ndimage.distance_transform_edt(nuclei == 0)
        return segmentation.watershed(distance, nuclei, mask=foreground).astype(np.int32)


@dataclass(frozen=True)
class CellposeNuclei:
    """Cellpose, where it and its weights are installed (``pip install cellpose``)."""

    model_type: str = "nuclei"
    diameter: float | None = None

    def __call__(self, image: np.ndarray) -> np.ndarray:
        try:
            from cellpose import models
        except ImportError as error:
            raise RuntimeError("segmenter 'cellpose' needs the cellpose package: pip install cellpose") from error
        masks, *_ = models.Cellpose(model_type=self.model_type).eval(image, diameter=self.diameter, channels=[0, 0])
        return masks.astype(np.int32)


NUCLEI_SEGMENTERS: dict[str, type] = {"classical": ThresholdWatershed, "cellpose": CellposeNuclei}


def nuclei_segmenter(name: str, **params: float) -> NucleiSegmenter:
    if name not in NUCLEI_SEGMENTERS:
        raise ValueError(f"unknown segmenter {name!r}; known: {', '.join(NUCLEI_SEGMENTERS)}")
    return NUCLEI_SEGMENTERS[name](**params)


@dataclass(frozen=True)
class MatchResult:
    """One-to-one matching of predicted to real objects; per-threshold arrays follow ``thresholds``."""

    n_true: int
    n_pred: int
    thresholds: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    ap: np.ndarray  # tp / (tp + fp + fn), the "average precision" of Cellpose and StarDist
    matched_iou: np.ndarray = field(repr=False)  # IoU of each pair matched at the lowest threshold

    @property
    def f1_mean(self) -> float:
        return float(self.f1.mean())

    @property
    def ap_mean(self) -> float:
        return float(self.ap.mean())

    @property
    def mean_matched_iou(self) -> float:
        """Mean IoU of the pairs matched at the lowest threshold (NaN when there are none)."""
        return float(self.matched_iou.mean()) if len(self.matched_iou) else float("nan")

    @property
    def count_error(self) -> int:
        """Predicted minus real object count."""
        return self.n_pred - self.n_true

    def at(self, threshold: float) -> dict[str, float]:
        i = int(np.argmin(np.abs(self.thresholds - threshold)))
        return {"precision": self.precision[i], "recall": self.recall[i], "f1": self.f1[i], "ap": self.ap[i]}


def iou_matrix(true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Intersection over union of every (real, predicted) object pair.

    Parameters
    ----------
    true, pred : ndarray ``[H, W]`` of int
        Label images, 0 the background.

    Returns
    -------
    ndarray ``[n_true, n_pred]``
        IoU in [0, 1]; rows and columns follow the sorted non-zero labels. One pass of ``np.bincount`` over the
        joint labels, however many objects there are.
    """
    if true.shape != pred.shape:
        raise ValueError(f"label images differ in shape: {true.shape} vs {pred.shape}")
    t_ids, t = np.unique(true, return_inverse=True)
    p_ids, p = np.unique(pred, return_inverse=True)
    t_off, p_off = int(t_ids[0] == 0), int(p_ids[0] == 0)  # drop the background row/column when present
    nt, np_ = len(t_ids), len(p_ids)
    overlap = np.bincount(t.ravel() * np_ + p.ravel(), minlength=nt * np_).reshape(nt, np_)
    inter = overlap[t_off:, p_off:].astype(np.float64)
    union = overlap.sum(1)[t_off:, None] + overlap.sum(0)[None, p_off:] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def matched_pairs(iou: np.ndarray, *, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """The largest one-to-one matching of objects whose IoU reaches ``threshold``.

    Parameters
    ----------
    iou : ndarray ``[n_true, n_pred]``
        From ``iou_matrix``.
    threshold : float
        The least IoU of a matched pair.

    Returns
    -------
    (rows, columns) : (ndarray, ndarray)
        Indices of the matched pairs: the largest set of pairs and, among such sets, the one of largest total IoU
        (the cost of Cellpose's ``metrics._true_positive``: one per pair outweighs any IoU sum, solved by
        ``scipy.optimize.linear_sum_assignment``). Above 0.5 an object overlaps at most one partner by more than
        half their union, so the pairs are the thresholded entries themselves.
    """
    hits = iou >= threshold - 1e-12
    if threshold > 0.5:
        rows, cols = np.nonzero(hits)
        return rows, cols
    keep_rows, keep_cols = np.flatnonzero(hits.any(1)), np.flatnonzero(hits.any(0))
    if not len(keep_rows):
        return keep_rows, keep_cols
    sub, sub_hits = iou[np.ix_(keep_rows, keep_cols)], hits[np.ix_(keep_rows, keep_cols)]
    cost = -sub_hits.astype(np.float64) - sub / (2 * min(sub.shape))
    rows, cols = linear_sum_assignment(cost)
    ok = sub_hits[rows, cols]
    return keep_rows[rows[ok]], keep_cols[cols[ok]]


def match(true: np.ndarray, pred: np.ndarray, *, thresholds: np.ndarray = IOU_THRESHOLDS) -> MatchResult:
    """Object-level agreement of a predicted segmentation with the real one, at each IoU threshold.

    Parameters
    ----------
    true, pred : ndarray ``[H, W]`` of int
        Label images, 0 the background.
    thresholds : array of float
        IoU thresholds; by default 0.5, 0.55, …, 0.95.

    Returns
    -------
    MatchResult
        Per threshold: tp, the largest number of one-to-one pairs with IoU ≥ threshold (``matched_pairs``), fp
        and fn, the objects left over, and precision, recall, F1 and AP = tp / (tp + fp + fn). With no objects on
        either side every score is 1; otherwise an empty denominator gives 0.

    References
    ----------
    .. [1] Stringer C., Wang T., Michaelos M., Pachitariu M., "Cellpose: a generalist algorithm for cellular
       segmentation", Nature Methods 18, 100–106 (2021): ``metrics.average_precision``.
    .. [2] Schmidt U., Weigert M., Broaddus C., Myers G., "Cell detection with star-convex polygons", MICCAI
       (2018): ``stardist.matching.matching``.
    """
    iou = iou_matrix(true, pred)
    n_true, n_pred = iou.shape
    thresholds = np.asarray(thresholds, np.float64)
    pairs = [matched_pairs(iou, threshold=t) for t in thresholds]
    tp = np.array([len(rows) for rows, _ in pairs], np.int64)
    lowest = int(np.argmin(thresholds))
    matched = iou[pairs[lowest]] if len(thresholds) else np.zeros(0)
    fp, fn = n_pred - tp, n_true - tp
    if n_true == 0 and n_pred == 0:
        precision = recall = f1 = ap = np.ones(len(thresholds))
    else:
        precision = np.divide(tp, tp + fp, out=np.zeros(len(tp)), where=(tp + fp) > 0)
        recall = np.divide(tp, tp + fn, out=np.zeros(len(tp)), where=(tp + fn) > 0)
        f1 = np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros(len(tp)), where=(2 * tp + fp + fn) > 0)
        ap = np.divide(tp, tp + fp + fn, out=np.zeros(len(tp)), where=(tp + fp + fn) > 0)
    return MatchResult(n_true, n_pred, thresholds, tp, fp, fn, precision, recall, f1, ap, matched)
