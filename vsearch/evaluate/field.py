"""Evaluation of one field: a predicted field against the real one, at every requested level."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from vsearch.data.fields import FieldImages
from vsearch.evaluate.features import FociDetector, StainRoles, object_features
from vsearch.evaluate.instance import (
    CellSegmenter,
    MatchResult,
    NucleiSegmenter,
    SeededCells,
    ThresholdWatershed,
    match,
)
from vsearch.evaluate.pixel import is_flat, normalise_pair, pixel_metrics
from vsearch.evaluate.score import FIELD_LEVELS


@dataclass(frozen=True)
class EvaluationConfig:
    stains: tuple[str, ...]
    roles: StainRoles = field(default_factory=StainRoles)
    nuclei_segmenter: NucleiSegmenter = field(default_factory=ThresholdWatershed)
    cell_segmenter: CellSegmenter = field(default_factory=SeededCells)
    foci: FociDetector = field(default_factory=FociDetector)
    levels: tuple[str, ...] = FIELD_LEVELS

    def __post_init__(self) -> None:
        unknown = set(self.levels) - set(FIELD_LEVELS)
        if unknown:
            raise ValueError(f"unknown evaluation level(s) {sorted(unknown)}; known: {', '.join(FIELD_LEVELS)}")
        for role in ("nuclei", "cytoplasm", "foci"):
            stain = getattr(self.roles, role)
            if stain is not None and stain not in self.stains:
                raise ValueError(f"the {role} stain {stain!r} is not among the evaluated stains {list(self.stains)}")


@dataclass
class FieldEvaluation:
    field_id: str
    metrics: list[dict[str, object]]  # rows: stain, level, metric, value
    objects: dict[str, pd.DataFrame]  # "real" / "pred": one row per object
    nuclei_counts: dict[str, int]


def _match_rows(stain: str, level: str, result: MatchResult) -> list[dict[str, object]]:
    at50, at75 = result.at(0.5), result.at(0.75)
    values = {
        "precision_50": at50["precision"],
        "recall_50": at50["recall"],
        "f1_50": at50["f1"],
        "f1_75": at75["f1"],
        "f1_mean": result.f1_mean,
        "ap_50": at50["ap"],
        "ap_75": at75["ap"],
        "ap_mean": result.ap_mean,
        "mean_iou": result.mean_matched_iou,
        "count_error": result.count_error,
        "n_true": result.n_true,
        "n_pred": result.n_pred,
    }
    return [{"stain": stain, "level": level, "metric": k, "value": float(v)} for k, v in values.items()]


def evaluate_field(truth: FieldImages, pred: FieldImages, config: EvaluationConfig) -> FieldEvaluation:
    """Pixel metrics per stain (NaN, with metric ``flat`` = 1, where the real stain is flat: ``pixel.is_flat``);
    nuclei and cells segmented in the real and in the predicted stains by the same
    segmenters and matched; per-object features of both. Ground-truth labels, where stored, score the segmenter
    on the real stain (level ``segmenter``)."""
    if truth.field_id != pred.field_id:
        raise ValueError(f"fields differ: truth {truth.field_id!r}, prediction {pred.field_id!r}")
    missing = [s for s in config.stains if s not in pred.stains or s not in truth.stains]
    if missing:
        raise ValueError(f"field {truth.field_id!r}: stain(s) {missing} missing from the truth or the prediction")
    rows: list[dict[str, object]] = []
    if "pixel" in config.levels:
        true_stack, pred_stack = zip(
            *(normalise_pair(truth.stains[s], pred.stains[s]) for s in config.stains), strict=True
        )
        values = pixel_metrics(np.stack(true_stack), np.stack(pred_stack), data_range=1.0)
        for i, stain in enumerate(config.stains):
            flat = is_flat(truth.stains[stain])
            rows += [
                {"stain": stain, "level": "pixel", "metric": k, "value": np.nan if flat else float(v[i])}
                for k, v in values.items()
            ]
            rows.append({"stain": stain, "level": "pixel", "metric": "flat", "value": float(flat)})

    objects: dict[str, pd.DataFrame] = {}
    counts: dict[str, int] = {}
    roles = config.roles
    if roles.nuclei and ({"instance", "feature"} & set(config.levels)):
        segmented = {}
        for source, images in (("real", truth), ("pred", pred)):
            nuclei = config.nuclei_segmenter(images.stains[roles.nuclei])
            cells = config.cell_segmenter(images.stains[roles.cytoplasm], nuclei) if roles.cytoplasm else None
            segmented[source] = (nuclei, cells)
            counts[source] = int(nuclei.max())
        if "instance" in config.levels:
            rows += _match_rows(roles.nuclei, "instance", match(segmented["real"][0], segmented["pred"][0]))
            if roles.cytoplasm:
                rows += _match_rows(roles.cytoplasm, "instance", match(segmented["real"][1], segmented["pred"][1]))
            if "nuclei" in truth.labels:
                rows += _match_rows(roles.nuclei, "segmenter", match(truth.labels["nuclei"], segmented["real"][0]))
        if "feature" in config.levels:
            for source, images in (("real", truth), ("pred", pred)):
                nuclei, cells = segmented[source]
                objects[source] = object_features(images.stains, nuclei, cells, roles, config.foci)
    return FieldEvaluation(truth.field_id, rows, objects, counts)
