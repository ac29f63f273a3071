"""Out-of-time evidence for a segmentation: how well its segments separate payers at a
later month end than the one it was learned on.

Every figure comes from aggregates per segment (customers and payers): the payer-rate
spread between segments, the Gini of the segments' training payer rates used as a score on
the later month's customers, and the PSI of the segment shares between the two months.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..stability import population_stability, psi_reading


def gini(score: np.ndarray, customers: np.ndarray, payers: np.ndarray) -> float:
    """Gini (2 AUC - 1) of a score given per group of customers: ``score`` of each group,
    its ``customers`` and ``payers``. Ties (one score for several customers) count half,
    as in the Mann-Whitney AUC; NaN without both payers and non-payers."""
    frame = pd.DataFrame({"s": score, "pos": payers, "neg": np.asarray(customers) - payers})
    g = frame.groupby("s", sort=True)[["pos", "neg"]].sum()
    pos, neg = g.pos.to_numpy(float), g.neg.to_numpy(float)
    P, N = pos.sum(), neg.sum()
    if P == 0 or N == 0:
        return float("nan")
    below = np.concatenate([[0.0], np.cumsum(neg)[:-1]])  # negatives with a lower score
    auc = (pos * below).sum() / (P * N) + 0.5 * (pos * neg).sum() / (P * N)
    return 2 * auc - 1


def evaluate(train: pd.DataFrame, later: pd.DataFrame) -> dict:
    """The evidence of one segmentation from its per-segment ``customers`` and ``payers``
    at the training month end (``train``) and at the later one (``later``), both indexed
    by segment.

    Returns ``segments`` (per segment: customers, payer rate and share at both dates),
    ``spread`` (highest minus lowest later payer rate among segments of 30 or more
    customers), ``gini`` (the training rates as the score of the later customers), ``psi``
    and its reading.
    """
    seg = train.add_suffix("_train").join(later.add_suffix("_later"), how="outer").fillna(0.0)
    seg = seg.reindex(list(dict.fromkeys([*train.index, *later.index])))  # cascade order
    with np.errstate(invalid="ignore", divide="ignore"):
        seg["rate_train"] = seg.payers_train / seg.customers_train
        seg["rate_later"] = seg.payers_later / seg.customers_later
    seg["share_train"] = seg.customers_train / seg.customers_train.sum()
    seg["share_later"] = seg.customers_later / seg.customers_later.sum()
    big = seg[seg.customers_later >= 30].rate_later.dropna()
    spread = float(big.max() - big.min()) if len(big) > 1 else float("nan")
    known = seg[seg.customers_later > 0]
    score = known.rate_train.fillna(known.payers_later.sum() / known.customers_later.sum())
    g = gini(score.to_numpy(), known.customers_later.to_numpy(), known.payers_later.to_numpy())
    terms = population_stability(seg.customers_train, seg.customers_later)
    psi = float(terms.psi.sum())
    return {"segments": seg, "spread": spread, "gini": g, "psi": psi,
            "reading": psi_reading(psi) if not math.isnan(psi) else "undefined"}  # fmt: skip
