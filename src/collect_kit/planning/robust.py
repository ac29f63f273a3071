"""How much the plan depends on effects measured with error.

Each draw replaces every effect by one from its sampling distribution (normal with the
readout's or the stated standard error; effects drawn independently, a simplification for
two challengers of one test, which share the champion's error), seeded. Per draw the plan is
re-solved under the same limits and rules (draws batched into block-diagonal programs): a segment's choice (the treatment that takes
most of its customers) "is the best" in that draw when the re-solved plan makes the same
choice. The chosen plan's value under each draw gives its distribution. The robust plan
maximises the conditional value at risk (CVaR) of the plan's value over the draws, the mean
of its worst ``alpha`` share (Rockafellar & Uryasev 2000), as one scenario linear program:

    maximise eta - 1 / (alpha D) sum_d u_d
    subject to u_d >= eta - V_d(x), u_d >= 0, and the plan's own constraints,

where ``V_d(x) = sum (effect_d - cost) x``. Both are judged on the same draws (in sample).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

from .problem import Problem, rows
from .solve import Solution, _check, _integer_rows, best, fixed, today


@dataclass
class Robustness:
    """What the draws say (module docstring).

    ``selection``: per segment the chosen treatment and the share of draws in which it is
    still the best; ``choices``: per segment x treatment the share of draws that choose it;
    ``values``: the chosen plan's value per draw (currency per month); ``summary``: per
    plan (``chosen``, ``robust``, ``today``) the mean, 5 % and 95 % quantiles and CVaR of
    its value over the draws and the share of draws in which it brings less than today's; ``robust``: the plan maximising the CVaR.
    """

    draws: int
    seed: int
    alpha: float
    selection: pd.DataFrame
    choices: pd.DataFrame
    values: np.ndarray
    summary: pd.DataFrame
    robust: Solution


def draw_effects(p: Problem, draws: int, seed: int) -> np.ndarray:
    """Draws x candidate pairs of effects (currency per customer), reproducible by seed."""
    s, t = p.candidates()
    rng = np.random.default_rng(seed)
    return p.effect[s, t] + rng.standard_normal((draws, len(s))) * p.se[s, t]


def choice(p: Problem, x: np.ndarray) -> np.ndarray:
    """Per segment with customers, the treatment index that takes most of its customers
    (``x``: customers per candidate pair, or draws x pairs)."""
    s, t = p.candidates()
    x = np.atleast_2d(x)
    segs, first = np.unique(s, return_index=True)
    out = np.empty((x.shape[0], len(segs)), np.int64)
    for j, (a, b) in enumerate(zip(first, list(first[1:]) + [len(s)], strict=True)):
        out[:, j] = t[a + np.argmax(x[:, a:b], axis=1)]
    return out


def cvar(values: np.ndarray, alpha: float) -> float:
    """The mean of the worst ``alpha`` share of ``values`` (the fractional draw weighted)."""
    v = np.sort(np.asarray(values, float))
    k = alpha * len(v)
    whole = int(np.floor(k))
    total = v[:whole].sum() + (k - whole) * (v[whole] if whole < len(v) else 0.0)
    return float(total / k)


def robustness(
    p: Problem, plan: Solution, draws: int = 1000, seed: int = 20261203, alpha: float = 0.1
) -> Robustness:
    """Re-solve ``p`` over ``draws`` draws of its effects (module docstring)."""
    E = draw_effects(p, draws, seed)
    s, t = p.candidates()
    r = rows(p)
    net = E - p.cost[t]
    chosen = choice(p, plan.x)[0]
    picks = choice(p, resolve(p, r, net))
    segs = np.unique(s)
    names = np.asarray(p.treatments, object)
    selection = pd.DataFrame({
        "segment": np.asarray(p.segments, object)[segs],
        "treatment": names[chosen],
        "probability_best": (picks == chosen).mean(axis=0),
    })  # fmt: skip
    choices = pd.DataFrame(
        [(p.segments[i], p.treatments[j], float((picks[:, c] == j).mean()))
         for c, i in enumerate(segs) for j in np.unique(t[s == i])],
        columns=["segment", "treatment", "probability"],
    )  # fmt: skip
    robust = fixed(p, _cvar_plan(p, net, alpha))
    now = today(p)
    values = net @ plan.x
    base = net @ now.x
    summary = pd.DataFrame(
        [_summary(name, net @ sol.x, base, alpha) for name, sol in
         (("chosen", plan), ("robust", robust), ("today", now))]
    )  # fmt: skip
    return Robustness(draws, seed, alpha, selection, choices, values, summary, robust)


#: decision variables per batched linear program (draws solved together, see :func:`resolve`)
BATCH_VARIABLES = 4000


def resolve(p: Problem, r, net: np.ndarray) -> np.ndarray:
    """The best plan (customers per candidate pair) for each row of ``net`` (draws x pairs).

    Without integer rules the draws are independent linear programs over the same
    constraints, so several are solved as one block-diagonal program (about
    :data:`BATCH_VARIABLES` variables each): the same optima, without a solver call per
    draw. With integer rules each draw is its own ``milp``."""
    D, K = net.shape
    if p.integer or K == 0:
        return np.vstack([best(p, r, net[d]) for d in range(D)])
    size = max(1, BATCH_VARIABLES // K)
    out = np.empty((D, K))
    bounds = [(0.0, n) for n in p.customers[p.candidates()[0]]]
    for start in range(0, D, size):
        rows_ = net[start : start + size]
        b = len(rows_)
        eye = sparse.identity(b, format="csr")
        res = linprog(
            -rows_.ravel(),
            A_ub=sparse.kron(eye, r.A_ub, format="csr") if r.A_ub.shape[0] else None,
            b_ub=np.tile(r.b_ub, b) if r.A_ub.shape[0] else None,
            A_eq=sparse.kron(eye, r.A_eq, format="csr"), b_eq=np.tile(r.b_eq, b),
            bounds=bounds * b, method="highs",
        )  # fmt: skip
        _check(res)
        out[start : start + b] = res.x.reshape(b, K)
    return out


def _summary(plan: str, values: np.ndarray, today_values: np.ndarray, alpha: float) -> dict:
    """A plan's value over the draws; ``below_today``: the share of draws in which it
    brings less than today's plan."""
    return {
        "plan": plan,
        "mean": float(values.mean()),
        "p05": float(np.quantile(values, 0.05)),
        "p95": float(np.quantile(values, 0.95)),
        "cvar": cvar(values, alpha),
        "below_today": float((values < today_values - 1e-6).mean()),
    }


def _cvar_plan(p: Problem, net: np.ndarray, alpha: float) -> np.ndarray:
    """Customers per candidate pair of the plan maximising CVaR_alpha over the draws."""
    s, _ = p.candidates()
    D, K = net.shape
    r = rows(p)
    scen = sparse.hstack([
        sparse.csr_array(-net), sparse.csr_array(np.ones((D, 1))), -sparse.identity(D),
    ]).tocsr()  # fmt: skip
    c = np.concatenate([np.zeros(K), [-1.0], np.full(D, 1.0 / (alpha * D))])
    if p.integer:
        cons = _integer_rows(p, r, extra=1 + D)  # on [x, y, eta, u]
        if r.A_ub.shape[0]:
            cons.append(LinearConstraint(
                sparse.hstack([r.A_ub, sparse.csr_array((len(r.b_ub), K + 1 + D))]),
                -np.inf, r.b_ub,
            ))  # fmt: skip
        cons.append(LinearConstraint(
            sparse.hstack([scen[:, :K], sparse.csr_array((D, K)), scen[:, K:]]), -np.inf, 0.0
        ))  # fmt: skip
        res = milp(
            np.concatenate([c[:K], np.zeros(K), c[K:]]),
            integrality=np.concatenate([np.zeros(K), np.ones(K), np.zeros(1 + D)]),
            bounds=Bounds(
                np.concatenate([np.zeros(2 * K), [-np.inf], np.zeros(D)]),
                np.concatenate([p.customers[s], np.ones(K), np.full(1 + D, np.inf)]),
            ),
            constraints=cons,
        )
        _check(res)
        return res.x[:K]
    pad = lambda A: sparse.hstack([A, sparse.csr_array((A.shape[0], 1 + D))])  # noqa: E731
    A_ub = sparse.vstack([pad(r.A_ub), scen]) if r.A_ub.shape[0] else scen
    b_ub = np.concatenate([r.b_ub, np.zeros(D)])
    bounds = [(0.0, n) for n in p.customers[s]] + [(None, None)] + [(0.0, None)] * D
    res = linprog(c, A_ub=A_ub, b_ub=b_ub, A_eq=pad(r.A_eq), b_eq=r.b_eq, bounds=bounds,
                  method="highs")  # fmt: skip
    _check(res)
    return res.x[:K]
