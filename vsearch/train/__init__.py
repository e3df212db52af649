"""Training on Ray Train (``TorchTrainer``), checkpoints, and prediction with a trained model."""

from vsearch.lazy import lazy_exports

_EXPORTS = {
    "train": "trainer",
    "plan_training": "trainer",
    "build_trainer": "trainer",
    "load_model": "checkpoint",
    "predict": "prediction",
    "predict_fields": "prediction",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
