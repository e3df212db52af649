"""Datasets of fields (bright-field z-stacks, stains, labels) in Parquet shards, local or on S3: ingest, the
synthetic screen, reading, splitting and the Ray Data streams that feed training."""

from vsearch.lazy import lazy_exports

_EXPORTS = {
    "Dataset": "dataset",
    "DatasetWriter": "dataset",
    "open_dataset": "dataset",
    "DatasetInfo": "manifest",
    "FieldImages": "fields",
    "describe": "summary",
    "ingest": "layout",
    "ingest_plates": "plate",
    "SynthSpec": "synth",
    "synthesize": "synth",
    "assign_splits": "splits",
    "training_stream": "pipeline",
    "patch_tasks": "pipeline",
    "validation_set": "pipeline",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
