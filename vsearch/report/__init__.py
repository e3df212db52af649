"""The HTML report of a search, and the tables behind each of its figures."""

from vsearch.lazy import lazy_exports

_EXPORTS = {
    "write_report": "page",
    "report_html": "page",
    "generalisation_matrix": "matrix",
    "pareto_front": "pareto",
    "matrix_panels": "plots",
    "pareto_points": "plots",
    "composition_points": "plots",
    "example_panels": "examples",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
