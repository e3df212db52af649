"""The next mixes of a recommendation as a search space that `vsearch run` continues the search with: the
original space, its composition replaced by the proposed mixes and its model settings fixed at the best
trial's, run once each on a grid (at two seeds each when the recommendation had no repeated mix to measure
the seed noise from)."""

from __future__ import annotations

from typing import Any

from vsearch.recommend.mixes import Recommendation
from vsearch.search.space import MODEL_KEYS

OPTIM_LIST_KEYS = ("batch_size", "loss")


def continuation_space(space: dict[str, Any], recommendation: Recommendation, results: str) -> dict[str, Any]:
    """``space`` (a ``SearchSpace`` dumped as JSON) with ``recommendation.next_mixes`` as its only mixes."""
    if not recommendation.next_mixes:
        raise ValueError("the recommendation proposes no next mix")
    settings = recommendation.settings
    continued = {key: (dict(value) if isinstance(value, dict) else value) for key, value in space.items()}
    continued["composition"] |= {
        "presets": [],
        "sample_weights": False,
        "mixes": {f"next-{i + 1}": mix.weights for i, mix in enumerate(recommendation.next_mixes)},
    }
    continued["model"] |= {k: [settings[k]] for k in MODEL_KEYS if k in settings}
    continued["optim"] |= {k: [settings[k]] for k in OPTIM_LIST_KEYS if k in settings}
    continued["optim"] |= {k: settings[k] for k in ("lr", "epochs") if k in settings}
    continued |= {
        "sampler": "grid",
        "scheduler": {"type": "none"},
        "num_trials": len(recommendation.next_mixes),
        "seeds_per_config": space.get("seeds_per_config", 1) if recommendation.repeated_mixes else 2,
        "storage": None,
        "results": results,
    }
    return continued
