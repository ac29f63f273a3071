"""Tests of a challenger against the champion from sufficient statistics (pure math, vectorised).

The engine returns, per segment x arm and metric, the sums of :class:`Moments`; the
functions here turn a champion's and a challenger's moments into a :class:`Comparison`:
the difference with its interval, test statistic and p-value, the relative lift with its
delta-method interval and test, and for CUPED the slope and the variance it removed.
Every field is an array, so one call compares every segment x challenger x look at once
(a readout of 6 segments x 2 challengers x 5 metrics x 12 looks takes milliseconds).
Formulas, references and which defaults match which platform: ``docs/experiments.md``.

Degenerate inputs (an empty arm, n < 2, zero variance) give NaN numbers with ``reason``
set, never an exception from inside.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd
from scipy import stats

CUPED_THETAS = ("within_arm", "pooled")


def _arr(value) -> np.ndarray:
    return np.atleast_1d(np.asarray(value, dtype=float))


@dataclass(frozen=True)
class Moments:
    """Sufficient statistics of one arm, one entry per comparison (numbers or arrays).

    ``y`` is the per-customer outcome (0/1 for a proportion), ``x`` the pre-period
    covariate of CUPED and ``b`` the denominator of a ratio metric (e.g. the balance at
    assignment): n, their sums, sums of squares and cross products. Unused sums stay 0.
    """

    n: np.ndarray
    sum_y: np.ndarray
    sum_y2: np.ndarray
    sum_x: np.ndarray = 0.0  # type: ignore[assignment]
    sum_x2: np.ndarray = 0.0  # type: ignore[assignment]
    sum_xy: np.ndarray = 0.0  # type: ignore[assignment]
    sum_b: np.ndarray = 0.0  # type: ignore[assignment]
    sum_b2: np.ndarray = 0.0  # type: ignore[assignment]
    sum_yb: np.ndarray = 0.0  # type: ignore[assignment]
    sum_xb: np.ndarray = 0.0  # type: ignore[assignment]

    def __post_init__(self):
        values = [_arr(getattr(self, f.name)) for f in fields(self)]
        shape = np.broadcast_shapes(*(v.shape for v in values))
        for f, v in zip(fields(self), values, strict=True):
            object.__setattr__(self, f.name, np.broadcast_to(v, shape).astype(float))

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> Moments:
        """From a frame with the columns ``n``, ``sum_y`` ... (missing sums count as 0)."""
        return cls(**{f.name: frame[f.name].to_numpy(float) if f.name in frame else 0.0
                      for f in fields(cls)})  # fmt: skip

    def __add__(self, other: Moments) -> Moments:
        return Moments(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})  # fmt: skip

    def _mean(self, total: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.n > 0, total / np.where(self.n > 0, self.n, 1), np.nan)

    def _cov(self, s_ab: np.ndarray, s_a: np.ndarray, s_b: np.ndarray) -> np.ndarray:
        """Unbiased (n - 1) covariance from sums; NaN for n < 2."""
        n = self.n
        ok = n >= 2
        safe = np.where(ok, n, 2)
        return np.where(ok, (s_ab - s_a * s_b / safe) / (safe - 1), np.nan)

    @property
    def mean_y(self) -> np.ndarray:
        return self._mean(self.sum_y)

    @property
    def mean_x(self) -> np.ndarray:
        return self._mean(self.sum_x)

    @property
    def mean_b(self) -> np.ndarray:
        return self._mean(self.sum_b)

    @property
    def var_y(self) -> np.ndarray:
        return np.maximum(self._cov(self.sum_y2, self.sum_y, self.sum_y), 0.0)

    @property
    def var_x(self) -> np.ndarray:
        return np.maximum(self._cov(self.sum_x2, self.sum_x, self.sum_x), 0.0)

    @property
    def cov_xy(self) -> np.ndarray:
        return self._cov(self.sum_xy, self.sum_x, self.sum_y)

    def linearised(self) -> tuple[np.ndarray, ...]:
        """The ratio R = sum(y) / sum(b) as a mean: (R, var L, cov(L, x)) with the
        linearisation L = (y - R b) / mean(b) (mean 0, var(R) ~ var(L) / n)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            r = self.sum_y / self.sum_b
            b_bar = self.mean_b
            var_l = (self.var_y - 2 * r * self._cov(self.sum_yb, self.sum_y, self.sum_b)
                     + r * r * self._cov(self.sum_b2, self.sum_b, self.sum_b)) / b_bar**2  # fmt: skip
            cov_lx = (self.cov_xy - r * self._cov(self.sum_xb, self.sum_b, self.sum_x)) / b_bar
        return r, np.maximum(var_l, 0.0), cov_lx


@dataclass(frozen=True)
class Comparison:
    """Challenger against champion, one entry per comparison (arrays).

    ``champion`` / ``challenger``: the arms' observed values (unadjusted). ``estimate``:
    the difference challenger - champion (CUPED-adjusted when the test is), ``se`` its
    unpooled standard error, ``ci_low`` / ``ci_high`` the ``1 - alpha`` interval,
    ``statistic`` the z or t statistic (``df`` its degrees of freedom, ``inf`` for z) and
    ``p_value`` two-sided. ``relative``: the lift as a fraction of the champion, with its
    delta-method ``relative_se``, interval and p-value. ``theta``: the CUPED slope;
    ``variance_reduction``: the share of the outcome's variance CUPED removed.
    """

    champion: np.ndarray
    challenger: np.ndarray
    estimate: np.ndarray
    se: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    statistic: np.ndarray
    df: np.ndarray
    p_value: np.ndarray
    relative: np.ndarray
    relative_se: np.ndarray
    relative_ci_low: np.ndarray
    relative_ci_high: np.ndarray
    relative_p_value: np.ndarray
    theta: np.ndarray
    variance_reduction: np.ndarray
    reason: np.ndarray

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({f.name: getattr(self, f.name) for f in fields(self)})


def _two_sided(statistic: np.ndarray, df: np.ndarray) -> np.ndarray:
    """Two-sided p-value of a z (df = inf) or t statistic."""
    z = np.abs(statistic)
    return np.where(
        np.isinf(df), 2 * stats.norm.sf(z), 2 * stats.t.sf(z, np.where(np.isinf(df), 1, df))
    )


def _quantile(alpha: float, df: np.ndarray) -> np.ndarray:
    q = 1 - alpha / 2
    return np.where(np.isinf(df), stats.norm.ppf(q), stats.t.ppf(q, np.where(np.isinf(df), 1, df)))


def fieller(num, den, v_num, v_den, cov, q) -> tuple[np.ndarray, np.ndarray]:
    """Fieller's interval for the ratio num / den of two asymptotically normal estimates:
    the ratios r with (num - r den)^2 <= q^2 (v_num - 2 r cov + r^2 v_den), the set a test
    of "num = r den" does not reject. It holds r = 0 exactly when the test of num = 0 does
    not reject, so it never contradicts the absolute test, and it widens when den is
    imprecise, where the delta method understates the spread. When den itself is not
    distinguishable from 0 (den^2 <= q^2 v_den) the set is unbounded: (-inf, inf).
    """
    num, den, v_num, v_den, cov, q = (
        np.asarray(v, float) for v in (num, den, v_num, v_den, cov, q)
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        a = den**2 - q**2 * v_den
        b = num * den - q**2 * cov
        disc = np.maximum(b**2 - a * (num**2 - q**2 * v_num), 0.0)
        bounded = a > 0
        lo = np.where(bounded, (b - np.sqrt(disc)) / a, -np.inf)
        hi = np.where(bounded, (b + np.sqrt(disc)) / a, np.inf)
    return lo, hi


def _relative(m0, m1, var0, var1, n0, n1, alpha, df, p_value, estimate=None, base=None, v_base=None, cov=None):  # fmt: skip
    """Relative lift m1 / m0 - 1 (or ``estimate / base``): the delta-method standard error
    (GrowthBook's), Fieller's interval and the absolute test's p-value.

    Independent arms: var(m1 / m0) ~ var1 / (n1 m0^2) + m1^2 var0 / (n0 m0^4). With
    ``estimate`` / ``base`` (pooled CUPED: the adjusted difference over the unadjusted
    champion mean), ``v_base`` gives that variance directly, ``var1 / n1`` the estimate's
    variance and ``cov`` its covariance with the base. The interval is :func:`fieller`'s, so
    a lift whose absolute test does not reject never gets an interval excluding 0 (the
    symmetric delta interval can, when the champion is imprecise); the test of "no lift"
    is the absolute one (``p_value``). Every metric sums, counts or shares non-negative
    values, so the lower end is cut at -100 %.
    """
    q = _quantile(alpha, df)
    with np.errstate(invalid="ignore", divide="ignore"):
        if estimate is None:
            rel = m1 / m0 - 1
            var = var1 / (n1 * m0**2) + m1**2 * var0 / (n0 * m0**4)
            lo, hi = fieller(m1, m0, var1 / n1, var0 / n0, 0.0, q)
            lo, hi = lo - 1, hi - 1
        else:
            rel, var = estimate / base, v_base
            lo, hi = fieller(estimate, base, var1 / n1, var0 / n0, cov, q)
        bad = ~np.isfinite(rel) | ~(var > 0)
        se = np.sqrt(np.where(bad, np.nan, var))
    nan = np.full(np.shape(rel), np.nan)
    return (np.where(bad, nan, rel), se, np.where(bad, nan, np.maximum(lo, -1.0)),
            np.where(bad, nan, hi), np.where(bad, nan, p_value))  # fmt: skip


def _assemble(champion, challenger, estimate, se2, df, alpha, rel, theta, reduction, reason):
    reason = np.asarray(reason, dtype=object)
    bad = reason != ""
    with np.errstate(invalid="ignore", divide="ignore"):
        se = np.sqrt(se2)
        stat = estimate / se
        q = _quantile(alpha, df)
    nan = np.full(np.shape(estimate), np.nan)

    def keep(v):
        return np.where(bad, nan, v)

    return Comparison(
        champion=champion, challenger=challenger, estimate=keep(estimate), se=keep(se),
        ci_low=keep(estimate - q * se), ci_high=keep(estimate + q * se), statistic=keep(stat),
        df=keep(df), p_value=keep(_two_sided(stat, df)), relative=keep(rel[0]),
        relative_se=keep(rel[1]), relative_ci_low=keep(rel[2]), relative_ci_high=keep(rel[3]),
        relative_p_value=keep(rel[4]), theta=theta, variance_reduction=keep(reduction),
        reason=reason,
    )  # fmt: skip


def _reasons(n0, n1, minimum: int, message: str) -> np.ndarray:
    return np.where((n0 < minimum) | (n1 < minimum), message, "").astype(object)


def _welch_df(v0, n0, v1, n1) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        a, b = v0 / n0, v1 / n1
        return (a + b) ** 2 / (a**2 / (n0 - 1) + b**2 / (n1 - 1))


def _theta(mode, n0, n1, m0, m1, x0, x1, vx0, vx1, c0, c1) -> np.ndarray:
    """CUPED slope. ``within_arm``: sum (n-1) cov(x, y) / sum (n-1) var(x) over the arms
    (the coefficient of x in OLS y ~ arm + x). ``pooled``: cov(x, y) / var(x) over both
    arms taken together (GrowthBook), which adds the between-arm terms."""
    sxy = (n0 - 1) * c0 + (n1 - 1) * c1
    sxx = (n0 - 1) * vx0 + (n1 - 1) * vx1
    if mode == "pooled":
        n = n0 + n1
        y_bar, x_bar = (n0 * m0 + n1 * m1) / n, (n0 * x0 + n1 * x1) / n
        sxy = sxy + n0 * (m0 - y_bar) * (x0 - x_bar) + n1 * (m1 - y_bar) * (x1 - x_bar)
        sxx = sxx + n0 * (x0 - x_bar) ** 2 + n1 * (x1 - x_bar) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sxx > 0, sxy / np.where(sxx > 0, sxx, 1), 0.0)


def _difference(arms, alpha, cuped, df_kind, reason):
    """The shared core of means and ratios: ``arms`` holds per arm (n, mean, variance of the
    outcome, mean of x, variance of x, cov(x, outcome)); a ratio passes its linearisation.

    Raw: Welch (t, ``df_kind == "t"``) or normal on the means. CUPED (``cuped`` a mode of
    :data:`CUPED_THETAS`): outcome - theta x per customer (Deng et al. 2013), adjusted
    means centred on the mean of x over both arms; ``within_arm`` relative lift over the
    adjusted champion mean, ``pooled`` over the unadjusted one (GrowthBook).
    """
    (n0, m0, v0, x0, vx0, c0), (n1, m1, v1, x1, vx1, c1) = arms
    theta = np.full(np.shape(m0), np.nan)
    reduction = np.full(np.shape(m0), np.nan)
    a0, a1, w0, w1 = m0, m1, v0, v1
    if cuped is not None:
        if cuped not in CUPED_THETAS:
            raise ValueError(f"cuped: one of {CUPED_THETAS} (got {cuped!r})")
        theta = _theta(cuped, n0, n1, m0, m1, x0, x1, vx0, vx1, c0, c1)
        x_bar = (n0 * x0 + n1 * x1) / (n0 + n1)
        w0 = np.maximum(v0 + theta**2 * vx0 - 2 * theta * c0, 0.0)
        w1 = np.maximum(v1 + theta**2 * vx1 - 2 * theta * c1, 0.0)
        a0, a1 = m0 - theta * (x0 - x_bar), m1 - theta * (x1 - x_bar)
        with np.errstate(invalid="ignore", divide="ignore"):
            reduction = 1 - ((n0 - 1) * w0 + (n1 - 1) * w1) / ((n0 - 1) * v0 + (n1 - 1) * v1)
    estimate = a1 - a0
    se2 = w0 / n0 + w1 / n1
    reason = np.where((reason == "") & ~(se2 > 0), "zero variance in both arms", reason)
    df = _welch_df(w0, n0, w1, n1) if df_kind == "t" else np.full(np.shape(m0), np.inf)
    with np.errstate(invalid="ignore", divide="ignore"):
        p_value = _two_sided(estimate / np.sqrt(se2), df)
    if cuped == "pooled":
        # GrowthBook's delta method for (adjusted difference) / (unadjusted champion mean)
        with np.errstate(invalid="ignore", divide="ignore"):
            v_trt = w1 / (n1 * m0**2)
            v_ctrl = (v0 * m1**2 / m0**2 - 2 * theta * c0 * m1 / m0 + theta**2 * vx0) / (n0 * m0**2)
        # Fieller: the difference (variance se2) over the champion mean (v0 / n0); they
        # covary through the champion's adjusted mean: cov = -(v0 - theta c0) / n0
        rel = _relative(m0, m1, v0, se2 * n1, n0, n1, alpha, df, p_value, estimate, m0,
                        v_trt + v_ctrl, -(v0 - theta * c0) / n0)  # fmt: skip
    else:
        rel = _relative(a0, a1, w0, w1, n0, n1, alpha, df, p_value)
    return _assemble(m0, m1, estimate, se2, df, alpha, rel, theta, reduction, reason)


def mean_test(
    m0: Moments, m1: Moments, alpha: float = 0.05, cuped: str | None = None
) -> Comparison:
    """Difference in means of ``y`` (e.g. collected per customer, currency): Welch's t test
    and interval; with ``cuped`` ("within_arm" or "pooled") on y - theta x."""
    reason = _reasons(m0.n, m1.n, 2, "fewer than 2 customers in an arm")
    arms = [(m.n, m.mean_y, m.var_y, m.mean_x, m.var_x, m.cov_xy) for m in (m0, m1)]
    return _difference(arms, alpha, cuped, "t", reason)


def ratio_test(
    m0: Moments, m1: Moments, alpha: float = 0.05, cuped: str | None = None
) -> Comparison:
    """Difference of ratio metrics sum(y) / sum(b) (e.g. collected / balance at assignment)
    by the delta method, normal interval and test; with ``cuped`` on its linearisation."""
    reason = _reasons(m0.n, m1.n, 2, "fewer than 2 customers in an arm")
    reason = np.where(
        (reason == "") & ((m0.sum_b == 0) | (m1.sum_b == 0)), "no denominator in an arm", reason
    )
    arms = []
    for m in (m0, m1):
        r, var_l, cov_lx = m.linearised()
        arms.append((m.n, r, var_l, m.mean_x, m.var_x, cov_lx))
    return _difference(arms, alpha, cuped, "z", reason)


def proportion_test(
    m0: Moments, m1: Moments, alpha: float = 0.05, correction: bool = True
) -> Comparison:
    """Difference in proportions (``sum_y`` = customers with the event): score test and the
    score interval that inverts it (Miettinen & Nurminen 1985).

    ``correction=True``: the variance carries Miettinen-Nurminen's N / (N - 1) factor
    (statsmodels ``test_proportions_2indep(method="score")``); ``False``: at 0 it is the
    plain pooled z-test (``proportions_ztest``), and the interval inverts that score test
    without the factor. The interval is found by bisection between the estimate and the
    bound -1 or 1, where the test's limit is known (it rejects); ``se`` is the unpooled
    (Wald) standard error, used by the overall row and the always-valid interval.
    """
    n0, n1, c0, c1 = m0.n, m1.n, m0.sum_y, m1.sum_y
    reason = _reasons(n0, n1, 1, "an arm has no customers")
    ok = reason == ""
    s0, s1 = np.where(ok, n0, 1), np.where(ok, n1, 1)
    p0, p1 = c0 / s0, c1 / s1
    d = p1 - p0
    stat, p = _score(c1, s1, c0, s0, np.zeros_like(d), correction)
    low = _bisect(lambda v: _score(c1, s1, c0, s0, v, correction)[1] >= alpha, d, -1.0)
    high = _bisect(lambda v: _score(c1, s1, c0, s0, v, correction)[1] >= alpha, d, 1.0)
    v0, v1 = np.maximum(p0 * (1 - p0), 0.0), np.maximum(p1 * (1 - p1), 0.0)
    df = np.full(np.shape(d), np.inf)
    rel = _relative(p0, p1, v0, v1, s0, s1, alpha, df, p)
    nan = np.full(np.shape(d), np.nan)

    def keep(v):
        return np.where(ok, v, nan)

    return Comparison(
        champion=keep(p0), challenger=keep(p1), estimate=keep(d),
        se=keep(np.sqrt(v0 / s0 + v1 / s1)), ci_low=keep(low), ci_high=keep(high),
        statistic=keep(stat), df=keep(df), p_value=keep(p), relative=keep(rel[0]),
        relative_se=keep(rel[1]), relative_ci_low=keep(rel[2]), relative_ci_high=keep(rel[3]),
        relative_p_value=keep(rel[4]), theta=nan, variance_reduction=nan, reason=reason,
    )  # fmt: skip


def _score(c1, n1, c0, n0, delta, correction: bool) -> tuple[np.ndarray, np.ndarray]:
    """Score statistic and two-sided p-value of H0: p1 - p0 = delta (arrays).

    The restricted maximum-likelihood proportions under H0 solve Miettinen-Nurminen's
    cubic, in Farrington & Manning's closed form (statsmodels 0.15 solves the cubic with the
    groups' roles mixed at delta != 0: its p-values there, and so its intervals, differ;
    ``docs/experiments.md``). Where the restricted variance is 0 the test is
    decided by its limit: p = 1 when the observed difference equals delta, else 0 (at
    delta = -1 or 1 the null puts every customer of an arm on one side, which the data
    contradict unless they show exactly that). Never NaN for n >= 1.
    """
    n = n0 + n1
    with np.errstate(invalid="ignore", divide="ignore"):
        # Farrington & Manning (1990) closed form for the restricted p1 (challenger)
        hat1, hat0, th = c1 / n1, c0 / n0, n0 / n1
        a = 1 + th
        b = -(1 + th + hat1 + th * hat0 + delta * (th + 2))
        c = delta**2 + delta * (2 * hat1 + th + 1) + hat1 + th * hat0
        d = -hat1 * delta * (1 + delta)
        v = b**3 / (3 * a) ** 3 - b * c / (6 * a**2) + d / (2 * a)
        u = np.sign(v) * np.sqrt(np.maximum(b**2 / (3 * a) ** 2 - c / (3 * a), 0.0))
        ratio = np.where(u != 0, v / np.where(u != 0, u, 1) ** 3, 0.0)
        w = (math.pi + np.arccos(np.clip(ratio, -1.0, 1.0))) / 3
        r1 = 2 * u * np.cos(w) - b / (3 * a)
        r1 = np.where(delta == 0, (c0 + c1) / n, r1)
        r1 = np.clip(r1, np.maximum(0.0, delta), np.minimum(1.0, 1.0 + delta))
        r0 = r1 - delta
        var = r1 * (1 - r1) / n1 + r0 * (1 - r0) / n0
        if correction:
            var = var * n / (n - 1)
        diff = c1 / n1 - c0 / n0 - delta
        diff = np.where(np.abs(diff) < 1e-14, 0.0, diff)
        stat = diff / np.sqrt(var)
        p = 2 * stats.norm.sf(np.abs(stat))
    degenerate = ~(var > 0)
    stat = np.where(degenerate, np.where(diff == 0, 0.0, np.where(diff > 0, np.inf, -np.inf)), stat)
    p = np.where(degenerate, np.where(diff == 0, 1.0, 0.0), p)
    if np.isnan(p).any():  # pragma: no cover - guarded above; a NaN here is a bug to report
        raise ArithmeticError("score test: undefined p-value for counts the guard missed")
    return stat, p


def _bisect(accepted, inside: np.ndarray, bound: float, steps: int = 64) -> np.ndarray:
    """The interval's end between ``inside`` (accepted: p = 1 there) and ``bound`` (-1 or
    1): the accepted point nearest the bound, by bisection (64 halvings: exact to 1e-18).
    ``bound`` itself is the answer when the test accepts it."""
    inside = np.asarray(inside, float)
    edge = np.full(inside.shape, bound)
    at_bound = accepted(edge)
    lo, hi = edge.copy(), inside.copy()  # lo rejected, hi accepted
    for _ in range(steps):
        mid = (lo + hi) / 2
        ok = accepted(mid)
        hi = np.where(ok, mid, hi)
        lo = np.where(ok, lo, mid)
    return np.where(at_bound, edge, hi)


def post_stratified(estimate, se, weight) -> tuple[float, float]:
    """Overall effect over segments: (sum w_s estimate_s, sqrt(sum w_s^2 se_s^2)), with the
    weights normalised over the segments given (each segment's share of the customers)."""
    estimate, se, weight = _arr(estimate), _arr(se), _arr(weight)
    w = weight / weight.sum()
    return float((w * estimate).sum()), float(np.sqrt((w**2 * se**2).sum()))


def sequential_rho(alpha: float, tuning: float) -> float:
    """The mixing parameter of the asymptotic confidence sequence, chosen so it is
    narrowest at ``tuning`` customers (Waudby-Smith et al. 2023; GrowthBook's formula)."""
    return math.sqrt((-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning)


def confidence_sequence(estimate, se, n, alpha: float, tuning) -> tuple[np.ndarray, ...]:
    """Always-valid interval and p-value of an asymptotically normal difference.

    ``se``: its standard error now, ``n``: customers in both arms now, ``tuning``: the
    sample size where the sequence should be narrowest. With s^2 = n se^2 and
    rho = :func:`sequential_rho`: half-width = s sqrt(2 (n rho^2 + 1) ln(sqrt(n rho^2 + 1) /
    alpha) / (n rho)^2); p = min(1, sqrt(n rho^2 + 1) exp(-rho^2 n est^2 / (2 se^2 (n rho^2
    + 1)))). Returns (low, high, p) arrays.
    """
    estimate, se, n, tuning = _arr(estimate), _arr(se), _arr(n), _arr(tuning)
    rho2 = np.array(
        [
            sequential_rho(alpha, t) ** 2 if t > 0 else np.nan
            for t in np.broadcast_to(tuning, estimate.shape)
        ]
    )
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        s2 = n * se**2
        tr = n * rho2 + 1
        half = np.sqrt(s2 * 2 * tr * np.log(np.sqrt(tr) / alpha) / (n**2 * rho2))
        st2 = n * estimate**2 / se**2
        p = np.minimum(1.0, np.sqrt(tr) * np.exp(-rho2 * st2 / (2 * tr)))
    bad = ~(se > 0) | ~np.isfinite(estimate)
    nan = np.full(estimate.shape, np.nan)
    return (np.where(bad, nan, estimate - half), np.where(bad, nan, estimate + half),
            np.where(bad, nan, p))  # fmt: skip


def adjust_pvalues(pvalues, method: str) -> np.ndarray:
    """Holm (``holm``) or Benjamini-Hochberg (``fdr_bh``) adjusted p-values over a family
    (NaN entries are left out of the family and stay NaN); as statsmodels ``multipletests``.

    Holm: the k-th smallest of m p-values times (m - k + 1), running maximum, capped at 1.
    BH: the k-th smallest times m / k, running minimum from the largest, capped at 1.
    """
    if method not in ("holm", "fdr_bh"):
        raise ValueError(f"method: 'holm' or 'fdr_bh' (got {method!r})")
    p = np.asarray(pvalues, float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    m = len(ok)
    if not m:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    ranked = p[order]
    k = np.arange(1, m + 1)
    if method == "holm":
        adjusted = np.maximum.accumulate(ranked * (m - k + 1))
    else:
        adjusted = np.minimum.accumulate((ranked * m / k)[::-1])[::-1]
    out[order] = np.minimum(adjusted, 1.0)
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
