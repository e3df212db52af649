"""The Pareto front of points to maximise."""

from __future__ import annotations

import numpy as np


def pareto_front(values: np.ndarray) -> np.ndarray:
    """Mask of the rows of ``values`` ``[n, k]`` that no other row dominates (at least as good in every column,
    better in one), all columns maximised. Rows with a NaN are never on the front; equal rows are both on it."""
    values = np.asarray(values, dtype=float)
    finite = ~np.isnan(values).any(axis=1)
    at_least = (values[:, None, :] >= values[None, :, :]).all(axis=2)  # [i, j]: i is at least as good as j
    better = (values[:, None, :] > values[None, :, :]).any(axis=2)
    dominated = ((at_least & better) & finite[:, None]).any(axis=0)
    return finite & ~dominated
