"""The optimiser: the plan that maximises expected net recovery under the limits and rules.

A linear program over customers per (segment, treatment), solved by HiGHS through
``scipy.optimize.linprog(method="highs")``. The shadow price of a capacity is
``-res.ineqlin.marginals`` of the maximisation written as a minimisation: what one more
unit of it (an agent hour, a unit of currency, a letter) adds to the month's expected net
recovery, in currency per unit; 0 for a capacity with room to spare.

Rules that need integer choices (``min_share``: a treatment used in a segment takes at
least that share of it; ``max_treatments``: at most that many treatments per segment) add
one binary per candidate pair and are solved by ``scipy.optimize.milp``; their shadow
prices come from the linear program with those choices fixed, so they hold "at the chosen
plan" (:attr:`Solution.integer`).

When no plan meets every capacity and rule, an elastic re-solve adds a non-negative slack
to each capacity and rule, minimises the slacks weighted by 1 / limit, and
:class:`~collect_kit.errors.InfeasiblePlanError` names those that had to give, in their
units.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

from ..errors import InfeasiblePlanError
from .problem import Problem, Rows, rows

#: z of a two-sided 95 % interval
Z95 = 1.959963984540054
#: a capacity counts as binding when its slack is below this share of the limit
BINDING = 1e-7


@dataclass
class Solution:
    """One plan: customers per candidate pair and what it brings.

    ``x``: customers per candidate pair as the solver returned them (fractions possible);
    ``value``: expected net recovery per month at ``x`` (currency); ``allocation``: per
    segment x treatment the whole customers (largest remainder within the segment), their
    expected money against the champion with a 95 % interval, action cost, discount
    granted, agent hours and actions by channel; ``limits``: per capacity the limit, use,
    slack and shadow price (currency per unit; NaN when the plan ignored capacities);
    ``integer``: integer rules applied, shadow prices hold at the chosen plan.
    """

    problem: Problem
    x: np.ndarray
    value: float
    allocation: pd.DataFrame
    limits: pd.DataFrame
    integer: bool = False

    @property
    def moved(self) -> int:
        """Customers given a treatment other than the champion."""
        a = self.allocation
        return int(a.loc[a.treatment != self.problem.champion, "customers"].sum())

    def gain_over(self, today: Solution) -> tuple[float, float, float]:
        """(net gain over ``today`` per month, its 95 % interval low and high), currency:
        the extra cash minus the extra cost of actions. The effects' errors are taken as
        independent across segments and treatments (module docstring of ``robust``)."""
        a = self.allocation
        value = self.value - today.value
        se = float(np.sqrt(((a.se * a.customers) ** 2).sum()))
        return value, value - Z95 * se, value + Z95 * se

    def segments(self, today: Solution) -> pd.DataFrame:
        """Per segment (allocation order): customers, extra cash (``money``) with its 95 %
        interval, the cost of actions and ``extra_cost`` over ``today``'s plan."""
        a = self.allocation.assign(money_var=lambda d: (d.se * d.customers) ** 2)
        seg = a.groupby("segment", sort=False).agg(
            customers=("customers", "sum"), money=("money", "sum"),
            money_var=("money_var", "sum"), cost=("cost", "sum"),
        )  # fmt: skip
        se = np.sqrt(seg.pop("money_var"))
        seg["money_low"], seg["money_high"] = seg.money - Z95 * se, seg.money + Z95 * se
        now = today.allocation.groupby("segment", sort=False).cost.sum()
        seg["extra_cost"] = seg.cost - now.reindex(seg.index)
        return seg


def solve(p: Problem, limits: bool = True) -> Solution:
    """The plan with the highest expected net recovery (module docstring).

    ``limits=False`` ignores the capacities (keeping the rules): the best treatment per
    segment when money for actions and agent time is not the question. Raises
    :class:`~collect_kit.errors.InfeasiblePlanError` naming the capacities and rules that
    cannot all hold.
    """
    r = rows(p, limits)
    c = -p.net()
    if p.integer:
        x, duals = _integer(p, r, c)
    else:
        res = _lp(r, c, _bounds(p))
        try:
            _check(res)
        except _NoPlan:
            raise _infeasible(p, r) from None
        x, duals = res.x, -res.ineqlin.marginals
    return _solution(p, r, x, duals if limits else None)


def best(p: Problem, r: Rows, net: np.ndarray) -> np.ndarray:
    """Customers per candidate pair of the best plan for a given net value per customer
    of each pair (``net``, currency): the re-solve of a robustness draw. ``r``: ``rows(p)``."""
    if p.integer:
        s, _ = p.candidates()
        K = len(s)
        cons = _integer_rows(p, r)
        if r.A_ub.shape[0]:
            cons.append(LinearConstraint(
                sparse.hstack([r.A_ub, sparse.csr_array((len(r.b_ub), K))]), -np.inf, r.b_ub
            ))  # fmt: skip
        res = milp(
            np.concatenate([-net, np.zeros(K)]),
            integrality=np.concatenate([np.zeros(K), np.ones(K)]),
            bounds=Bounds(np.zeros(2 * K), np.concatenate([p.customers[s], np.ones(K)])),
            constraints=cons,
        )
        _check(res)
        return res.x[:K]
    res = _lp(r, -net, _bounds(p))
    _check(res)
    return res.x


def fixed(p: Problem, x: np.ndarray) -> Solution:
    """A given plan (customers per candidate pair) described like a solved one, shadow
    prices NaN: today's plan, or a robust plan."""
    return _solution(p, rows(p), np.asarray(x, float), None)


def today(p: Problem) -> Solution:
    """Today's plan: every customer on the champion."""
    s, t = p.candidates()
    return fixed(p, np.where(t == p.champion_index, p.customers[s], 0.0))


def _bounds(p: Problem) -> list[tuple[float, float]]:
    s, _ = p.candidates()
    return [(0.0, n) for n in p.customers[s]]


def _lp(r: Rows, c: np.ndarray, bounds):
    return linprog(
        c, A_ub=r.A_ub if r.A_ub.shape[0] else None, b_ub=r.b_ub if len(r.b_ub) else None,
        A_eq=r.A_eq, b_eq=r.b_eq, bounds=bounds, method="highs",
    )  # fmt: skip


class _NoPlan(Exception):
    """The program is infeasible (scipy's status 2 for linprog and milp)."""


def _check(res) -> None:
    if res.status == 2:
        raise _NoPlan
    if res.status != 0:
        raise RuntimeError(f"the plan's linear program did not solve: {res.message}")


def _integer_rows(p: Problem, r: Rows, extra: int = 0):
    """Constraints of the integer program over ``[x, y, extra...]``: ``r``'s rows on
    ``x``, ``x <= customers * y``, ``x >= min_share * customers * y`` and at most
    ``max_treatments`` ``y`` per segment."""
    s, _ = p.candidates()
    K = len(s)
    n = p.customers[s]
    eye = sparse.identity(K, format="csr")
    blocks = [
        LinearConstraint(sparse.hstack([r.A_eq, sparse.csr_array((r.A_eq.shape[0], K + extra))]),
                         r.b_eq, r.b_eq),
        LinearConstraint(sparse.hstack([eye, -sparse.diags(n), sparse.csr_array((K, extra))]),
                         -np.inf, 0.0),
    ]  # fmt: skip
    if p.min_share is not None:
        blocks.append(
            LinearConstraint(
                sparse.hstack([-eye, sparse.diags(p.min_share * n), sparse.csr_array((K, extra))]),
                -np.inf,
                0.0,
            )  # fmt: skip
        )
    if p.max_treatments is not None:
        segs = np.unique(s)
        per = sparse.csr_array((np.ones(K), (np.searchsorted(segs, s), np.arange(K))),
                               shape=(len(segs), K))  # fmt: skip
        blocks.append(
            LinearConstraint(
                sparse.hstack(
                    [sparse.csr_array((len(segs), K)), per, sparse.csr_array((len(segs), extra))]
                ),
                -np.inf,
                float(p.max_treatments),
            )  # fmt: skip
        )
    return blocks


def _integer(p: Problem, r: Rows, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Solve with binaries, then the LP with the chosen pairs fixed open or closed."""
    s, _ = p.candidates()
    try:
        x = best(p, r, -c)
    except _NoPlan:
        raise _infeasible(p, r) from None
    n = p.customers[s]
    low = (p.min_share or 0.0) * n
    open_ = x > 1e-9
    bounds = [(lo, hi) if o else (0.0, 0.0) for o, lo, hi in zip(open_, low, n, strict=True)]
    fixed_lp = _lp(r, c, bounds)
    _check(fixed_lp)
    return fixed_lp.x, -fixed_lp.ineqlin.marginals


def _infeasible(p: Problem, r: Rows) -> InfeasiblePlanError:
    """The elastic re-solve: which capacities and rules give, and by how much."""
    s, _ = p.candidates()
    K, m = len(s), len(r.b_ub)
    A = sparse.hstack([r.A_ub, -sparse.identity(m, format="csr")]).tocsr()
    c = np.concatenate([np.zeros(K), r.weight])
    if p.integer:
        cons = _integer_rows(p, r, extra=m)  # on [x, y, slack]
        cons.append(LinearConstraint(
            sparse.hstack([r.A_ub, sparse.csr_array((m, K)), -sparse.identity(m)]), -np.inf, r.b_ub
        ))  # fmt: skip
        res = milp(
            np.concatenate([np.zeros(2 * K), r.weight]),
            integrality=np.concatenate([np.zeros(K), np.ones(K), np.zeros(m)]),
            bounds=Bounds(np.zeros(2 * K + m),
                          np.concatenate([p.customers[s], np.ones(K), np.full(m, np.inf)])),
            constraints=cons,
        )  # fmt: skip
        slack = res.x[2 * K :] if res.x is not None else np.full(m, np.nan)
    else:
        res = linprog(
            c, A_ub=A, b_ub=r.b_ub, A_eq=sparse.hstack([r.A_eq, sparse.csr_array((r.A_eq.shape[0], m))]),
            b_eq=r.b_eq, bounds=_bounds(p) + [(0, None)] * m, method="highs",
        )  # fmt: skip
        slack = res.x[K:] if res.status == 0 else np.full(m, np.nan)
    if not np.isfinite(slack).all():
        return InfeasiblePlanError(
            "no plan meets the rules even with every capacity relaxed: check that every "
            "segment has a candidate treatment that meets rules.minimum_treatment"
        )
    found = []
    for i in np.nonzero(slack > 1e-6 * np.maximum(1.0, np.abs(r.b_ub)))[0]:
        found.append({
            "kind": r.kind[i], "name": r.name[i], "unit": r.unit[i], "limit": float(r.b_ub[i]),
            "needed": float(r.b_ub[i] + slack[i]), "short_by": float(slack[i]),
            "segment": p.segments[r.where[i][0]] if r.where[i][0] >= 0 else None,
            "treatment": p.treatments[r.where[i][1]] if r.where[i][1] >= 0 else None,
        })  # fmt: skip
    lead = f"every customer gets at least '{p.minimum_treatment}': " if p.minimum_treatment else ""
    lines = [shortfall_words(f) for f in found]
    return InfeasiblePlanError(
        f"no plan meets every capacity and rule; {lead}" + "; ".join(lines), found
    )


def shortfall_words(f: dict) -> str:
    """One shortfall in words, in its units (the error message's English)."""
    num = lambda v: f"{v:,.0f}".replace(",", " ")  # noqa: E731
    if f["kind"] == "capacity":
        what = capacity_words(f["name"])
        return (
            f"{what}: the plan needs {num(f['needed'])}, capacity {num(f['limit'])}: "
            f"short by {num(f['short_by'])}"
        )
    if f["kind"] == "share":
        return (
            f"rules.max_share: '{f['treatment']}' in '{f['segment']}' may take "
            f"{num(f['limit'])} customers, the plan needs {num(f['needed'])}"
        )
    return (
        f"rules.keep_champion: '{f['segment']}' keeps the champion only if "
        f"{num(f['short_by'])} of its customers move to another treatment"
    )


def capacity_words(name: str) -> str:
    """A capacity's code in English words (``budget:sms`` -> ``sms budget``)."""
    kind, _, channel = name.partition(":")
    return {
        "agent_hours": "agent hours",
        "total_cost": "total cost",
        "budget": f"{channel} budget",
        "actions": f"{channel} actions",
    }[kind]


def counts(p: Problem, x: np.ndarray) -> np.ndarray:
    """Whole customers per candidate pair: each segment's fractional allocation rounded by
    largest remainder, so a segment's counts add up to its customers."""
    s, _ = p.candidates()
    floor = np.floor(x + 1e-9)
    out = floor.copy()
    rest = x - floor
    for i in np.unique(s):
        idx = np.nonzero(s == i)[0]
        left = int(round(p.customers[i] - floor[idx].sum()))
        if left > 0:
            order = idx[np.argsort(-rest[idx], kind="stable")]
            out[order[:left]] += 1
    return out.astype(np.int64)


def _solution(p: Problem, r: Rows, x: np.ndarray, duals: np.ndarray | None) -> Solution:
    s, t = p.candidates()
    n = counts(p, x)
    effect, se = p.effect[s, t], p.se[s, t]
    alloc = pd.DataFrame({
        "segment": np.asarray(p.segments, object)[s],
        "treatment": np.asarray(p.treatments, object)[t],
        "customers": n,
        "share": n / p.customers[s],
        "effect": effect,
        "se": se,
        "assumed": p.assumed[s, t],
        "money": effect * n,
        "money_low": (effect - Z95 * se) * n,
        "money_high": (effect + Z95 * se) * n,
        "cost": p.cost[t] * n,
        "discount_granted": p.discount_granted[s, t] * n,
    })  # fmt: skip
    alloc["value"] = alloc.money - alloc.cost
    by_name = {lim.name: lim for lim in p.limits}
    if "agent_hours" in by_name:
        alloc["agent_hours"] = by_name["agent_hours"].per_customer[t] * n
    for j, ch in enumerate(p.channels):
        alloc[f"actions_{ch}"] = p.actions[t, j] * n
    used = np.array([lim.per_customer[t] @ x for lim in p.limits])
    lim_frame = pd.DataFrame({
        "name": [lim.name for lim in p.limits],
        "unit": [lim.unit for lim in p.limits],
        "limit": [lim.limit for lim in p.limits],
        "used": used,
    })  # fmt: skip
    lim_frame["slack"] = lim_frame.limit - lim_frame.used
    lim_frame["binding"] = lim_frame.slack <= BINDING * lim_frame.limit
    cap_rows = [i for i, k in enumerate(r.kind) if k == "capacity"]
    if duals is not None and len(cap_rows) == len(p.limits):
        lim_frame["shadow_price"] = np.maximum(duals[cap_rows], 0.0)
    else:
        lim_frame["shadow_price"] = np.nan
    value = float(p.net() @ x)
    return Solution(p, x, value, alloc, lim_frame, p.integer and duals is not None)
