"""Calibration by simulation: coverage of 95 % intervals and false-positive rates (seeded).

Setting (stated, realistic, not eased): champion n = 400, challenger n = 100 per simulated
experiment (an 80/20 split of a 500-customer segment, the size of the smallest segments of
the demo sample); payer rate 30 %; payers' amounts lognormal(mean log 11, sd 1.2), so the
money outcome is mostly zeros and heavily skewed. 2 000 simulations per check.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from collect_kit.experiments import stats as st

SIMS, N0, N1, P0, MU, SIGMA = 2_000, 400, 100, 0.30, 11.0, 1.2
BAND = stats.binom.ppf([0.0005, 0.9995], SIMS, 0.95) / SIMS  # 99.9 % binomial band around 95 %


def simulate(lift: float, seed: int):
    rng = np.random.default_rng(seed)
    a = rng.random((SIMS, N0)) < P0
    b = rng.random((SIMS, N1)) < P0 + lift
    ya = np.where(a, rng.lognormal(MU, SIGMA, (SIMS, N0)), 0.0)
    yb = np.where(b, rng.lognormal(MU, SIGMA, (SIMS, N1)), 0.0)
    true_money = lift * np.exp(MU + SIGMA**2 / 2)
    # every simulated experiment at once: the statistics are vectorised over comparisons
    r = st.proportion_test(st.Moments(N0, a.sum(1), a.sum(1)), st.Moments(N1, b.sum(1), b.sum(1)))
    cover_p = ((r.ci_low <= lift) & (lift <= r.ci_high)).mean()
    m = st.mean_test(
        st.Moments(N0, ya.sum(1), (ya**2).sum(1)), st.Moments(N1, yb.sum(1), (yb**2).sum(1))
    )
    cover_m = ((m.ci_low <= true_money) & (true_money <= m.ci_high)).mean()
    return cover_p, cover_m


@pytest.mark.slow
def test_aa_coverage_and_false_positive_rate():
    payer, money = simulate(0.0, seed=1)
    assert BAND[0] <= payer <= BAND[1]  # score interval: 95 % coverage, 5 % false positives
    # Welch on skewed, zero-inflated money at n = 100 under-covers: measured 92.5 %
    # (92.85 % with this seed; documented in experiments/readout.py); asserted +/- 2 points
    assert abs(money - 0.925) <= 0.02


@pytest.mark.slow
def test_ab_coverage_of_a_known_effect():
    payer, money = simulate(0.05, seed=2)
    assert BAND[0] <= payer <= BAND[1]
    assert abs(money - 0.918) <= 0.02  # measured 91.8 %, documented
