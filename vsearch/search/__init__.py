"""The search over training-data mixes and models: search spaces, compositions, Ray Tune with Optuna, held-out
scoring and the results a search leaves."""

from vsearch.lazy import lazy_exports

_EXPORTS = {
    "SearchSpace": "space",
    "run_search": "tuner",
    "plan_search": "tuner",
    "held_out_fields": "heldout",
    "score_model": "heldout",
    "sample_composition": "composition",
    "composition_counts": "composition",
    "simplex_weights": "composition",
    "read_trials": "results",
    "read_held_out_fields": "results",
    "best_trials": "results",
    "read_examples": "examples",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
