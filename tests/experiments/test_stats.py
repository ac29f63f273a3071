"""Statistics from sufficient statistics equal the same statistics on raw rows (1e-9)."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep
from statsmodels.stats.proportion import test_proportions_2indep as score_test

from collect_kit.experiments.stats import (
    JointStats,
    Proportion,
    SampleMean,
    adjust_pvalues,
    cuped,
    cuped_theta,
    proportions,
    ratio,
    welch,
)  # fmt: skip


def sm_of(y):
    y = np.asarray(y, float)
    return SampleMean(len(y), y.sum(), (y**2).sum())


def js_of(y, x):
    y, x = np.asarray(y, float), np.asarray(x, float)
    return JointStats(len(y), y.sum(), x.sum(), (y**2).sum(), (x**2).sum(), (x * y).sum())


def money(rng, n, pay):
    """Mostly zeros, skewed amounts (lognormal) for payers."""
    paid = rng.random(n) < pay
    return np.where(paid, rng.lognormal(11, 1.2, n), 0.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_welch_equals_scipy(seed):
    rng = np.random.default_rng(seed)
    a, b = money(rng, 800, 0.3), money(rng, 300, 0.35)
    r = welch(sm_of(a), sm_of(b))
    ref = stats.ttest_ind(b, a, equal_var=False)
    assert r.estimate == pytest.approx(b.mean() - a.mean(), rel=1e-9)
    assert r.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    ci = ref.confidence_interval(0.95)
    assert (r.ci_low, r.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-9)


def test_pooling_adds_up():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=50), rng.normal(size=70)
    pooled = sm_of(a) + sm_of(b)
    assert pooled.mean == pytest.approx(np.concatenate([a, b]).mean(), rel=1e-12)
    assert pooled.variance == pytest.approx(np.concatenate([a, b]).var(ddof=1), rel=1e-9)


@pytest.mark.parametrize("counts", [(120, 400, 95, 400), (30, 150, 12, 160), (5, 40, 0, 38)])
def test_proportions_equal_statsmodels_and_ci_matches_test(counts):
    c1, n1, c0, n0 = counts
    r = proportions(Proportion(n0, c0), Proportion(n1, c1))
    test = score_test(c1, n1, c0, n0, method="score", compare="diff")
    low, high = confint_proportions_2indep(c1, n1, c0, n0, method="score", compare="diff")
    assert r.p_value == pytest.approx(test.pvalue, rel=1e-9)
    assert (r.ci_low, r.ci_high) == pytest.approx((low, high), rel=1e-9)
    assert (r.ci_low > 0 or r.ci_high < 0) == (r.p_value < 0.05)


def test_ratio_metric_delta_method_against_linearised_rows():
    rng = np.random.default_rng(4)
    x0, x1 = rng.lognormal(12, 1, 600), rng.lognormal(12, 1, 400)
    y0, y1 = money(rng, 600, 0.3) * 0.5, money(rng, 400, 0.33) * 0.5
    r = ratio(js_of(y0, x0), js_of(y1, x1))
    var = 0.0
    for y, x in ((y0, x0), (y1, x1)):
        R = y.sum() / x.sum()
        infl = (y - R * x) / x.mean()  # linearisation of sum(y)/sum(x)
        var += infl.var(ddof=1) / len(y)
    diff = y1.sum() / x1.sum() - y0.sum() / x0.sum()
    assert r.estimate == pytest.approx(diff, rel=1e-9)
    z = stats.norm.ppf(0.975)
    assert (r.ci_low, r.ci_high) == pytest.approx(
        (diff - z * np.sqrt(var), diff + z * np.sqrt(var)), rel=1e-9
    )


def test_cuped_equals_adjusted_outcome_welch_and_ols_arm_coefficient():
    rng = np.random.default_rng(5)
    n0, n1 = 700, 300
    x0, x1 = money(rng, n0, 0.4), money(rng, n1, 0.4)
    y0 = 0.6 * x0 + money(rng, n0, 0.3)
    y1 = 0.6 * x1 + money(rng, n1, 0.33)
    a, b = js_of(y0, x0), js_of(y1, x1)
    r = cuped(a, b)
    theta = cuped_theta(a, b)
    # theta = within-arm pooled slope
    xc = np.concatenate([x0 - x0.mean(), x1 - x1.mean()])
    yc = np.concatenate([y0 - y0.mean(), y1 - y1.mean()])
    assert theta == pytest.approx((xc * yc).sum() / (xc**2).sum(), rel=1e-9)
    x_bar = np.concatenate([x0, x1]).mean()
    adj0, adj1 = y0 - theta * (x0 - x_bar), y1 - theta * (x1 - x_bar)
    ref = stats.ttest_ind(adj1, adj0, equal_var=False)
    assert r.estimate == pytest.approx(adj1.mean() - adj0.mean(), rel=1e-9)
    assert r.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    design = sm.add_constant(np.column_stack([np.r_[np.zeros(n0), np.ones(n1)], np.r_[x0, x1]]))
    ols = sm.OLS(np.r_[y0, y1], design).fit()
    assert r.estimate == pytest.approx(ols.params[1], rel=1e-9)  # the point estimate only
    ss = lambda v: ((v - v.mean()) ** 2).sum()  # noqa: E731
    expected = 1 - (ss(adj0) + ss(adj1)) / (ss(y0) + ss(y1))
    assert r.extra == pytest.approx(expected, rel=1e-9) and 0 < r.extra < 1


def test_degenerate_inputs_give_reasons():
    assert welch(SampleMean(1, 5.0, 25.0), SampleMean(10, 5.0, 5.0)).reason
    assert np.isnan(welch(SampleMean(5, 0.0, 0.0), SampleMean(5, 0.0, 0.0)).p_value)
    assert proportions(Proportion(0, 0), Proportion(10, 2)).reason == "an arm has no customers"
    assert (
        proportions(Proportion(10, 0), Proportion(10, 0)).reason
        == "every customer has the same outcome"
    )


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
    assert bh[0] == pytest.approx(0.04) and bh[4] == pytest.approx(0.20)


@pytest.mark.parametrize("seed", [0, 1])
def test_logrank_from_counts_equals_statsmodels_survdiff(seed):
    import pandas as pd
    from statsmodels.duration.survfunc import survdiff

    from collect_kit.experiments.stats import logrank

    rng = np.random.default_rng(seed)
    n0, n1 = 600, 250
    t0 = np.minimum(rng.exponential(40, n0).round() + 1, 60)
    t1 = np.minimum(rng.exponential(30, n1).round() + 1, 60)
    e0, e1 = (t0 < 60).astype(int), (t1 < 60).astype(int)
    time, event, group = np.r_[t0, t1], np.r_[e0, e1], np.r_[np.zeros(n0), np.ones(n1)].astype(int)
    counts = (
        pd.DataFrame({"time": time, "event": event, "group": group})
        .value_counts()
        .rename("n")
        .reset_index()
    )
    chi2, p = logrank(counts)
    ref_chi2, ref_p = survdiff(time, event, group)
    assert chi2 == pytest.approx(ref_chi2, rel=1e-9) and p == pytest.approx(ref_p, rel=1e-9)


def test_cochran_q_by_hand():
    from collect_kit.experiments.stats import cochran_q

    est, se = [0.03, 0.01, -0.01], [0.01, 0.02, 0.01]
    w = np.array([1 / 0.01**2, 1 / 0.02**2, 1 / 0.01**2])
    mean = (w * est).sum() / w.sum()
    q_ref = (w * (np.array(est) - mean) ** 2).sum()
    q, df, p = cochran_q(est, se)
    assert q == pytest.approx(q_ref) and df == 2 and p == pytest.approx(stats.chi2.sf(q_ref, 2))
    assert np.isnan(cochran_q([0.1], [0.01])[0])


def test_cuped_ratio_against_raw_linearised_rows():
    from collect_kit.experiments.stats import RatioCovariateStats, cuped_ratio

    rng = np.random.default_rng(6)

    def arm(n, pay):
        b = rng.lognormal(12, 0.8, n)
        x = money(rng, n, 0.4) * 0.3
        y = np.minimum(0.4 * x + money(rng, n, pay) * 0.5, b)
        return y, b, x

    arms = [arm(800, 0.3), arm(300, 0.34)]
    packed = [RatioCovariateStats(len(y), y.sum(), b.sum(), x.sum(), (y * y).sum(), (b * b).sum(), (x * x).sum(),
                                  (y * b).sum(), (x * y).sum(), (x * b).sum()) for y, b, x in arms]  # fmt: skip
    r = cuped_ratio(*packed)
    # the same computation on raw rows: linearise, pooled within-arm slope, adjust
    lin = []
    for y, b, x in arms:
        ratio_ = y.sum() / b.sum()
        lin.append(((y - ratio_ * b) / b.mean(), x, ratio_))
    lc = [L - L.mean() for L, _, _ in lin]
    xc = [x - x.mean() for _, x, _ in lin]
    theta = sum((a * c).sum() for a, c in zip(lc, xc, strict=True)) / sum((c * c).sum() for c in xc)
    x_all = np.concatenate([x for _, x, _ in lin]).mean()
    est = [ratio_ - theta * (x.mean() - x_all) for _, x, ratio_ in lin]
    var = [np.var(L - theta * x, ddof=1) / len(L) for L, x, _ in lin]
    diff = est[1] - est[0]
    z = stats.norm.ppf(0.975)
    assert r.estimate == pytest.approx(diff, rel=1e-9)
    assert (r.ci_low, r.ci_high) == pytest.approx(
        (diff - z * np.sqrt(sum(var)), diff + z * np.sqrt(sum(var))), rel=1e-9
    )
    assert 0 < r.extra < 1
