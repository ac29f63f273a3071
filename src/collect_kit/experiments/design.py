"""Sizing a champion/challenger test per segment (statsmodels.stats.power).

Payer rate (a proportion): Cohen's h = 2 asin(sqrt(p1)) - 2 asin(sqrt(p0)) with the
normal-approximation power of two independent samples (``NormalIndPower``). Collected
amount per customer: standardized effect d = MDE / sd with the t-test power
(``TTestIndPower``). Two-sided tests at ``alpha``; the challenger/champion size ratio comes
from the arm weights. The champion is the first arm; each challenger is sized against it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from statsmodels.stats.power import NormalIndPower, TTestIndPower

from ..errors import InvalidParameterError


@dataclass(frozen=True)
class ArmWeights:
    """Arm -> weight (normalised to 1); the first arm is the champion."""

    weights: Mapping[str, float]

    @property
    def champion(self) -> str:
        return next(iter(self.weights))

    def share(self, arm: str) -> float:
        return self.weights[arm] / float(sum(self.weights.values()))


def _h(p1: float, p0: float) -> float:
    return 2 * math.asin(math.sqrt(p1)) - 2 * math.asin(math.sqrt(p0))


def _p_from_h(h: float, p0: float) -> float:
    angle = (h + 2 * math.asin(math.sqrt(p0))) / 2
    return min(1.0, math.sin(min(angle, math.pi / 2)) ** 2)


def design(
    baseline: pd.DataFrame,
    weights: Mapping[str, float] | Mapping[str, Mapping[str, float]],
    mde_payer_rate: float = 0.03,
    mde_amount: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
) -> pd.DataFrame:
    """Per segment and challenger: sample size for the target MDE and the MDE achievable.

    ``baseline``: per segment ``segment``, ``customers`` available, ``payer_rate`` (the
    champion's expected payer rate, a fraction) and optionally ``amount_sd`` (standard
    deviation of collected amount per customer, currency). ``mde_payer_rate``: absolute lift
    in payer rate to detect (0.03 = 3 points); ``mde_amount``: lift in collected per customer
    (currency). ``weights``: arm -> weight, or segment -> {arm: weight}; a challenger at
    weight 0 in a segment is not tested there (no row). Returns one row per segment x
    challenger with ``needed_customers`` (segment total at these weights; NaN when it
    cannot be sized), ``mde_payer_rate_achievable`` and, with amounts, the same for
    money (numbers only: :func:`collect_kit.reports.text.design_sentence` words a row).
    """
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise InvalidParameterError(
            f"alpha and power must be fractions in (0, 1), got {alpha}, {power}"
        )
    nested = all(isinstance(v, Mapping) for v in weights.values())
    for w in weights.values() if nested else [weights]:
        if len(w) < 2:
            raise InvalidParameterError(
                f"weights: an experiment needs a champion and at least one challenger, got {list(w)}"
            )
    rows = []
    for b in baseline.itertuples(index=False):
        w = weights.get(b.segment) if nested else weights
        if w is None:
            raise InvalidParameterError(f"weights: none for segment {b.segment!r}")
        arms = ArmWeights(w)
        for challenger in list(w)[1:]:
            share_c, share_ch = arms.share(arms.champion), arms.share(challenger)
            if share_c <= 0 or share_ch <= 0:
                continue  # an arm designed at weight 0 here is not tested in this segment
            ratio = share_ch / share_c  # nobs2 / nobs1
            p0 = float(b.payer_rate)
            row = {"segment": b.segment, "challenger": challenger, "customers": int(b.customers),
                   "payer_rate": p0, "mde_payer_rate": mde_payer_rate, "power": power,
                   "champion_share": share_c, "challenger_share": share_ch}  # fmt: skip
            if 0 < p0 < 1 and p0 + mde_payer_rate < 1:
                n1 = _solve(NormalIndPower(), effect_size=abs(_h(p0 + mde_payer_rate, p0)),
                            alpha=alpha, power=power, ratio=ratio)  # fmt: skip
                row["needed_customers"] = _customers(n1, share_c)
            else:
                row["needed_customers"] = np.nan
            n1_have = b.customers * share_c
            if n1_have >= 2 and n1_have * ratio >= 2 and 0 < p0 < 1:
                h = _solve(NormalIndPower(), nobs1=n1_have, alpha=alpha, power=power, ratio=ratio)
                row["mde_payer_rate_achievable"] = _p_from_h(h, p0) - p0 if h == h else np.nan
            else:
                row["mde_payer_rate_achievable"] = np.nan
            sd = getattr(b, "amount_sd", None)
            if mde_amount is not None and sd is not None and sd > 0:
                d = mde_amount / sd
                n1 = _solve(TTestIndPower(), effect_size=d, alpha=alpha, power=power, ratio=ratio)
                if n1 != n1:  # an effect so large the t solver fails: the normal closed form
                    q = _z(1 - alpha / 2) + _z(power)
                    n1 = max((q / d) ** 2 * (1 + 1 / ratio), 2.0)
                row["needed_customers_amount"] = _customers(n1, share_c)
                if n1_have >= 2:
                    d = _solve(
                        TTestIndPower(), nobs1=n1_have, alpha=alpha, power=power, ratio=ratio
                    )
                    row["mde_amount_achievable"] = d * sd
            rows.append(row)
    return pd.DataFrame(rows)


def _z(p: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(p))


def _solve(analysis, **kw) -> float:
    """statsmodels' ``solve_power`` as a float; NaN when it does not converge."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            value = float(np.squeeze(analysis.solve_power(**kw)))
        except (ValueError, ZeroDivisionError, FloatingPointError):
            return float("nan")
    return value if np.isfinite(value) and value > 0 else float("nan")


def _customers(champion_size: float, champion_share: float) -> float:
    """Customers of the segment (all arms) for a champion arm of ``champion_size``."""
    if champion_size != champion_size:
        return float("nan")
    return float(math.ceil(champion_size / champion_share))
