"""Weekly looks: fixed-horizon p-values inflate false positives, confidence sequences do not.

Simulation (seeded, vectorised): 4 000 experiments x 12 weekly looks, 5 000 customers per
arm at the last look (5000 / 12 arriving per arm per week). Two metrics: the payer rate
(30 %) and money per customer, lognormal(11, 1.2) for the 40 % who pay (60 % zeros). A/A:
the share of experiments where *any* look is significant. A/B at the design's MDE (80 %
power at the last look with 5 000 per arm): the power of each procedure by the horizon.
The confidence sequence is tuned to the planned 10 000 customers (both arms).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from collect_kit.experiments import stats as st

SIMS, LOOKS, N_LAST, ALPHA = 4_000, 12, 5_000, 0.05
P0, PAY, MU, SIGMA = 0.30, 0.40, 11.0, 1.2
UPPER = stats.binom.ppf(0.999, SIMS, ALPHA) / SIMS  # binomial 99.9 % upper bound around 5 %
BATCH = np.diff(np.round(np.linspace(0, N_LAST, LOOKS + 1)).astype(int))


def _money_moments(rng, mean_shift: float):
    """Cumulative n, sum, sum of squares per experiment x look of lognormal money with 60 %
    zeros; ``mean_shift`` multiplies the amounts (the A/B effect)."""
    sums = np.zeros((SIMS, LOOKS))
    squares = np.zeros((SIMS, LOOKS))
    for k, size in enumerate(BATCH):
        paid = rng.random((SIMS, size)) < PAY
        y = np.where(paid, rng.lognormal(MU, SIGMA, (SIMS, size)), 0.0) * mean_shift
        sums[:, k], squares[:, k] = y.sum(1), (y * y).sum(1)
    n = np.cumsum(BATCH)[None, :].repeat(SIMS, 0)
    return st.Moments(n.ravel(), np.cumsum(sums, 1).ravel(), np.cumsum(squares, 1).ravel())


def _payer_moments(rng, rate: float):
    payers = np.cumsum(rng.binomial(BATCH[None, :].repeat(SIMS, 0), rate), 1)
    n = np.cumsum(BATCH)[None, :].repeat(SIMS, 0)
    return st.Moments(n.ravel(), payers.ravel(), payers.ravel())


def _rejections(m0, m1, kind):
    """(any fixed-horizon look significant, fixed at the last look, any sequential look)."""
    test = st.proportion_test if kind == "payer" else st.mean_test
    r = test(m0, m1, ALPHA)
    fixed = (r.p_value < ALPHA).reshape(SIMS, LOOKS)
    _, _, p = st.confidence_sequence(r.estimate, r.se, m0.n + m1.n, ALPHA, 2 * N_LAST)
    seq = (p < ALPHA).reshape(SIMS, LOOKS)
    return fixed.any(1).mean(), fixed[:, -1].mean(), seq.any(1).mean()


def simulate() -> dict:
    """Rejection rates per (aa | ab, payer | money): (any fixed look, last fixed look, any
    sequential look)."""
    rng = np.random.default_rng(2026)
    sd_money = math.sqrt(
        PAY * math.exp(2 * MU + 2 * SIGMA**2) - (PAY * math.exp(MU + SIGMA**2 / 2)) ** 2
    )
    z = stats.norm.ppf(1 - ALPHA / 2) + stats.norm.ppf(0.8)
    mde_payer = z * math.sqrt(2 * P0 * (1 - P0) / N_LAST)
    mde_money = z * sd_money * math.sqrt(2 / N_LAST)
    mean_money = PAY * math.exp(MU + SIGMA**2 / 2)
    out = {}
    for name, effect in (("aa", 0.0), ("ab", 1.0)):
        out[name, "payer"] = _rejections(
            _payer_moments(rng, P0), _payer_moments(rng, P0 + effect * mde_payer), "payer"
        )
        shift = 1 + effect * mde_money / mean_money
        out[name, "money"] = _rejections(
            _money_moments(rng, 1.0), _money_moments(rng, shift), "money"
        )
    return out


@pytest.fixture(scope="module")
def simulated():
    return simulate()


@pytest.mark.slow
def test_weekly_looks_inflate_fixed_horizon_false_positives_but_not_sequential(simulated):
    for metric in ("payer", "money"):
        any_fixed, last_fixed, any_seq = simulated["aa", metric]
        # measured with this seed: any of the 12 looks significant at the fixed horizon's
        # p < 0.05: payer 0.222 / money 0.210; the last look alone 0.055 / 0.051; any look
        # of the confidence sequence 0.012 / 0.007
        assert any_fixed > 0.10, (metric, any_fixed)
        assert any_seq <= UPPER, (metric, any_seq, UPPER)
        assert last_fixed <= UPPER


@pytest.mark.slow
def test_power_at_the_designs_mde(simulated):
    for metric in ("payer", "money"):
        _, last_fixed, any_seq = simulated["ab", metric]
        # measured: fixed horizon at the last look 0.798 / 0.740 (designed 0.80; the money
        # effect multiplies the amounts, so it also widens their spread); sequential, any
        # look by the horizon, 0.474 / 0.412: the price of looking every week
        assert abs(last_fixed - 0.8) < 0.08, (metric, last_fixed)
        assert 0.3 < any_seq < last_fixed, (metric, any_seq)
