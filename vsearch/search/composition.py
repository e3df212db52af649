"""Training-data compositions: weights on the simplex over ``cell_type/phenotype`` conditions, from the search's
presets or sampled freely, checked once, turned into field counts under a budget and into the fields a training
run draws. Training (``DataConfig``), the search (``ResolvedSpace``) and the Ray Data stream all go through here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from vsearch.data.manifest import conditions_of

TOLERANCE = 1e-6  # how far from 1 the weights may sum
SAMPLED = "sampled"  # the search's choice of free weights, beside the presets
MIX = "mix"  # a named mix of the space, chosen as ``mix:<name>``
NON_TOXIC = "non_toxic"


def check_composition(composition: Mapping[str, float]) -> None:
    """Weights are non-negative, keyed ``cell_type/phenotype``, and sum to 1 (± 1e-6)."""
    if not composition:
        raise ValueError("composition is empty: give at least one 'cell_type/phenotype: weight'")
    for condition, weight in composition.items():
        if condition.count("/") != 1:
            raise ValueError(f"composition key {condition!r} is not 'cell_type/phenotype'")
        if weight < 0:
            raise ValueError(f"composition weight of {condition!r} is negative ({weight})")
    total = sum(composition.values())
    if abs(total - 1) > TOLERANCE:
        raise ValueError(f"composition weights sum to {total:.9g}, not 1 (±{TOLERANCE:g})")


def check_named_mixes(mixes: Mapping[str, Mapping[str, float]]) -> Mapping[str, Mapping[str, float]]:
    """Every named mix is a checked composition; an error names the mix."""
    for name, composition in mixes.items():
        try:
            check_composition(composition)
        except ValueError as error:
            raise ValueError(f"mix {name!r}: {error}") from None
    return mixes


def normalise(weights: Mapping[str, float]) -> dict[str, float]:
    """Weights scaled to sum to 1, keyed in sorted order."""
    total = sum(weights.values())
    return {k: v / total for k, v in sorted(weights.items())}


def preset_choices(trainable: Sequence[str], presets: Sequence[str], sample_weights: bool) -> list[str]:
    """Every preset mix as one categorical choice (``single:lung/non_toxic``, ``leave_one_type_out:breast``,
    ``all_non_toxic``, ``all``), plus ``sampled`` for free weights, so a sampler compares them directly."""
    types = sorted({k.split("/")[0] for k in trainable})
    choices: list[str] = []
    for preset in presets:
        if preset == "single":
            choices += [f"single:{k}" for k in trainable]
        elif preset == "leave_one_type_out":
            choices += [f"leave_one_type_out:{t}" for t in types] if len(types) > 1 else ["all"]
        else:
            choices.append(preset)
    if sample_weights:
        choices.append(SAMPLED)
    return list(dict.fromkeys(choices))


def preset_weights(choice: str, trainable: Sequence[str]) -> dict[str, float]:
    """The weights of a preset choice over the trainable conditions."""
    kind, _, argument = choice.partition(":")
    if kind == "single":
        return {argument: 1.0}
    if kind == "all_non_toxic":
        chosen = [k for k in trainable if k.split("/")[1] == NON_TOXIC] or list(trainable)
    elif kind == "leave_one_type_out":
        chosen = [k for k in trainable if k.split("/")[0] != argument]
    else:
        chosen = list(trainable)
    return normalise(dict.fromkeys(chosen, 1.0))


def simplex_weights(uniforms: Mapping[str, float], min_weight: float) -> dict[str, float]:
    """Weights from one uniform draw in [0, 1] per condition: E = −log U normalised is a flat Dirichlet on the
    simplex; conditions under ``min_weight`` are dropped (the largest is kept if all are) and the rest renormalised."""
    exps = {k: -math.log(max(u, 1e-12)) for k, u in uniforms.items()}
    weights = {k: v / sum(exps.values()) for k, v in exps.items()}
    kept = {k: w for k, w in weights.items() if w >= min_weight}
    return normalise(kept or {max(weights, key=weights.get): 1.0})


def composition_counts(composition: Mapping[str, float], budget: int) -> dict[str, int]:
    """Fields per condition of a checked composition: ``budget × weight`` rounded by largest remainder, so the
    counts sum to ``budget``."""
    exact = {c: w * budget for c, w in composition.items()}
    counts = {c: int(np.floor(v)) for c, v in exact.items()}
    by_remainder = sorted(exact, key=lambda c: (exact[c] - counts[c], c), reverse=True)
    for condition in by_remainder[: budget - sum(counts.values())]:
        counts[condition] += 1
    return counts


def sample_composition(train: pd.DataFrame, composition: Mapping[str, float], budget: int, seed: int) -> pd.DataFrame:
    """Draw ``budget`` training fields realising ``composition``: rows ``field_id, condition, copies``.

    Within a condition fields are drawn without replacement while they last, then cycled again, so a small
    condition is repeated evenly rather than at random."""
    conditions = conditions_of(train)
    known = sorted(set(conditions))
    unknown = [c for c in composition if c not in known]
    if unknown:
        raise ValueError(f"composition names condition {unknown[0]!r}, which has no training fields; known: {known}")
    rng = np.random.default_rng(seed)
    rows = []
    for condition, count in composition_counts(composition, budget).items():
        if count == 0:
            continue
        ids = np.sort(train.field_id[conditions == condition].to_numpy())
        order = np.concatenate([rng.permutation(ids) for _ in range(-(-count // len(ids)))])[:count]
        picked, copies = np.unique(order, return_counts=True)
        rows += [{"field_id": f, "condition": condition, "copies": int(k)} for f, k in zip(picked, copies, strict=True)]
    return pd.DataFrame(rows, columns=["field_id", "condition", "copies"])
