"""Train × test studies: every training set × model × seed tested on every condition's test wells, the
generalisation matrix they give, and the paper's questions answered from it."""

from vsearch.lazy import lazy_exports

_EXPORTS = {
    "StudySpec": "spec",
    "TrainingSets": "spec",
    "StudyModel": "spec",
    "plan_study": "runner",
    "run_study": "runner",
    "read_matrix": "results",
    "cell_summary": "matrix",
    "generalisation_gap": "matrix",
    "shift_summary": "matrix",
    "shift_of": "matrix",
    "answer_questions": "answers",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
