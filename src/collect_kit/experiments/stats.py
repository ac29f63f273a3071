"""Tests of a challenger against the champion from sufficient statistics (pure math).

The engine fills the small frozen dataclasses below (n, sums, sums of squares and cross
products per segment x arm); the functions here turn two of them into an estimate, a
confidence interval and a p-value. No rows are needed, so a readout over millions of
customers finishes in milliseconds, and the math is tested without a database.

Degenerate inputs (n < 2, zero variance) give a result with ``reason`` set and NaN numbers,
never an exception from inside.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class SampleMean:
    """n, sum and sum of squares of a per-customer outcome (e.g. collected amount)."""

    n: int
    sum: float
    sum_squares: float

    @property
    def mean(self) -> float:
        return self.sum / self.n if self.n else float("nan")

    @property
    def variance(self) -> float:
        """Unbiased sample variance (n - 1 in the denominator); NaN for n < 2."""
        if self.n < 2:
            return float("nan")
        return max((self.sum_squares - self.sum**2 / self.n) / (self.n - 1), 0.0)

    def __add__(self, other: SampleMean) -> SampleMean:
        return SampleMean(
            self.n + other.n, self.sum + other.sum, self.sum_squares + other.sum_squares
        )


@dataclass(frozen=True)
class Proportion:
    """n customers of which ``successes`` had the event (e.g. paid anything)."""

    n: int
    successes: int

    @property
    def rate(self) -> float:
        return self.successes / self.n if self.n else float("nan")


@dataclass(frozen=True)
class JointStats:
    """Sums for two per-customer quantities y and x (ratio metrics, CUPED covariates)."""

    n: int
    sum_y: float
    sum_x: float
    sum_y2: float
    sum_x2: float
    sum_xy: float

    @property
    def mean_y(self) -> float:
        return self.sum_y / self.n

    @property
    def mean_x(self) -> float:
        return self.sum_x / self.n

    def cov(self) -> tuple[float, float, float]:
        """(var y, var x, cov xy), unbiased."""
        n = self.n
        vy = (self.sum_y2 - self.sum_y**2 / n) / (n - 1)
        vx = (self.sum_x2 - self.sum_x**2 / n) / (n - 1)
        cxy = (self.sum_xy - self.sum_x * self.sum_y / n) / (n - 1)
        return vy, vx, cxy


@dataclass(frozen=True)
class Comparison:
    """Challenger minus champion: estimate, CI, p-value, relative lift; ``reason`` if none."""

    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    champion: float
    challenger: float
    relative_lift: float
    reason: str = ""
    extra: float = float("nan")  # e.g. the variance reduction of CUPED (a fraction)


_NAN = float("nan")


def _empty(reason: str, champion=_NAN, challenger=_NAN) -> Comparison:
    return Comparison(_NAN, _NAN, _NAN, _NAN, champion, challenger, _NAN, reason)


def _welch(
    m0: float, v0: float, n0: int, m1: float, v1: float, n1: int, alpha: float, extra=_NAN
) -> Comparison:
    se2 = v0 / n0 + v1 / n1
    if not se2 > 0:
        return _empty("zero variance in both arms", m0, m1)
    se = math.sqrt(se2)
    df = se2**2 / ((v0 / n0) ** 2 / (n0 - 1) + (v1 / n1) ** 2 / (n1 - 1))
    diff = m1 - m0
    t = diff / se
    p = 2 * stats.t.sf(abs(t), df)
    q = stats.t.ppf(1 - alpha / 2, df)
    lift = diff / m0 if m0 else _NAN
    return Comparison(diff, diff - q * se, diff + q * se, float(p), m0, m1, lift, extra=extra)


def welch(champion: SampleMean, challenger: SampleMean, alpha: float = 0.05) -> Comparison:
    """Welch's unequal-variance t test of the difference in means (challenger - champion)."""
    if champion.n < 2 or challenger.n < 2:
        return _empty("fewer than 2 customers in an arm", champion.mean, challenger.mean)
    return _welch(
        champion.mean,
        champion.variance,
        champion.n,
        challenger.mean,
        challenger.variance,
        challenger.n,
        alpha,
    )


def proportions(champion: Proportion, challenger: Proportion, alpha: float = 0.05) -> Comparison:
    """Difference in proportions with the score test and its score interval.

    Miettinen-Nurminen score interval and the matching score test
    (statsmodels ``confint_proportions_2indep`` / ``test_proportions_2indep`` with
    ``method="score"``): the interval is the set of differences the test does not reject, so
    an interval excluding 0 always goes with p < alpha.
    """
    from statsmodels.stats.proportion import confint_proportions_2indep, test_proportions_2indep

    if champion.n == 0 or challenger.n == 0:
        return _empty("an arm has no customers", champion.rate, challenger.rate)
    c1, n1, c0, n0 = challenger.successes, challenger.n, champion.successes, champion.n
    if c0 + c1 in (0, n0 + n1):
        return _empty("every customer has the same outcome", champion.rate, challenger.rate)
    test = test_proportions_2indep(c1, n1, c0, n0, method="score", compare="diff")
    try:
        low, high = confint_proportions_2indep(
            c1, n1, c0, n0, method="score", compare="diff", alpha=alpha
        )
    except ValueError:  # statsmodels' own root bracket can fail; invert the same test here
        low, high = _invert_score_test(c1, n1, c0, n0, alpha)
    diff = challenger.rate - champion.rate
    lift = diff / champion.rate if champion.rate else _NAN
    return Comparison(
        diff, float(low), float(high), float(test.pvalue), champion.rate, challenger.rate, lift
    )


def _invert_score_test(c1: int, n1: int, c0: int, n0: int, alpha: float) -> tuple[float, float]:
    """The score interval as {d : score test of p1 - p0 = d has p >= alpha}, by root finding."""
    from scipy.optimize import brentq
    from statsmodels.stats.proportion import test_proportions_2indep

    d_hat = c1 / n1 - c0 / n0
    eps = 1e-9

    def f(d):
        return (
            test_proportions_2indep(c1, n1, c0, n0, value=d, method="score", compare="diff").pvalue
            - alpha
        )

    low = brentq(f, -1 + eps, d_hat) if f(-1 + eps) < 0 else -1.0
    high = brentq(f, d_hat, 1 - eps) if f(1 - eps) < 0 else 1.0
    return low, high


def ratio(champion: JointStats, challenger: JointStats, alpha: float = 0.05) -> Comparison:
    """Difference of ratio metrics sum(y) / sum(x) (e.g. collected / balance) by the delta method.

    var(R) ~ (var y - 2 R cov(x, y) + R^2 var x) / (n mean(x)^2) per arm; the two arms are
    independent; a normal interval and test.
    """
    out = []
    for s in (champion, challenger):
        if s.n < 2 or s.sum_x == 0:
            return _empty("fewer than 2 customers or no denominator in an arm")
        r = s.sum_y / s.sum_x
        vy, vx, cxy = s.cov()
        out.append((r, (vy - 2 * r * cxy + r * r * vx) / (s.n * s.mean_x**2)))
    (r0, v0), (r1, v1) = out
    se = math.sqrt(v0 + v1)
    if not se > 0:
        return _empty("zero variance in both arms", r0, r1)
    diff = r1 - r0
    z = stats.norm.ppf(1 - alpha / 2)
    p = 2 * stats.norm.sf(abs(diff / se))
    return Comparison(
        diff, diff - z * se, diff + z * se, float(p), r0, r1, diff / r0 if r0 else _NAN
    )


def cuped_theta(champion: JointStats, challenger: JointStats) -> float:
    """theta = pooled within-arm cov(x, y) / pooled within-arm var(x).

    The within-arm pooled slope is the OLS coefficient of x in y ~ arm + x, so the CUPED
    difference equals that regression's arm coefficient; pooling within arms keeps theta free
    of the treatment effect.
    """
    sxy = sxx = 0.0
    for s in (champion, challenger):
        sxy += s.sum_xy - s.sum_x * s.sum_y / s.n
        sxx += s.sum_x2 - s.sum_x**2 / s.n
    return sxy / sxx if sxx > 0 else 0.0


def cuped(champion: JointStats, challenger: JointStats, alpha: float = 0.05) -> Comparison:
    """Welch test on the CUPED-adjusted outcome y - theta (x - mean of x over both arms).

    x is a pre-period covariate (e.g. payments before assignment). ``extra`` holds the
    variance reduction achieved: 1 - var(adjusted) / var(y), pooled over arms (a fraction).
    """
    if champion.n < 2 or challenger.n < 2:
        return _empty("fewer than 2 customers in an arm")
    theta = cuped_theta(champion, challenger)
    x_bar = (champion.sum_x + challenger.sum_x) / (champion.n + challenger.n)
    parts = []
    raw = adj = 0.0
    for s in (champion, challenger):
        vy, vx, cxy = s.cov()
        v_adj = max(vy - 2 * theta * cxy + theta * theta * vx, 0.0)
        parts.append((s.mean_y - theta * (s.mean_x - x_bar), v_adj, s.n))
        raw += vy * (s.n - 1)
        adj += v_adj * (s.n - 1)
    reduction = 1 - adj / raw if raw > 0 else _NAN
    (m0, v0, n0), (m1, v1, n1) = parts
    return _welch(m0, v0, n0, m1, v1, n1, alpha, extra=reduction)


def adjust_pvalues(pvalues, method: str) -> np.ndarray:
    """Holm (``holm``) or Benjamini-Hochberg (``fdr_bh``) adjusted p-values over a family."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(pvalues, float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method=method)[1]
    return out


def logrank(counts) -> tuple[float, float]:
    """Log-rank test of two arms from event counts: returns (chi-square, p-value), 1 df.

    ``counts``: a DataFrame with ``group`` (0 champion, 1 challenger), ``time`` (days),
    ``event`` (1 event, 0 censored) and ``n`` (customers with that combination) — what the
    engine aggregates. Customers censored at a time are at risk at that time (the usual
    convention, as in statsmodels ``survdiff``).
    """
    c = counts.groupby(["time", "group", "event"], as_index=False)["n"].sum()
    times = np.sort(c["time"].unique())
    table = {}
    for g in (0, 1):
        sub = c[c.group == g]
        d = sub[sub.event == 1].set_index("time")["n"].reindex(times, fill_value=0).to_numpy(float)
        total = sub.groupby("time")["n"].sum().reindex(times, fill_value=0).to_numpy(float)
        at_risk = total[::-1].cumsum()[::-1]  # still followed at each time
        table[g] = (d, at_risk)
    d0, r0 = table[0]
    d1, r1 = table[1]
    d, r = d0 + d1, r0 + r1
    ok = r > 1
    e1 = np.where(ok, d * r1 / np.where(ok, r, 1), 0.0)
    v = np.where(
        ok,
        d
        * (r1 / np.where(ok, r, 1))
        * (1 - r1 / np.where(ok, r, 1))
        * (r - d)
        / np.where(ok, r - 1, 1),
        0.0,
    )
    var = v.sum()
    if var <= 0:
        return float("nan"), float("nan")
    chi2 = (d1.sum() - e1.sum()) ** 2 / var
    return float(chi2), float(stats.chi2.sf(chi2, 1))


def cochran_q(estimates, standard_errors) -> tuple[float, int, float]:
    """Cochran's Q for heterogeneity of per-segment effects: (Q, degrees of freedom, p-value).

    Q = sum w_i (theta_i - theta_w)^2 with inverse-variance weights w_i = 1 / se_i^2 and
    theta_w their weighted mean; chi-square with k - 1 df under "same effect everywhere".
    Segments without a finite, positive standard error are left out.
    """
    est = np.asarray(estimates, float)
    se = np.asarray(standard_errors, float)
    keep = np.isfinite(est) & np.isfinite(se) & (se > 0)
    est, se = est[keep], se[keep]
    k = len(est)
    if k < 2:
        return float("nan"), 0, float("nan")
    w = 1 / se**2
    mean = (w * est).sum() / w.sum()
    q = float((w * (est - mean) ** 2).sum())
    return q, k - 1, float(stats.chi2.sf(q, k - 1))


@dataclass(frozen=True)
class RatioCovariateStats:
    """Sums for a ratio metric sum(y) / sum(b) with a pre-period covariate x, per arm."""

    n: int
    sum_y: float
    sum_b: float
    sum_x: float
    sum_y2: float
    sum_b2: float
    sum_x2: float
    sum_yb: float
    sum_xy: float
    sum_xb: float

    def linearised(self) -> tuple[float, float, float, float, float]:
        """(R, var L, cov(L, x), var x, mean x) with L = (y - R b) / mean(b), unbiased."""
        n = self.n

        def cov(sa, sb, sab):
            return (sab - sa * sb / n) / (n - 1)

        r = self.sum_y / self.sum_b
        b_bar = self.sum_b / n
        vy, vb, vx = (
            cov(self.sum_y, self.sum_y, self.sum_y2),
            cov(self.sum_b, self.sum_b, self.sum_b2),
            cov(self.sum_x, self.sum_x, self.sum_x2),
        )
        cyb, cyx, cbx = (
            cov(self.sum_y, self.sum_b, self.sum_yb),
            cov(self.sum_y, self.sum_x, self.sum_xy),
            cov(self.sum_b, self.sum_x, self.sum_xb),
        )
        var_l = (vy - 2 * r * cyb + r * r * vb) / b_bar**2
        cov_lx = (cyx - r * cbx) / b_bar
        return r, var_l, cov_lx, vx, self.sum_x / n


def cuped_ratio(
    champion: RatioCovariateStats, challenger: RatioCovariateStats, alpha: float = 0.05
) -> Comparison:
    """CUPED for a ratio metric (e.g. recovery rate = collected / balance) on its linearisation.

    Each arm's ratio R is linearised, L_i = (y_i - R b_i) / mean(b) (so mean(L) = 0 and
    var(R) ~ var(L) / n), then adjusted with the pre-period covariate x:
    R_adj = R - theta (mean x of the arm - mean x of both arms), var = var(L - theta x) / n,
    with theta the within-arm pooled slope of L on x. A normal interval and test; ``extra``
    is the variance reduction achieved (a fraction).
    """
    if champion.n < 2 or challenger.n < 2 or champion.sum_b == 0 or challenger.sum_b == 0:
        return _empty("fewer than 2 customers or no denominator in an arm")
    parts = [s.linearised() for s in (champion, challenger)]
    sxy = sum((s.n - 1) * p[2] for s, p in zip((champion, challenger), parts, strict=True))
    sxx = sum((s.n - 1) * p[3] for s, p in zip((champion, challenger), parts, strict=True))
    theta = sxy / sxx if sxx > 0 else 0.0
    x_all = (champion.sum_x + challenger.sum_x) / (champion.n + challenger.n)
    est, var, raw, adj = [], [], 0.0, 0.0
    for s, (r, var_l, cov_lx, var_x, x_bar) in zip((champion, challenger), parts, strict=True):
        v_adj = max(var_l - 2 * theta * cov_lx + theta * theta * var_x, 0.0)
        est.append(r - theta * (x_bar - x_all))
        var.append(v_adj / s.n)
        raw += (s.n - 1) * var_l
        adj += (s.n - 1) * v_adj
    se = math.sqrt(var[0] + var[1])
    if not se > 0:
        return _empty("zero variance in both arms", est[0], est[1])
    diff = est[1] - est[0]
    z = stats.norm.ppf(1 - alpha / 2)
    p = 2 * stats.norm.sf(abs(diff / se))
    reduction = 1 - adj / raw if raw > 0 else _NAN
    return Comparison(
        diff,
        diff - z * se,
        diff + z * se,
        float(p),
        est[0],
        est[1],
        diff / est[0] if est[0] else _NAN,
        extra=reduction,
    )
