"""Uplift segments from a past champion/challenger test: who answers to the challenger.

Method (a two-model "T-learner", Künzel et al. 2019): the assigned customers are split in
two halves (seeded, in customer order). On the first half, one gradient-boosted classifier
(scikit-learn's ``HistGradientBoostingClassifier``, missing values handled natively)
learns P(pay) under the champion and one under the challenger; their difference is each
customer's predicted uplift. A shallow regression tree grown on those predictions gives
the segments (:mod:`collect_kit.discovery.tree` writes them as a cascade, one segment per
leaf; ``min_gap`` > 0 merges leaves whose predicted uplifts differ by less, off by default:
the predictions are shrunk and noisy, and merging by them joined leaves across the very
boundary that matters in tests). Every segment's uplift
is then *measured* on the second half, which grew nothing: payer rate of the challenger
minus the champion's, with a Wald 95 % interval. The Qini curve on that half orders the
segments by predicted uplift and accumulates ``Y_t - Y_c x N_t / N_c`` (incremental
payers); the Qini coefficient is its area above the straight line of a random order, as a
share of the customers (Radcliffe 2007).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import segmentation as sg
from ..segmentation.rules import from_dict
from .tree import Proposal, _names, cascade, design_matrix, merge, paths, simplify

Z95 = 1.959963984540054


@dataclass
class UpliftProposal:
    """Uplift segments: ``proposal`` (paths' ``rate`` = mean predicted uplift on the growing
    half), ``held_out`` (per segment on the other half: customers and payers by arm, the
    measured uplift and its 95 % interval), ``qini`` (the curve's points) and
    ``qini_coefficient``."""

    proposal: Proposal
    held_out: pd.DataFrame
    qini: pd.DataFrame
    qini_coefficient: float
    #: the rows of the frame in the held-out half (they grew nothing)
    held_mask: np.ndarray


def propose_uplift(
    frame: pd.DataFrame,
    features: list[str],
    treated: str,
    label: str,
    max_depth: int = 2,
    min_leaf_share: float = 0.05,
    min_gap: float = 0.0,
    seed: int = 0,
) -> UpliftProposal:
    """Uplift segments of ``frame`` (one row per assigned customer, in a fixed order):
    ``treated`` is 1 for the challenger and 0 for the champion, ``label`` 1 for a payer
    within the outcome window (module docstring)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.tree import DecisionTreeRegressor

    X, kinds = design_matrix(frame, features)
    y = frame[label].to_numpy(float)
    t = frame[treated].to_numpy(bool)
    grow = np.random.default_rng(seed).random(len(frame)) < 0.5
    A = X.to_numpy()[grow]
    models = {}
    for arm in (False, True):
        rows = t[grow] == arm
        if len(np.unique(y[grow][rows])) < 2:
            raise ValueError("each arm needs payers and non-payers on the growing half")
        m = HistGradientBoostingClassifier(max_iter=150, learning_rate=0.05, max_leaf_nodes=15,
                                           min_samples_leaf=100, random_state=seed)  # fmt: skip
        models[arm] = m.fit(A[rows], y[grow][rows])
    predicted = models[True].predict_proba(A)[:, 1] - models[False].predict_proba(A)[:, 1]
    leaf = max(1, math.ceil(min_leaf_share * grow.sum()))
    tree = DecisionTreeRegressor(max_depth=max_depth, min_samples_leaf=leaf, random_state=seed)
    tree.fit(A, predicted)
    Xa = X[grow]
    leaves, moved = paths(tree, Xa, kinds, predicted)
    index = merge(np.array([p.customers for p in leaves]), np.array([p.payers for p in leaves]),
                  alpha=None, min_gap=min_gap)  # fmt: skip
    groups = [simplify([leaves[i] for i in g]) for g in index]
    groups.sort(key=lambda g: -sum(q.payers for q in g) / max(sum(q.customers for q in g), 1))
    proposal = Proposal(groups, tree, list(X.columns), moved, _names(groups))
    held = frame[~grow]
    rules = from_dict(cascade(proposal, "uplift"))  # to assign the held-out half
    segment = sg.assign(rules, held[features]).segment.to_numpy()
    measured = measure(
        segment, held[treated].to_numpy(bool), held[label].to_numpy(float), rules.names
    )
    measured["predicted"] = [sum(q.payers for q in g) / sum(q.customers for q in g) for g in groups]
    curve, coefficient = qini(measured)
    return UpliftProposal(proposal, measured, curve, coefficient, ~grow)


def measure(
    segment: np.ndarray, treated: np.ndarray, paid: np.ndarray, order: list[str]
) -> pd.DataFrame:
    """Per segment (in ``order``): customers and payers by arm, the uplift (challenger minus
    champion payer rate, a fraction) and its Wald 95 % interval."""
    f = pd.DataFrame({"segment": segment, "t": treated, "y": paid})
    g = f.groupby(["segment", "t"]).y.agg(["size", "sum"]).unstack("t", fill_value=0)
    out = pd.DataFrame({
        "n_champion": g[("size", False)], "payers_champion": g[("sum", False)],
        "n_challenger": g[("size", True)], "payers_challenger": g[("sum", True)],
    }).reindex([s for s in order if s in g.index]).fillna(0)  # fmt: skip
    with np.errstate(invalid="ignore", divide="ignore"):
        p0 = out.payers_champion / out.n_champion
        p1 = out.payers_challenger / out.n_challenger
        se = np.sqrt(p0 * (1 - p0) / out.n_champion + p1 * (1 - p1) / out.n_challenger)
    out["uplift"] = p1 - p0
    out["ci_low"], out["ci_high"] = out.uplift - Z95 * se, out.uplift + Z95 * se
    out["se"] = se
    return out


def qini(measured: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    """The Qini curve over segments in predicted-uplift order (``measured``'s order) and its
    coefficient: the area between it and the random-order line, per customer."""
    m = measured
    nt, yt = m.n_challenger.cumsum(), m.payers_challenger.cumsum()
    nc, yc = m.n_champion.cumsum(), m.payers_champion.cumsum()
    with np.errstate(invalid="ignore", divide="ignore"):
        q = (yt - yc * nt / nc).to_numpy(float)
    n = (m.n_challenger + m.n_champion).cumsum().to_numpy(float)
    share = np.concatenate([[0.0], n / n[-1]])
    gain = np.concatenate([[0.0], np.nan_to_num(q)])
    curve = pd.DataFrame({"share": share, "incremental_payers": gain,
                          "segment": ["", *m.index]})  # fmt: skip
    area = np.trapezoid(gain, share)
    random_area = gain[-1] / 2
    return curve, float((area - random_area) / n[-1])


def notes(u: UpliftProposal) -> list[str]:
    """Each uplift segment's description: its measured uplift with the interval and the
    predicted one."""
    out = []
    for row in u.held_out.itertuples():
        out.append(
            f"uplift {row.uplift:+.1%} (95 % CI {row.ci_low:+.1%} to {row.ci_high:+.1%}) "
            f"measured on the held-out half ({int(row.n_challenger)} challenger, "
            f"{int(row.n_champion)} champion customers); predicted {row.predicted:+.1%}"
        )
    return out
