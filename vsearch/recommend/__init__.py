"""Designing training-data mixes: a surrogate of a search's or study's objective over the mix weights, the mix
it recommends, whether that beats the best mix tried, and the next mixes worth trying."""

from vsearch.lazy import lazy_exports

_EXPORTS = {
    "MixScores": "mixes",
    "Recommendation": "mixes",
    "recommend_mix": "mixes",
    "read_mix_scores": "sources",
    "fit_surrogate": "surrogate",
    "simplex_lattice": "simplex",
    "continuation_space": "continuation",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
