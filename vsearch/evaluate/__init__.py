"""Scoring predicted stains against real ones at the pixel, instance, feature and assay levels: pure functions on
arrays (``pixel``, ``instance``, ``assay``, ``score``), one field (``evaluate_field``) and whole datasets on Ray
(``evaluate_datasets``)."""

from vsearch.lazy import lazy_exports

_EXPORTS = {
    "mae": "pixel",
    "mse": "pixel",
    "psnr": "pixel",
    "ssim": "pixel",
    "pearson_r": "pixel",
    "pixel_metrics": "pixel",
    "normalise_pair": "pixel",
    "is_flat": "pixel",
    "iou_matrix": "instance",
    "match": "instance",
    "MatchResult": "instance",
    "ThresholdWatershed": "instance",
    "SeededCells": "instance",
    "CellposeNuclei": "instance",
    "StainRoles": "features",
    "object_features": "features",
    "compare_features": "features",
    "robust_sd": "assay",
    "robust_z_prime": "assay",
    "call_hits": "assay",
    "LEVELS": "score",
    "FIELD_LEVELS": "score",
    "pixel_score": "score",
    "instance_score": "score",
    "feature_score": "score",
    "assay_score": "score",
    "composite": "score",
    "EvaluationConfig": "field",
    "evaluate_field": "field",
    "EvaluationResult": "runner",
    "evaluate_datasets": "runner",
    "calibrate": "calibration",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
