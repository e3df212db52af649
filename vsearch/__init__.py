"""vsearch: which training data and which model make a virtual-staining model generalise to cell types and
phenotypes it has never seen. The packages hold the pieces (``data``, ``models``, ``train``, ``evaluate``,
``search``, ``report``); these are the entry points."""

from vsearch.lazy import lazy_exports

_EXPORTS = {
    "connect": "cluster",
    "TrainConfig": "config",
    "open_dataset": "data.dataset",
    "SynthSpec": "data.synth",
    "synthesize": "data.synth",
    "evaluate_datasets": "evaluate.runner",
    "SearchSpace": "search.space",
    "run_search": "search.tuner",
    "write_report": "report.page",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
