"""Train / validation / test splits by well (``split_group``), never by field or patch."""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from vsearch.data.manifest import conditions_of

SPLITS = ("train", "val", "test")


def assign_splits(manifest: pd.DataFrame, val_fraction: float, test_fraction: float, seed: int = 0) -> pd.Series:
    """The split of every field: within each condition, its wells are shuffled (seeded) and the first
    ``test_fraction`` go to test, the next ``val_fraction`` to validation, the rest to training. Conditions
    with three or more wells keep at least one well in each split whose fraction is positive."""
    split = pd.Series("train", index=manifest.index, dtype=object)
    for condition, rows in manifest.groupby(conditions_of(manifest), sort=True):
        groups = np.array(sorted(rows.split_group.unique()))
        rng = np.random.default_rng([seed, zlib.crc32(condition.encode())])
        groups = groups[rng.permutation(len(groups))]
        n_test, n_val = _count(len(groups), test_fraction), _count(len(groups), val_fraction)
        if n_test + n_val >= len(groups):
            n_test, n_val = min(n_test, max(0, len(groups) - 1)), 0
        test, val = set(groups[:n_test]), set(groups[n_test : n_test + n_val])
        split[rows.index[rows.split_group.isin(test)]] = "test"
        split[rows.index[rows.split_group.isin(val)]] = "val"
    return split


def _count(n_groups: int, fraction: float) -> int:
    if fraction <= 0:
        return 0
    return max(1, round(fraction * n_groups)) if n_groups >= 3 else 0
