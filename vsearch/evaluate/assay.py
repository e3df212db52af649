"""Assay level: does the predicted stain still separate the controls, and would each well get the same call?"""

from __future__ import annotations

import numpy as np
import pandas as pd

MAD_TO_SD = 1.4826  # scales the median absolute deviation to a standard deviation under normality


def robust_sd(values: np.ndarray) -> float:
    """Standard deviation estimated from the median absolute deviation, ``1.4826 · MAD``: one outlying well
    cannot inflate it."""
    values = np.asarray(values, np.float64)
    return float(MAD_TO_SD * np.median(np.abs(values - np.median(values))))


def robust_z_prime(positive: np.ndarray, negative: np.ndarray) -> float:
    """Robust Z′-factor of an assay's positive and negative control wells.

    Parameters
    ----------
    positive, negative : array of float
        One value per control well (e.g. a well-median feature); neither may be empty.

    Returns
    -------
    float
        ``1 − 3 (σ̂₊ + σ̂₋) / |m₊ − m₋|``, with m the median and σ̂ the ``robust_sd`` of each control. 1 is a
        perfect assay, > 0.5 excellent, ≤ 0 controls that overlap; NaN when the medians coincide.

    References
    ----------
    .. [1] Zhang J.-H., Chung T. D. Y., Oldenburg K. R., "A simple statistical parameter for use in evaluation
       and validation of high throughput screening assays", J. Biomol. Screen. 4, 67–73 (1999).
    .. [2] Birmingham A. et al., "Statistical methods for analysis of high-throughput RNA interference
       screens", Nature Methods 6, 569–575 (2009): the robust form with median and MAD.
    """
    positive, negative = np.asarray(positive, np.float64), np.asarray(negative, np.float64)
    if len(positive) == 0 or len(negative) == 0:
        raise ValueError(f"robust Z′ needs both controls; got {len(positive)} positive, {len(negative)} negative")
    gap = abs(np.median(positive) - np.median(negative))
    if gap == 0:
        return float("nan")
    return 1.0 - 3.0 * (robust_sd(positive) + robust_sd(negative)) / gap


def call_hits(values: np.ndarray, *, positive: np.ndarray, negative: np.ndarray) -> np.ndarray:
    """Hit calls of treated wells against the plate's controls.

    Parameters
    ----------
    values : array of float
        One value per treated well.
    positive, negative : array of float
        The control wells' values.

    Returns
    -------
    ndarray of bool
        True for wells on the positive control's side of the midpoint between the two control medians.
    """
    pos, neg = float(np.median(positive)), float(np.median(negative))
    midpoint = (pos + neg) / 2
    values = np.asarray(values, np.float64)
    return values > midpoint if pos > neg else values < midpoint


def assay_table(wells: pd.DataFrame, features: list[str], group: str = "cell_type") -> pd.DataFrame:
    """Per ``group`` (controls are compared within a cell type) and feature: robust Z′ of the real and the
    predicted feature, and the fraction of treated wells whose hit call agrees. ``wells`` has one row per
    (source, well) with columns ``source`` (real | pred), ``is_control``, ``group`` and the features; each
    source's calls are calibrated on its own controls, as a screener would. A treated well that the prediction
    cannot call (it has no value there, or no control to calibrate on) counts as disagreeing."""
    rows = []
    for key, block in wells.groupby(group, sort=True):
        real, pred = block[block.source == "real"], block[block.source == "pred"]
        for feature in features:
            if feature not in block:
                continue
            row: dict[str, object] = {group: key, "feature": feature}
            calls = {}
            for name, source in (("real", real), ("pred", pred)):
                pos = source.loc[source.is_control == "pos", feature].dropna().to_numpy()
                neg = source.loc[source.is_control == "neg", feature].dropna().to_numpy()
                if len(pos) == 0 or len(neg) == 0:
                    row[f"z_prime_{name}"] = np.nan
                    continue
                row[f"z_prime_{name}"] = robust_z_prime(pos, neg)
                treated = source[source.is_control == "none"].set_index(["plate", "well"])[feature].dropna()
                calls[name] = pd.Series(call_hits(treated.to_numpy(), positive=pos, negative=neg), treated.index)
            if "real" in calls:
                real_calls = calls["real"]
                pred_calls = calls.get("pred", pd.Series(dtype=bool)).reindex(real_calls.index)
                agree = (real_calls == pred_calls).to_numpy()  # a well the prediction cannot call disagrees
                row["call_agreement"] = float(agree.mean()) if len(agree) else np.nan
                row["wells_called"] = len(agree)
            rows.append(row)
    columns = [group, "feature", "z_prime_real", "z_prime_pred", "call_agreement", "wells_called"]
    return pd.DataFrame(rows, columns=columns)
