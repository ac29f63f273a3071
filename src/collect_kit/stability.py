"""Population stability index (PSI) between two distributions over the same categories.

Shared by segmentation (segment mix between months) and risk (score bands between
snapshots).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

#: Population stability index readings (Lewis 1994): below 0.1 stable, 0.1-0.25 some
#: shift, above 0.25 major shift.
PSI_THRESHOLDS = (0.1, 0.25)
#: Added to every segment's count before shares are taken, so an empty segment gives a
#: finite PSI (additive smoothing).
PSI_SMOOTHING = 0.5


def psi_reading(psi: float) -> str:
    """stable (< 0.1), some shift (0.1-0.25) or major shift (> 0.25)."""
    if math.isnan(psi):
        return "undefined"
    low, high = PSI_THRESHOLDS
    return "stable" if psi < low else "some shift" if psi <= high else "major shift"


def population_stability(before: pd.Series, after: pd.Series) -> pd.DataFrame:
    """PSI terms per category from two count series (index = category).

    PSI = sum over categories of (a - e) * ln(a / e), with e and a the shares before and
    after, each count increased by :data:`PSI_SMOOTHING` so empty categories stay finite.
    """
    cats = list(dict.fromkeys([*before.index, *after.index]))
    b = before.reindex(cats, fill_value=0).astype(float)
    a = after.reindex(cats, fill_value=0).astype(float)
    k = len(cats)
    e_share = (b + PSI_SMOOTHING) / (b.sum() + PSI_SMOOTHING * k)
    a_share = (a + PSI_SMOOTHING) / (a.sum() + PSI_SMOOTHING * k)
    return pd.DataFrame(
        {
            "category": cats,
            "customers_before": b.astype(int).to_numpy(),
            "customers_after": a.astype(int).to_numpy(),
            "share_before": (b / b.sum() if b.sum() else b * np.nan).to_numpy(),
            "share_after": (a / a.sum() if a.sum() else a * np.nan).to_numpy(),
            "psi": ((a_share - e_share) * np.log(a_share / e_share)).to_numpy(),
        }
    )
