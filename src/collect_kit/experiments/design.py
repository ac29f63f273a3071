"""Sizing a champion/challenger test per segment (statsmodels.stats.power).

Payer rate (a proportion): Cohen's h = 2 asin(sqrt(p1)) - 2 asin(sqrt(p0)) with the
normal-approximation power of two independent samples (``NormalIndPower``). Collected
amount per customer: standardized effect d = MDE / sd with the t-test power
(``TTestIndPower``). Two-sided tests at ``alpha``; the challenger/champion size ratio comes
from the arm weights. The champion is the first arm; each challenger is sized against it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from statsmodels.stats.power import NormalIndPower, TTestIndPower

from ..errors import InvalidParameterError
from ..reports.format import Formatter


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
    weights: Mapping[str, float],
    mde_payer_rate: float = 0.03,
    mde_amount: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    language: str = "en",
) -> pd.DataFrame:
    """Per segment and challenger: sample size for the target MDE and the MDE achievable.

    ``baseline``: per segment ``segment``, ``customers`` available, ``payer_rate`` (the
    champion's expected payer rate, a fraction) and optionally ``amount_sd`` (standard
    deviation of collected amount per customer, currency). ``mde_payer_rate``: absolute lift
    in payer rate to detect (0.03 = 3 points); ``mde_amount``: lift in collected per customer
    (currency). Returns one row per segment x challenger with ``needed_customers`` (segment
    total at these weights), ``mde_payer_rate_achievable`` and, with amounts, the same for
    money, plus a plain-language ``sentence``.
    """
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise InvalidParameterError(
            f"alpha and power must be fractions in (0, 1), got {alpha}, {power}"
        )
    arms = ArmWeights(weights)
    if len(weights) < 2:
        raise InvalidParameterError(
            f"weights: an experiment needs a champion and at least one challenger, got {list(weights)}"
        )
    fmt = Formatter(language)
    rows = []
    for b in baseline.itertuples(index=False):
        for challenger in list(weights)[1:]:
            share_c, share_ch = arms.share(arms.champion), arms.share(challenger)
            ratio = share_ch / share_c  # nobs2 / nobs1
            p0 = float(b.payer_rate)
            row = {"segment": b.segment, "challenger": challenger, "customers": int(b.customers),
                   "payer_rate": p0, "mde_payer_rate": mde_payer_rate}  # fmt: skip
            if 0 < p0 < 1 and p0 + mde_payer_rate < 1:
                n1 = NormalIndPower().solve_power(
                    effect_size=abs(_h(p0 + mde_payer_rate, p0)),
                    alpha=alpha,
                    power=power,
                    ratio=ratio,
                )
                row["needed_customers"] = int(math.ceil(float(np.squeeze(n1)) / share_c))
            else:
                row["needed_customers"] = np.nan
            n1_have = b.customers * share_c
            if n1_have >= 2 and n1_have * ratio >= 2 and 0 < p0 < 1:
                h = NormalIndPower().solve_power(
                    nobs1=n1_have, alpha=alpha, power=power, ratio=ratio
                )
                row["mde_payer_rate_achievable"] = _p_from_h(float(np.squeeze(h)), p0) - p0
            else:
                row["mde_payer_rate_achievable"] = np.nan
            sd = getattr(b, "amount_sd", None)
            if mde_amount is not None and sd is not None and sd > 0:
                n1 = TTestIndPower().solve_power(
                    effect_size=mde_amount / sd, alpha=alpha, power=power, ratio=ratio
                )
                row["needed_customers_amount"] = int(math.ceil(float(np.squeeze(n1)) / share_c))
                if n1_have >= 2:
                    d = TTestIndPower().solve_power(
                        nobs1=n1_have, alpha=alpha, power=power, ratio=ratio
                    )
                    row["mde_amount_achievable"] = float(np.squeeze(d)) * sd
            row["sentence"] = _sentence(row, arms, challenger, power, fmt)
            rows.append(row)
    return pd.DataFrame(rows)


def _sentence(row: dict, arms: ArmWeights, challenger: str, power: float, fmt: Formatter) -> str:
    split = (
        f"{fmt.number(arms.share(arms.champion) * 100)}/{fmt.number(arms.share(challenger) * 100)}"
    )
    have = fmt.number(row["customers"])
    mde = row["mde_payer_rate_achievable"]
    need = row["needed_customers"]
    target = fmt.number(row["mde_payer_rate"] * 100, 1)
    if fmt.language == "es":
        a = (f"{row['segment']}: con {have} clientes y un reparto {split} se detecta un alza de la tasa de pagadores de "
             f"{fmt.number(mde * 100, 1)} puntos (desde {fmt.percent(row['payer_rate'])}) con potencia {fmt.percent(power, 0)}"
             if mde == mde else f"{row['segment']}: muy pocos clientes ({have}) para probar algo")  # fmt: skip
        b = (
            f"; detectar {target} puntos requiere {fmt.number(need)} clientes."
            if need == need
            else "."
        )
        return a + b
    a = (f"{row['segment']}: with {have} customers split {split}, a payer-rate lift of {fmt.number(mde * 100, 1)} points "
         f"(from {fmt.percent(row['payer_rate'])}) is detectable with {fmt.percent(power, 0)} power"
         if mde == mde else f"{row['segment']}: too few customers ({have}) to test anything")  # fmt: skip
    b = f"; detecting {target} points needs {fmt.number(need)} customers." if need == need else "."
    return a + b
