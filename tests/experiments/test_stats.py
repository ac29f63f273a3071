"""Statistics from sufficient statistics equal independent computations on raw rows.

Every function of ``experiments.stats`` takes sums, so each test draws rows, sums them and
compares with scipy / statsmodels on the rows, with a numerical computation written here,
or with a published value.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import optimize, stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportions_ztest
from statsmodels.stats.proportion import test_proportions_2indep as score_test

from collect_kit.experiments.stats import (
    Moments,
    adjust_pvalues,
    confidence_sequence,
    mean_test,
    post_stratified,
    proportion_test,
    ratio_test,
)


def mom(y, x=None, b=None):
    y = np.asarray(y, float)
    x = np.zeros_like(y) if x is None else np.asarray(x, float)
    b = np.zeros_like(y) if b is None else np.asarray(b, float)
    return Moments(len(y), y.sum(), (y * y).sum(), x.sum(), (x * x).sum(), (x * y).sum(),
                   b.sum(), (b * b).sum(), (y * b).sum(), (x * b).sum())  # fmt: skip


def counts(n, c):
    return Moments(n, c, c)


def money(rng, n, pay):
    """Mostly zeros, skewed amounts (lognormal) for payers."""
    paid = rng.random(n) < pay
    return np.where(paid, rng.lognormal(11, 1.2, n), 0.0)


# --- an independent score test: the restricted MLE by numerical optimisation -------------


def mle_restricted(c1, n1, c0, n0, d):
    """argmax over p0 of the binomial log-likelihood with p1 = p0 + d (bounded search)."""
    lo, hi = max(0.0, -d), min(1.0, 1.0 - d)

    def nll(p0):
        p1 = p0 + d
        out = 0.0
        for c, n, p in ((c1, n1, p1), (c0, n0, p0)):
            if c:
                out -= c * math.log(max(p, 1e-300))
            if n - c:
                out -= (n - c) * math.log(max(1 - p, 1e-300))
        return out

    r = optimize.minimize_scalar(nll, bounds=(lo, hi), method="bounded", options={"xatol": 1e-13})
    return r.x + d, r.x


def score_p(c1, n1, c0, n0, d, correction=True):
    p1, p0 = mle_restricted(c1, n1, c0, n0, d)
    n = n0 + n1
    var = p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0
    var *= n / (n - 1) if correction else 1.0
    diff = c1 / n1 - c0 / n0 - d
    if var <= 0:
        return 1.0 if abs(diff) < 1e-12 else 0.0
    return 2 * stats.norm.sf(abs(diff) / math.sqrt(var))


def score_interval(c1, n1, c0, n0, alpha=0.05, correction=True):
    d = c1 / n1 - c0 / n0

    def f(v):
        return score_p(c1, n1, c0, n0, v, correction) - alpha

    eps = 1e-9
    low = -1.0 if f(-1 + eps) >= 0 else optimize.brentq(f, -1 + eps, d, xtol=1e-13)
    high = 1.0 if f(1 - eps) >= 0 else optimize.brentq(f, d, 1 - eps, xtol=1e-13)
    return low, high


# --- proportions --------------------------------------------------------------------------


def test_frozen_low_risk_interval_of_the_issue():
    """Low risk of the 5 000-customer sample: champion 93 of 115, challenger 23 of 26. The
    old fallback returned [-1.0, 0.21]; the correct lower bound is about -0.11."""
    r = proportion_test(counts(115, 93), counts(26, 23))
    low, high = score_interval(23, 26, 93, 115)
    assert (r.ci_low[0], r.ci_high[0]) == pytest.approx((low, high), abs=1e-8)
    assert -0.115 < r.ci_low[0] < -0.105 and r.ci_high[0] < 0.25
    assert r.ci_low[0] <= r.estimate[0] <= r.ci_high[0]


def test_interval_sweep_of_small_and_extreme_cells():
    """Every cell with n = 1..20 per arm (0 payers and all payers included): the interval
    holds the estimate and lies in [-1, 1]; a seeded subset equals the independent
    inversion where that converges."""
    grid = np.array([(n0, c0, n1, c1) for n0 in range(1, 21) for n1 in range(1, 21)
                     for c0 in range(n0 + 1) for c1 in range(n1 + 1)], float)  # fmt: skip
    r = proportion_test(counts(grid[:, 0], grid[:, 1]), counts(grid[:, 2], grid[:, 3]))
    assert np.isfinite(r.ci_low).all() and np.isfinite(r.ci_high).all()
    assert ((r.ci_low <= r.estimate + 1e-12) & (r.estimate <= r.ci_high + 1e-12)).all()
    assert (r.ci_low >= -1).all() and (r.ci_high <= 1).all()
    assert np.isfinite(r.p_value).all()
    rng = np.random.default_rng(13)
    checked = 0
    for i in rng.choice(len(grid), 150, replace=False):
        n0, c0, n1, c1 = (int(v) for v in grid[i])
        try:
            low, high = score_interval(c1, n1, c0, n0)
        except ValueError:  # the reference's own bracket failed: not comparable
            continue
        assert (r.ci_low[i], r.ci_high[i]) == pytest.approx((low, high), abs=1e-6), (n0, c0, n1, c1)
        checked += 1
    assert checked > 100


@pytest.mark.parametrize("cells", [(120, 400, 95, 400), (30, 150, 12, 160), (5, 40, 0, 38)])
def test_score_test_equals_statsmodels_at_zero_and_the_interval_inverts_it(cells):
    c1, n1, c0, n0 = cells
    for correction in (True, False):
        r = proportion_test(counts(n0, c0), counts(n1, c1), correction=correction)
        with warnings.catch_warnings():  # statsmodels divides by a zero rate for 0 of 38
            warnings.simplefilter("ignore", RuntimeWarning)
            ref = score_test(c1, n1, c0, n0, method="score", compare="diff", correction=correction)
        assert r.p_value[0] == pytest.approx(ref.pvalue, rel=1e-10)
        assert r.statistic[0] == pytest.approx(ref.statistic, rel=1e-10)
        low, high = score_interval(c1, n1, c0, n0, correction=correction)
        assert (r.ci_low[0], r.ci_high[0]) == pytest.approx((low, high), abs=1e-8)
        assert (r.ci_low[0] > 0 or r.ci_high[0] < 0) == (r.p_value[0] < 0.05)
    # score_correction: false is the plain pooled z-test
    z, p = proportions_ztest([c1, c0], [n1, n0])
    plain = proportion_test(counts(n0, c0), counts(n1, c1), correction=False)
    assert (plain.statistic[0], plain.p_value[0]) == pytest.approx((z, p), rel=1e-10)


def test_published_miettinen_nurminen_interval():
    """7 of 34 against 1 of 34: the Miettinen-Nurminen interval (0.028, 0.34) published by
    Fagerland, Lydersen & Laake, without the N / (N - 1) factor."""
    r = proportion_test(counts(34, 1), counts(34, 7), correction=False)
    assert (round(r.ci_low[0], 3), round(r.ci_high[0], 2)) == (0.028, 0.34)


def test_statsmodels_restricted_estimate_is_off_away_from_zero():
    """Why the intervals are not statsmodels' (issue statsmodels#10269): at d != 0 its
    restricted proportions do not maximise the likelihood; ours equal the numerical MLE."""
    from collect_kit.experiments.stats import _score

    c1, n1, c0, n0, d = 2, 19, 5, 12, 0.2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sm_null = score_test(c1, n1, c0, n0, value=d, method="score", compare="diff").prop2_null
    p1, p0 = mle_restricted(c1, n1, c0, n0, d)
    assert abs(sm_null - p0) > 1e-3
    _, p = _score(*(np.array([v], float) for v in (c1, n1, c0, n0, d)), True)
    assert p[0] == pytest.approx(score_p(c1, n1, c0, n0, d), rel=1e-6)  # the optimiser's precision


def _fieller_by_search(num, den, v_num, v_den, q):
    """Fieller's set {r: (num - r den)^2 <= q^2 (v_num + r^2 v_den)} found numerically
    (independent arms), as an interval (its ends by root finding around num / den)."""
    f = lambda r: (num - r * den) ** 2 - q**2 * (v_num + r**2 * v_den)  # noqa: E731
    r0 = num / den
    lo = optimize.brentq(f, r0 - 1e3, r0)
    hi = optimize.brentq(f, r0, r0 + 1e3)
    return lo, hi


def test_relative_lift_of_proportions_se_interval_and_test():
    """Delta-method se (GrowthBook's), Fieller's interval (found numerically here), and
    the absolute test's p-value for "no lift"."""
    r = proportion_test(counts(4000, 1200), counts(1000, 330))
    p0, p1 = 0.3, 0.33
    var = p1 * (1 - p1) / (1000 * p0**2) + p1**2 * p0 * (1 - p0) / (4000 * p0**4)
    assert r.relative[0] == pytest.approx(p1 / p0 - 1)
    assert r.relative_se[0] == pytest.approx(math.sqrt(var))
    assert r.relative_p_value[0] == r.p_value[0]
    q = stats.norm.ppf(0.975)
    lo, hi = _fieller_by_search(p1, p0, p1 * (1 - p1) / 1000, p0 * (1 - p0) / 4000, q)
    assert r.relative_ci_low[0] == pytest.approx(lo - 1, rel=1e-9)
    assert r.relative_ci_high[0] == pytest.approx(hi - 1, rel=1e-9)
    # large samples: Fieller and the symmetric delta interval agree
    assert r.relative_ci_low[0] == pytest.approx(r.relative[0] - q * r.relative_se[0], abs=0.01)


def test_the_relative_interval_agrees_with_the_absolute_test():
    """A precise challenger (n 2 000, mean 42) against an imprecise champion (n 100, mean
    130, sd 500): the difference is not significant (p about 0.08), yet the symmetric delta
    interval of the lift excludes 0; Fieller's interval holds 0, as the test says."""
    m0 = Moments(100.0, 100 * 130.0, 99 * 500.0**2 + 100 * 130.0**2, 0, 0, 0, 0, 0, 0, 0)
    m1 = Moments(2000.0, 2000 * 42.0, 1999 * 60.0**2 + 2000 * 42.0**2, 0, 0, 0, 0, 0, 0, 0)
    r = mean_test(m0, m1)
    t = stats.ttest_ind_from_stats(42.0, 60.0, 2000, 130.0, 500.0, 100, equal_var=False)
    assert r.p_value[0] == pytest.approx(t.pvalue) and t.pvalue > 0.05
    q = stats.t.ppf(0.975, r.df[0])
    assert r.relative[0] + q * r.relative_se[0] < 0  # the delta interval contradicts the test
    assert r.relative_ci_low[0] < 0 < r.relative_ci_high[0]
    assert r.relative_p_value[0] == r.p_value[0]


def test_the_relative_interval_stays_within_the_possible_range():
    """3 payers of 20 against 1 of 20: the champion's rate is not distinguishable from 0 at
    this size, so the lift's interval is unbounded; no lift below -100 % exists, so it is
    reported as [-100 %, +inf)."""
    r = proportion_test(counts(20, 3), counts(20, 1))
    q = stats.norm.ppf(0.975)
    p0, v0 = 3 / 20, (3 / 20) * (17 / 20) / 20
    assert p0**2 - q**2 * v0 < 0  # the champion is that imprecise
    assert r.relative_ci_low[0] == -1.0 and r.relative_ci_high[0] == np.inf
    # a bounded case whose lower end would be below -100 % is cut there as well
    r = proportion_test(counts(200, 60), counts(30, 1))  # 1 payer: its rate could be 0
    assert r.relative_ci_low[0] == -1.0 and np.isfinite(r.relative_ci_high[0])


# --- means, CUPED, ratios -------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_welch_equals_scipy(seed):
    rng = np.random.default_rng(seed)
    a, b = money(rng, 800, 0.3), money(rng, 300, 0.35)
    r = mean_test(mom(a), mom(b))
    ref = stats.ttest_ind(b, a, equal_var=False)
    assert r.estimate[0] == pytest.approx(b.mean() - a.mean(), rel=1e-9)
    assert r.p_value[0] == pytest.approx(ref.pvalue, rel=1e-9)
    assert r.statistic[0] == pytest.approx(ref.statistic, rel=1e-9)
    assert r.df[0] == pytest.approx(ref.df, rel=1e-9)
    ci = ref.confidence_interval(0.95)
    assert (r.ci_low[0], r.ci_high[0]) == pytest.approx((ci.low, ci.high), rel=1e-9)


def test_pooling_adds_up():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=50), rng.normal(size=70)
    pooled = mom(a) + mom(b)
    assert pooled.mean_y[0] == pytest.approx(np.concatenate([a, b]).mean(), rel=1e-12)
    assert pooled.var_y[0] == pytest.approx(np.concatenate([a, b]).var(ddof=1), rel=1e-9)


def _correlated(rng, n0=700, n1=300, lift=0.03):
    x0, x1 = money(rng, n0, 0.4), money(rng, n1, 0.4)
    y0 = 0.6 * x0 + money(rng, n0, 0.3)
    y1 = 0.6 * x1 + money(rng, n1, 0.3 + lift)
    return x0, x1, y0, y1


def test_cuped_within_arm_equals_adjusted_welch_and_the_ols_arm_coefficient():
    rng = np.random.default_rng(5)
    x0, x1, y0, y1 = _correlated(rng)
    r = mean_test(mom(y0, x0), mom(y1, x1), cuped="within_arm")
    xc = np.concatenate([x0 - x0.mean(), x1 - x1.mean()])
    yc = np.concatenate([y0 - y0.mean(), y1 - y1.mean()])
    theta = (xc * yc).sum() / (xc**2).sum()
    assert r.theta[0] == pytest.approx(theta, rel=1e-9)
    x_bar = np.concatenate([x0, x1]).mean()
    adj0, adj1 = y0 - theta * (x0 - x_bar), y1 - theta * (x1 - x_bar)
    ref = stats.ttest_ind(adj1, adj0, equal_var=False)
    assert r.estimate[0] == pytest.approx(adj1.mean() - adj0.mean(), rel=1e-9)
    assert r.p_value[0] == pytest.approx(ref.pvalue, rel=1e-9)
    design = sm.add_constant(
        np.column_stack([np.r_[np.zeros(len(x0)), np.ones(len(x1))], np.r_[x0, x1]])
    )
    assert r.estimate[0] == pytest.approx(sm.OLS(np.r_[y0, y1], design).fit().params[1], rel=1e-9)
    ss = lambda v: ((v - v.mean()) ** 2).sum()  # noqa: E731
    assert r.variance_reduction[0] == pytest.approx(
        1 - (ss(adj0) + ss(adj1)) / (ss(y0) + ss(y1)), rel=1e-9
    )
    assert r.relative[0] == pytest.approx(adj1.mean() / adj0.mean() - 1, rel=1e-9)


def test_cuped_pooled_theta_recomputed_on_raw_rows():
    """GrowthBook's choice: theta over both arms together, relative lift over the
    unadjusted champion mean."""
    rng = np.random.default_rng(7)
    x0, x1, y0, y1 = _correlated(rng, lift=0.08)
    r = mean_test(mom(y0, x0), mom(y1, x1), cuped="pooled")
    x, y = np.r_[x0, x1], np.r_[y0, y1]
    theta = np.cov(x, y, ddof=1)[0, 1] / np.var(x, ddof=1)
    assert r.theta[0] == pytest.approx(theta, rel=1e-9)
    adj0, adj1 = y0 - theta * x0, y1 - theta * x1
    ref = stats.ttest_ind(adj1, adj0, equal_var=False)
    assert r.estimate[0] == pytest.approx(adj1.mean() - adj0.mean(), rel=1e-9)
    assert r.p_value[0] == pytest.approx(ref.pvalue, rel=1e-9)
    assert r.relative[0] == pytest.approx((adj1.mean() - adj0.mean()) / y0.mean(), rel=1e-9)
    within = mean_test(mom(y0, x0), mom(y1, x1), cuped="within_arm")
    assert abs(within.theta[0] - r.theta[0]) > 1e-6  # the two choices differ, visibly


def test_relative_lift_delta_method_against_the_bootstrap():
    """2 000 seeded bootstrap resamples of raw rows: the delta-method interval's ends lie
    within 3 Monte-Carlo standard errors of the bootstrap percentile ends."""
    rng = np.random.default_rng(11)
    a, b = money(rng, 3000, 0.3), money(rng, 3000, 0.34)
    r = mean_test(mom(a), mom(b))
    boots = np.empty(2000)
    for i in range(2000):
        ra, rb = rng.choice(a, len(a)), rng.choice(b, len(b))
        boots[i] = rb.mean() / ra.mean() - 1
    lo, hi = np.quantile(boots, [0.025, 0.975])
    sd = boots.std(ddof=1)
    # standard error of an estimated 2.5 % quantile: sqrt(q (1 - q) / B) / density at it
    mc_se = math.sqrt(0.025 * 0.975 / 2000) / stats.norm.pdf(stats.norm.ppf(0.025)) * sd
    assert abs(r.relative_ci_low[0] - lo) < 3 * mc_se + 0.02 * sd
    assert abs(r.relative_ci_high[0] - hi) < 3 * mc_se + 0.02 * sd
    assert r.relative_se[0] == pytest.approx(sd, rel=0.1)


def test_ratio_metric_delta_method_against_linearised_rows():
    rng = np.random.default_rng(4)
    b0, b1 = rng.lognormal(12, 1, 600), rng.lognormal(12, 1, 400)
    y0, y1 = money(rng, 600, 0.3) * 0.5, money(rng, 400, 0.33) * 0.5
    r = ratio_test(mom(y0, b=b0), mom(y1, b=b1))
    var = 0.0
    for y, b in ((y0, b0), (y1, b1)):
        R = y.sum() / b.sum()
        var += ((y - R * b) / b.mean()).var(ddof=1) / len(y)
    diff = y1.sum() / b1.sum() - y0.sum() / b0.sum()
    z = stats.norm.ppf(0.975)
    assert r.estimate[0] == pytest.approx(diff, rel=1e-9)
    assert (r.ci_low[0], r.ci_high[0]) == pytest.approx(
        (diff - z * math.sqrt(var), diff + z * math.sqrt(var)), rel=1e-9
    )
    assert np.isinf(r.df[0]) and r.statistic[0] == pytest.approx(diff / math.sqrt(var), rel=1e-9)


def test_cuped_ratio_against_raw_linearised_rows():
    rng = np.random.default_rng(6)

    def arm(n, pay):
        b = rng.lognormal(12, 0.8, n)
        x = money(rng, n, 0.4) * 0.3
        y = np.minimum(0.4 * x + money(rng, n, pay) * 0.5, b)
        return y, b, x

    arms = [arm(800, 0.3), arm(300, 0.34)]
    r = ratio_test(*(mom(y, x, b) for y, b, x in arms), cuped="within_arm")
    lin = [((y - y.sum() / b.sum() * b) / b.mean(), x, y.sum() / b.sum()) for y, b, x in arms]
    lc = [L - L.mean() for L, _, _ in lin]
    xc = [x - x.mean() for _, x, _ in lin]
    theta = sum((a * c).sum() for a, c in zip(lc, xc, strict=True)) / sum((c * c).sum() for c in xc)
    x_all = np.concatenate([x for _, x, _ in lin]).mean()
    est = [ratio_ - theta * (x.mean() - x_all) for _, x, ratio_ in lin]
    var = [np.var(L - theta * x, ddof=1) / len(L) for L, x, _ in lin]
    diff = est[1] - est[0]
    z = stats.norm.ppf(0.975)
    assert r.estimate[0] == pytest.approx(diff, rel=1e-9)
    assert (r.ci_low[0], r.ci_high[0]) == pytest.approx(
        (diff - z * np.sqrt(sum(var)), diff + z * np.sqrt(sum(var))), rel=1e-9
    )
    assert 0 < r.variance_reduction[0] < 1


def test_degenerate_inputs_give_reasons_not_exceptions():
    assert mean_test(Moments(1, 5.0, 25.0), Moments(10, 5.0, 5.0)).reason[0]
    assert np.isnan(mean_test(Moments(5, 0.0, 0.0), Moments(5, 0.0, 0.0)).p_value[0])
    assert proportion_test(Moments(0, 0, 0), counts(10, 2)).reason[0] == "an arm has no customers"
    same = proportion_test(counts(10, 0), counts(12, 0))  # nobody paid: no evidence of a difference
    assert same.p_value[0] == 1.0 and same.ci_low[0] < 0 < same.ci_high[0]


# --- overall, multiplicity, sequential ----------------------------------------------------------


def test_post_stratified_overall_by_hand():
    """Two segments: 600 and 400 customers; differences 0.05 (se 0.02) and -0.01 (se 0.03).
    w = 0.6, 0.4 -> estimate 0.6 x 0.05 + 0.4 x -0.01 = 0.026; variance 0.36 x 0.0004 +
    0.16 x 0.0009 = 0.000288."""
    est, se = post_stratified([0.05, -0.01], [0.02, 0.03], [600, 400])
    assert est == pytest.approx(0.026) and se == pytest.approx(math.sqrt(0.000288))


def test_multiplicity_adjustments_by_hand():
    p = [0.01, 0.04, 0.03, np.nan, 0.20]
    holm = adjust_pvalues(p, "holm")
    # Holm by hand on the 4 tests: sorted 0.01, 0.03, 0.04, 0.20 -> x4, x3, x2, x1, cumulative max
    assert (
        holm[0] == pytest.approx(0.04)
        and holm[2] == pytest.approx(0.09)
        and holm[1] == pytest.approx(0.09)
    )
    assert holm[4] == pytest.approx(0.20) and np.isnan(holm[3])
    bh = adjust_pvalues(p, "fdr_bh")
    assert np.allclose(
        bh[[0, 1, 2, 4]], multipletests([0.01, 0.04, 0.03, 0.20], method="fdr_bh")[1]
    )


def test_confidence_sequence_equals_the_published_formula():
    """Waudby-Smith et al. (2023) asymptotic confidence sequence, written here from the
    paper's boundary: |mean - theta| <= sigma sqrt(((t rho^2 + 1) / (t^2 rho^2)) log((t rho^2 +
    1) / alpha^2)), with rho^2 = (-2 log alpha + log(1 - 2 log alpha)) / t*."""
    est = np.array([0.02, -0.5, 3.0, 0.0])
    se = np.array([0.01, 0.2, 1.0, 0.5])
    n = np.array([1000.0, 250.0, 40_000.0, 12.0])
    alpha, tuning = 0.05, np.array([5000.0, 800.0, 30_000.0, 100.0])
    low, high, p = confidence_sequence(est, se, n, alpha, tuning)
    rho2 = (-2 * np.log(alpha) + np.log(1 - 2 * np.log(alpha))) / tuning
    sigma = se * np.sqrt(n)
    half = sigma * np.sqrt((n * rho2 + 1) / (n**2 * rho2) * np.log((n * rho2 + 1) / alpha**2))
    assert low == pytest.approx(est - half, rel=1e-6) and high == pytest.approx(
        est + half, rel=1e-6
    )
    # the always-valid p-value is the alpha at which the sequence just touches 0
    for i in range(len(est)):
        if p[i] < 1:
            lo_i, hi_i, _ = confidence_sequence(est[i], se[i], n[i], p[i], tuning[i])
            # rho depends on alpha; the touching point is checked with rho fixed at alpha's
            r2 = rho2[i]
            edge = sigma[i] * math.sqrt(
                (n[i] * r2 + 1) / (n[i] ** 2 * r2) * math.log((n[i] * r2 + 1) / p[i] ** 2)
            )
            assert abs(est[i]) == pytest.approx(edge, rel=1e-6)
