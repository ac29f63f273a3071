"""A strategy plan as numbers: segments, candidate treatments, effects, costs, limits, rules.

:class:`Problem` holds everything the optimiser reads, as arrays (segments x treatments);
:func:`collect_kit.planning.run.build` fills it from a plan config and the portfolio, tests
build it by hand. :func:`rows` turns it into the linear program's constraint rows, each
named so that a shadow price or a shortfall can be said in words.

The decision variable is the number of customers of segment *s* given treatment *t*
(``x[s, t] >= 0``, only for candidates: a treatment with no effect for a segment is not a
candidate there; the champion always is, with effect 0). Every customer gets exactly one
treatment: ``sum_t x[s, t] = customers[s]``. The plan's value is the expected net recovery
per month: ``sum (effect[s, t] - cost[t]) * x[s, t]`` (currency), where ``effect`` is the
change in cash collected per customer against the champion and ``cost`` the actions'
cost per customer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import sparse


@dataclass(frozen=True)
class Limit:
    """A capacity for the month: ``name`` (``agent_hours``, ``budget:<channel>``,
    ``actions:<channel>``, ``total_cost``), ``unit`` (``hour``, ``currency``, ``action``),
    ``limit`` and ``per_customer``: what one customer on each treatment uses (T,)."""

    name: str
    unit: str
    limit: float
    per_customer: np.ndarray


@dataclass(frozen=True)
class Problem:
    """The inputs of one plan (module docstring); arrays are segments x treatments.

    ``effect``: change in cash collected per customer per month against the champion
    (currency; NaN where the treatment is not a candidate); ``se``: its standard error;
    ``assumed``: stated by the user rather than read out; ``cost``: the actions' cost per
    customer (T,); ``max_share``: the largest share of the segment a treatment may take;
    ``keep_champion``: segments that stay on the champion (S,); ``min_share`` and
    ``max_treatments`` make the plan an integer program (see :class:`~.config.Rules`).
    ``actions`` (T x channels) and ``discount_granted`` (S x T, currency per customer) only
    describe the plan.
    """

    segments: tuple[str, ...]
    treatments: tuple[str, ...]
    champion: str
    customers: np.ndarray
    effect: np.ndarray
    se: np.ndarray
    cost: np.ndarray
    limits: tuple[Limit, ...] = ()
    assumed: np.ndarray | None = None
    max_share: np.ndarray | None = None
    keep_champion: np.ndarray | None = None
    min_share: float | None = None
    max_treatments: int | None = None
    channels: tuple[str, ...] = ()
    actions: np.ndarray | None = None
    discount_granted: np.ndarray | None = None
    minimum_treatment: str | None = None

    def __post_init__(self) -> None:
        S, T = len(self.segments), len(self.treatments)
        defaults = {
            "assumed": np.zeros((S, T), bool),
            "max_share": np.ones((S, T)),
            "keep_champion": np.zeros(S, bool),
            "actions": np.zeros((T, len(self.channels))),
            "discount_granted": np.zeros((S, T)),
        }
        for name, value in defaults.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        for name in ("customers", "effect", "se", "cost"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), float))
        if self.effect.shape != (S, T) or self.se.shape != (S, T):
            raise ValueError(f"effect and se must be segments x treatments ({S} x {T})")
        effect = self.effect.copy()
        effect[:, self.treatments.index(self.champion)] = 0.0  # the champion: always, 0
        object.__setattr__(self, "effect", effect)

    @property
    def champion_index(self) -> int:
        return self.treatments.index(self.champion)

    @property
    def integer(self) -> bool:
        """The rules need integer choices (solved with ``milp``)."""
        return self.min_share is not None or self.max_treatments is not None

    def candidates(self) -> tuple[np.ndarray, np.ndarray]:
        """(segment index, treatment index) of every decision variable: the candidate
        pairs of segments that have customers, segment by segment."""
        ok = ~np.isnan(self.effect) & (self.customers[:, None] > 0)
        s, t = np.nonzero(ok)
        return s, t

    def net(self, effect: np.ndarray | None = None) -> np.ndarray:
        """Net value per customer of each candidate pair (effect - cost), currency; with
        ``effect`` (draws x pairs or pairs) instead of the point estimates."""
        s, t = self.candidates()
        e = self.effect[s, t] if effect is None else effect
        return e - self.cost[t]


@dataclass
class Rows:
    """The linear program's constraints. Inequalities ``A_ub x <= b_ub`` with, per row,
    ``kind`` (``capacity``, ``share``, ``champion``), ``name`` (what it limits, for
    words), ``unit`` and the elastic weight (1 / limit); equalities ``A_eq x = b_eq`` (one
    customer, one treatment, per segment)."""

    A_ub: sparse.csr_array
    b_ub: np.ndarray
    kind: list[str]
    name: list[str]
    unit: list[str]
    weight: np.ndarray
    A_eq: sparse.csr_array
    b_eq: np.ndarray
    where: list[tuple[int, int]] = field(default_factory=list)  # (segment, treatment) of a row


def rows(p: Problem, limits: bool = True) -> Rows:
    """The constraint rows of ``p`` over its candidate pairs (``limits=False``: without the
    capacities, for "best per segment ignoring capacity")."""
    s, t = p.candidates()
    k = np.arange(len(s))
    n_seg = p.customers[s]
    A, b, kind, name, unit, weight, where = [], [], [], [], [], [], []

    def add(coef: np.ndarray, limit: float, kd: str, nm: str, un: str, w: float, wh=(-1, -1)):
        A.append(coef)
        b.append(limit)
        kind.append(kd)
        name.append(nm)
        unit.append(un)
        weight.append(w)
        where.append(wh)

    if limits:
        for lim in p.limits:
            add(lim.per_customer[t], lim.limit, "capacity", lim.name, lim.unit, 1.0 / lim.limit)
    for j in k[p.max_share[s, t] < 1]:
        coef = np.zeros(len(k))
        coef[j] = 1.0
        cap = p.max_share[s[j], t[j]] * n_seg[j]
        add(coef, cap, "share", "max_share", "customer", 1.0 / n_seg[j], (s[j], t[j]))
    for i in np.nonzero(p.keep_champion)[0]:
        coef = ((s == i) & (t != p.champion_index)).astype(float)
        if coef.any():
            add(coef, 0.0, "champion", "keep_champion", "customer", 1.0 / p.customers[i], (i, -1))
    segs = np.unique(s)
    A_eq = sparse.csr_array(
        (np.ones(len(k)), (np.searchsorted(segs, s), k)), shape=(len(segs), len(k))
    )
    A_ub = sparse.csr_array(np.vstack(A)) if A else sparse.csr_array((0, len(k)))
    return Rows(
        A_ub, np.asarray(b, float), kind, name, unit, np.asarray(weight, float), A_eq,
        p.customers[segs], where,
    )  # fmt: skip
