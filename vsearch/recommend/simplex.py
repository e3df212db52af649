"""Points on the simplex of training-mix weights: a lattice, random draws, and the candidates a recommendation
is chosen from."""

from __future__ import annotations

import itertools
from math import comb

import numpy as np

MAX_LATTICE_POINTS = 20_000


def simplex_lattice(dimensions: int, step: float) -> np.ndarray:
    """Every weight vector whose entries are multiples of ``step`` and sum to 1, ``[n, dimensions]``."""
    parts = round(1 / step)
    if not np.isclose(parts * step, 1):
        raise ValueError(f"step {step} does not divide 1")
    points = [
        np.diff([0, *cuts, parts]) / parts
        for cuts in itertools.combinations_with_replacement(range(parts + 1), dimensions - 1)
    ]
    return np.asarray(points, float).reshape(-1, dimensions)


def lattice_size(dimensions: int, step: float) -> int:
    return comb(round(1 / step) + dimensions - 1, dimensions - 1)


def simplex_candidates(dimensions: int, *, draws: int = 4000, seed: int = 0) -> np.ndarray:
    """Flat-Dirichlet draws, the finest lattice (steps of 0.05 at most) that stays under 20,000 points, and the
    vertices."""
    rng = np.random.default_rng(seed)
    parts = [rng.dirichlet(np.ones(dimensions), draws), np.eye(dimensions)]
    for step in (0.05, 0.1, 0.2, 0.25, 0.5):
        if lattice_size(dimensions, step) <= MAX_LATTICE_POINTS:
            parts.append(simplex_lattice(dimensions, step))
            break
    return np.unique(np.round(np.concatenate(parts), 6), axis=0)
