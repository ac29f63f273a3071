"""Propensity to pay: a Logit fitted in statsmodels, scored on the engine, and evaluated.

The event (DESIGN §9): a customer owing money at a month end ``as_of`` *pays* when any
payment is dated in ``(as_of, as_of + H days]`` (``H`` = 30 by default); the risk event is
the opposite, *no payment within H days*. The model is trained on a month-end snapshot t0
whose labels are complete (t0 + H <= extraction date), evaluated out of time on a later
month end t1 >= t0 + H whose labels are complete too, and applied to the latest snapshot.

Features (:data:`FEATURES`) are Ibis expressions over snapshot columns, so the same
definitions build the design matrix for fitting (on a seeded sample of at most
``max_rows`` customers) and score every customer on the engine: the fitted coefficients are
compiled into ``1 / (1 + exp(-(b0 + sum b_j x_j)))``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
from ibis.expr.types import Table
from scipy import stats

from . import schema
from .engine import TableLike, inputs
from .errors import InvalidParameterError
from .stability import population_stability, psi_reading

HORIZON_DAYS = 30
#: Loss given default used for expected loss when none is given: unsecured consumer and SME
#: receivables typically lose 45-75 % of the exposure once in default (Basel II foundation
#: IRB uses 45 % for senior unsecured claims); 0.6 is a middle value. A parameter, not data.
DEFAULT_LGD = 0.6


def _log1p(x):
    return (x.fill_null(0.0).cast("float64") + 1.0).ln()


#: Model features: name -> (definition, expression builder over a snapshot table). Missing
#: values get a documented fill and, where informative, an indicator.
FEATURES: dict[str, tuple[str, Callable]] = {
    "log_balance": ("ln(1 + balance)", lambda t: _log1p(t.balance)),
    "log_overdue_balance": ("ln(1 + overdue balance)", lambda t: _log1p(t.overdue_balance)),
    "overdue_share": ("overdue balance / balance (0 without balance)",
                      lambda t: ibis.cases((t.balance > 0, t.overdue_balance / t.balance), else_=0.0)),
    "dpd_months": ("maximum days past due / 30, capped at 24", lambda t: ibis.least(t.max_days_past_due / 30.0, 24.0)),
    "late_payments": ("receivables settled late in the last 6 months (capped at 12)",
                      lambda t: ibis.least(t.late_payments, 12).cast("float64")),
    "broken_promises": ("broken promises in the last 6 months (capped at 5)",
                        lambda t: ibis.least(t.broken_promises, 5).cast("float64")),
    "payments_6m": ("payments in the last 6 months (capped at 12)", lambda t: ibis.least(t.payments, 12).cast("float64")),
    "recency_months": ("days since the last payment / 30, capped at 12; 12 if never paid",
                       lambda t: ibis.least(t.days_since_last_payment.fill_null(360) / 30.0, 12.0)),
    "never_paid": ("1 if the customer never paid", lambda t: t.days_since_last_payment.isnull().cast("float64")),
    "right_party_contacts": ("right-party contacts in the last 6 months (capped at 10)",
                             lambda t: ibis.least(t.right_party_contacts, 10).cast("float64")),
    "valid_phone": ("1 if the phone is valid", lambda t: t.has_valid_phone.cast("float64")),
    "is_new": ("1 if a customer for less than 90 days", lambda t: t.is_new.cast("float64")),
    "company": ("1 for a company", lambda t: (t.customer_type == "company").fill_null(False).cast("float64")),
    "score_z": ("external score, (score - 650) / 100, 0 when missing", lambda t: ((t.score - 650.0) / 100.0).fill_null(0.0)),
    "no_score": ("1 when there is no external score", lambda t: t.score.isnull().cast("float64")),
}  # fmt: skip


def labels(payments: Table, as_of, horizon_days: int = HORIZON_DAYS) -> Table:
    """Customers with a payment in ``(as_of, as_of + horizon_days]`` (column ``paid`` = 1)."""
    as_of = pd.Timestamp(as_of)
    lo, hi = ibis.date(as_of.date()), ibis.date((as_of + pd.Timedelta(days=horizon_days)).date())
    p = payments.filter((payments.paid_at > lo) & (payments.paid_at <= hi))
    return p.select("customer_id").distinct().mutate(paid=ibis.literal(1.0))


def design(snapshot: Table, features: Sequence[str] | None = None) -> Table:
    """The population (customers owing money) with the feature columns, on the engine."""
    names = list(features or FEATURES)
    owing = snapshot.filter(snapshot.balance > 0)
    return owing.select("customer_id", "balance", **{n: FEATURES[n][1](owing) for n in names})


@dataclass
class PropensityModel:
    """A fitted propensity-to-pay Logit: coefficients by feature and the statsmodels result."""

    coefficients: pd.Series  # index: "const" and the feature names
    result: object  # statsmodels LogitResults
    horizon_days: int
    trained_as_of: pd.Timestamp
    rows: int

    @property
    def features(self) -> list[str]:
        return [c for c in self.coefficients.index if c != "const"]

    def score(self, snapshot: TableLike) -> pd.DataFrame | pa.Table | Table:
        """P(pay within H days) per owing customer, computed on the engine.

        Returns ``customer_id``, ``balance`` and ``p_pay`` (a fraction), one row per
        customer with a positive balance: pandas in, pandas out (sorted by
        ``customer_id``); Arrow in, Arrow out; Ibis in, Ibis out.
        """
        with inputs({"snapshot": snapshot}, required=["snapshot"]) as t:
            x = design(t["snapshot"], self.features)
            lp = ibis.literal(float(self.coefficients["const"]))
            for name in self.features:
                lp = lp + x[name] * float(self.coefficients[name])
            out = x.select("customer_id", "balance", p_pay=1.0 / (1.0 + (-lp).exp()))
            return t.as_given(out, order_by="customer_id")


def fit(
    snapshot: TableLike,
    payments: TableLike,
    as_of,
    horizon_days: int = HORIZON_DAYS,
    max_rows: int = 200_000,
    seed: int = 0,
    features: Sequence[str] | None = None,
) -> PropensityModel:
    """Fit the Logit on the snapshot of ``as_of`` against "paid within ``horizon_days``".

    ``snapshot`` and ``payments``: pandas, Arrow or Ibis, in any mix (a pandas snapshot
    with the ``payments`` of a portfolio on a DuckDB file works). At most ``max_rows``
    owing customers are used, a seeded random sample when there are more. The caller makes
    sure the labels are complete (as_of + H <= extraction date).
    """
    import statsmodels.api as sm

    with _with_payments(snapshot, payments, "snapshot") as t:
        frame = _labelled(design(t["snapshot"], features), t["payments"], as_of, horizon_days)
    if len(frame) > max_rows:
        frame = frame.sample(max_rows, random_state=seed).sort_values(
            "customer_id", ignore_index=True
        )
    names = list(features or FEATURES)
    X = sm.add_constant(frame[names].astype(float), has_constant="add")
    result = sm.Logit(frame["paid"].astype(float), X).fit(disp=0, maxiter=200)
    return PropensityModel(result.params, result, horizon_days, pd.Timestamp(as_of), len(frame))


# --------------------------------------------------------------------------- evaluation


def auc(score: np.ndarray, event: np.ndarray) -> float:
    """Area under the ROC curve of ``score`` for a binary ``event`` (ties count one half).

    Computed from ranks: AUC = (R1 - n1 (n1 + 1) / 2) / (n1 n0), the Mann-Whitney U of the
    events over n1 n0. NaN when either class is empty.
    """
    score, event = np.asarray(score, float), np.asarray(event).astype(bool)
    n1, n0 = event.sum(), (~event).sum()
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = stats.rankdata(score)
    return float((ranks[event].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def ks(score: np.ndarray, event: np.ndarray) -> float:
    """Kolmogorov-Smirnov statistic: the largest gap between the score distributions of the
    customers with and without the event."""
    score, event = np.asarray(score, float), np.asarray(event).astype(bool)
    if event.all() or not event.any():
        return float("nan")
    values = np.sort(np.unique(score))
    a = np.searchsorted(np.sort(score[event]), values, side="right") / event.sum()
    b = np.searchsorted(np.sort(score[~event]), values, side="right") / (~event).sum()
    return float(np.max(np.abs(a - b)))


@dataclass
class Discrimination:
    """AUC, Gini (= 2 AUC - 1) and KS of a score for "pays within H days", on ``n`` customers."""

    auc: float
    gini: float
    ks: float
    n: int
    payer_rate: float


def discrimination(score: np.ndarray, paid: np.ndarray) -> Discrimination:
    """Discrimination of a score oriented so that higher means more likely to pay."""
    a = auc(score, paid)
    return Discrimination(
        a, 2 * a - 1, ks(score, paid), len(score), float(np.mean(paid)) if len(paid) else np.nan
    )


def outcomes(
    scored: TableLike,
    payments: TableLike,
    as_of,
    horizon_days: int = HORIZON_DAYS,
) -> pd.DataFrame:
    """``scored`` (customer_id + columns) with ``paid`` (0/1) over the horizon after ``as_of``.

    A pandas DataFrame sorted by ``customer_id``, whatever kinds of tables came in.
    """
    with _with_payments(scored, payments, "scored") as t:
        return _labelled(t["scored"], t["payments"], as_of, horizon_days)


def _with_payments(table: TableLike, payments: TableLike, name: str):
    """:func:`engine.inputs` of a customer-level ``table`` (parameter ``name``) and the
    canonical ``payments``, on one backend."""
    return inputs(
        {name: table, "payments": payments},
        {name: None, "payments": schema.PAYMENTS},
        required=[name, "payments"],
    )


def _labelled(t: Table, payments: Table, as_of, horizon_days: int) -> pd.DataFrame:
    """``t``'s rows with ``paid`` (0/1: a payment within the horizon), sorted by customer."""
    y = labels(payments, as_of, horizon_days)
    j = t.left_join(y, "customer_id").drop("customer_id_right")
    out = j.mutate(paid=j.paid.fill_null(0.0)).to_pandas()
    return out.sort_values("customer_id", ignore_index=True)


def binomial_light(observed_events: int, n: int, predicted_rate: float) -> str:
    """Traffic light of a band's observed event count against its predicted rate.

    Two-sided binomial bounds (OeNB, *Rating Models and Validation*): ``green`` inside the
    central 95 % range, ``yellow`` outside it but inside 99.9 %, ``red`` beyond; ``n/a``
    for an empty band.
    """
    if n == 0 or not 0 < predicted_rate < 1:
        return "n/a"
    dist = stats.binom(n, predicted_rate)
    for level, light in ((0.95, "green"), (0.999, "yellow")):
        lo, hi = dist.ppf((1 - level) / 2), dist.ppf(1 - (1 - level) / 2)
        if lo <= observed_events <= hi:
            return light
    return "red"


def bands(
    frame: pd.DataFrame,
    score: str = "p_pay",
    n_bands: int = 10,
    cutoffs: Sequence[float] | None = None,
    lgd: float = DEFAULT_LGD,
    horizon_days: int = HORIZON_DAYS,
) -> pd.DataFrame:
    """Risk bands with calibration and expected loss.

    ``frame``: one row per customer with ``score`` (P(pay), a fraction), ``balance`` and,
    when outcomes are known, ``paid``. Bands are quantiles of the score (``n_bands``) or
    fixed ``cutoffs``; band 1 is the riskiest. Per band: customers, balance (currency), mean
    predicted payer rate, observed payer rate and its traffic light, and expected loss =
    P(no payment within H days) x EAD (the balance) x LGD, labelled with that event.
    """
    if not 0 <= lgd <= 1:
        raise InvalidParameterError(f"lgd: must be a fraction in [0, 1] (got {lgd})")
    f = frame.copy()
    if cutoffs is not None:
        edges = [-np.inf, *sorted(cutoffs), np.inf]
        f["band"] = pd.cut(f[score], edges, labels=False) + 1
    else:
        f["band"] = pd.qcut(f[score].rank(method="first"), n_bands, labels=False) + 1
    f["expected_loss"] = (1 - f[score]) * f["balance"] * lgd
    g = f.groupby("band")
    out = pd.DataFrame(
        {
            "customers": g.size(),
            "balance": g.balance.sum(),
            "score_min": g[score].min(),
            "score_max": g[score].max(),
            "predicted_payer_rate": g[score].mean(),
            "expected_loss": g.expected_loss.sum(),
        }
    )
    if "paid" in f:
        out["observed_payer_rate"] = g.paid.mean()
        events = g.apply(lambda b: int((b.paid == 0).sum()), include_groups=False)
        out["traffic_light"] = [
            binomial_light(int(events[b]), int(out.customers[b]), 1 - out.predicted_payer_rate[b])
            for b in out.index
        ]
    out["event"] = f"no payment within {horizon_days} days"
    out["lgd"] = lgd
    return out.reset_index()


def score_psi(
    before: np.ndarray, after: np.ndarray, n_bins: int = 10
) -> tuple[float, str, pd.DataFrame]:
    """PSI of a score between two snapshots, on deciles of the first (smoothed; see stability)."""
    edges = np.unique(np.quantile(np.asarray(before, float), np.linspace(0, 1, n_bins + 1)[1:-1]))
    b = pd.Series(np.searchsorted(edges, before, side="right")).value_counts().sort_index()
    a = pd.Series(np.searchsorted(edges, after, side="right")).value_counts().sort_index()
    table = population_stability(b, a)
    total = float(table.psi.sum())
    return total, psi_reading(total), table


def score_distribution(frame: pd.DataFrame, score: str, by: str) -> pd.DataFrame:
    """Per group: customers, mean and the 10/25/50/75/90 % quantiles of ``score``."""
    q = frame.groupby(by)[score].quantile([0.1, 0.25, 0.5, 0.75, 0.9]).unstack()
    q.columns = [f"p{int(c * 100)}" for c in q.columns]
    out = frame.groupby(by)[score].agg(customers="size", mean="mean").join(q)
    return out.reset_index()


def external_score(snapshot: pd.DataFrame, higher_is: str | None) -> pd.Series:
    """The bureau score oriented like P(pay): higher = more likely to pay.

    ``higher_is`` comes from the sources YAML (``safer`` or ``riskier``).
    """
    if higher_is not in ("safer", "riskier"):
        raise InvalidParameterError(
            f"higher_is: expected 'safer' or 'riskier' (from the sources YAML), got {higher_is!r}"
        )
    s = snapshot["score"].astype(float)
    return s if higher_is == "safer" else -s


def training_dates(
    extraction_date, horizon_days: int = HORIZON_DAYS
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """(t0, t1): month ends for training and out-of-time evaluation with complete labels.

    t1 is the latest month end with t1 + H <= extraction date; t0 the latest month end with
    t0 + H <= t1, so the two windows never overlap and the training month is never the
    evaluation month.
    """
    extraction = pd.Timestamp(extraction_date).normalize()
    h = pd.Timedelta(days=horizon_days)
    t1 = pd.offsets.MonthEnd().rollback(extraction - h)
    t0 = pd.offsets.MonthEnd().rollback(t1 - h)
    return t0, t1
