"""The leak guard: a bright-field plane that is one of the field's stains would hand the model its own target."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

LEAK_CORRELATION = 0.99
# r is estimated on a regular grid of at most about this many pixels: its standard error is then below 1e-3 near
# r = 0.99, and a 2048×2048 field costs a sixteenth of the memory
CORRELATION_PIXELS = 2**18


def leaked_planes(
    bf: np.ndarray, stains: Mapping[str, np.ndarray], threshold: float = LEAK_CORRELATION
) -> list[tuple[int, str, float]]:
    """``(plane, stain, r)`` for each bright-field plane of ``bf [Z,H,W]`` that equals a stain (r is then exactly 1)
    or whose Pearson correlation with it has magnitude above ``threshold`` (an inverted or rescaled copy leaks as
    much as a copy)."""
    names = list(stains)
    if not names:
        return []
    step = max(1, int(np.sqrt(bf.shape[1] * bf.shape[2] / CORRELATION_PIXELS)))
    grid = np.s_[::step, ::step]
    planes = bf[(slice(None), *grid)].reshape(bf.shape[0], -1).astype(np.float32)
    targets = np.stack([stains[name][grid].reshape(-1) for name in names]).astype(np.float32)
    r = _standardised(planes) @ _standardised(targets).T
    leaks = []
    for z in range(planes.shape[0]):
        for s, name in enumerate(names):
            if np.array_equal(bf[z], stains[name]):
                leaks.append((z, name, 1.0))
            elif abs(r[z, s]) > threshold:
                leaks.append((z, name, float(r[z, s])))
    return leaks


def _standardised(rows: np.ndarray) -> np.ndarray:
    """Each row centred and scaled to unit length, so a matrix product gives Pearson r; flat rows give NaN."""
    centred = rows - rows.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(centred, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return centred / np.where(norms > 0, norms, np.nan)
