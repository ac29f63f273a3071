"""Readout of a champion/challenger experiment per segment, from engine-side sufficient statistics.

For every customer of ``assignments`` (one experiment) whose outcome window has closed
(``assigned_at + window_days <= extraction date``: reading early is not allowed), the
engine computes: ``paid`` (any payment in ``[assigned_at, assigned_at + window)``),
``collected`` (their sum, currency), ``pre`` (payments in the ``pre_days`` before
assignment: the CUPED covariate) and ``balance`` (the balance owed the day before
assignment). Only sums per segment x arm come back: n, payers, sums, squares and cross
products. Then, per segment and challenger against the champion (the first arm):

- payer rate: score test and score interval (``stats.proportions``);
- collected per customer: Welch t, CUPED-adjusted with the pre-period payments when they
  vary (the adjusted test replaces the raw one; it is not an extra test);
- recovery rate (collected / balance at assignment): delta-method ratio, CUPED-adjusted on
  its linearisation with the same covariate (replacing the raw version);
- SRM: chi-square of arm sizes against the designed weights; p < 0.001 marks the segment
  untrustworthy and withholds its recommendation;
- Holm and Benjamini-Hochberg adjusted p-values over the declared family: primary metrics
  (payer rate, collected per customer) x segments x challengers.

Measured calibration (tests/experiments/test_calibration.py, 2 000 seeded simulations with
champion n = 400, challenger n = 100, payer rate 30 %, lognormal(11, 1.2) amounts for
payers): the payer-rate score interval covers 95.5 % (A/A) and 95.1 % (a +5 point effect),
inside the 99.9 % binomial band around 95 %; the Welch interval on collected per customer
under-covers with such skewed, zero-inflated money at n = 100: 92.9 % (A/A, i.e. 7.1 %
false positives) and 91.6 % (A/B). Read money results of small segments with that in mind.
"""

from __future__ import annotations

from collections.abc import Mapping

import ibis
import numpy as np
import pandas as pd
from ibis.expr.types import Table

from .. import schema
from ..engine import TableLike, inputs
from ..errors import InvalidParameterError, NoResultsYetError
from ..snapshot import allocate
from . import stats as st
from .srm import srm_check

PRIMARY_METRICS = ("payer_rate", "collected_per_customer")


def _date(d):
    return ibis.date(pd.Timestamp(d).date())


def outcome_stats(
    tables: Mapping[str, TableLike],
    experiment_id: str,
    extraction_date,
    window_days: int = 30,
    pre_days: int = 90,
    winsorize: float | None = None,
    cost_per_action: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Sufficient statistics per segment x arm (one small frame; rows never leave the engine).

    ``winsorize``: a quantile such as 0.99: each customer's collected amount is capped at
    that quantile of its segment, computed over both arms together (DESIGN §9: pooled caps
    keep the arms comparable); ``cap`` reports it per segment (currency).

    The strategy's cost: ``contacts`` (actions in the outcome window), ``costed_contacts``
    (those with a cost) and ``sum_cost`` (currency): each action costs
    ``cost_per_action[channel]`` when the channel is in that table, else its own ``cost``.
    """
    if winsorize is not None and not 0.5 < winsorize < 1:
        raise InvalidParameterError(
            f"winsorize: a quantile in (0.5, 1), e.g. 0.99 (got {winsorize})"
        )
    with _inputs(tables) as t:
        a = t["assignments"]
        a = a.filter(a.experiment_id == experiment_id)
        closed = a.assigned_at + ibis.interval(days=window_days) <= _date(extraction_date)
        dates = _check_assignments(a, experiment_id, closed)
        a = a.filter(closed)
        if not dates:
            raise NoResultsYetError(
                f"experiment '{experiment_id}': no assigned customer has a closed outcome window "
                f"by {pd.Timestamp(extraction_date).date()}"
            )
        receivables, payments, adjustments = t["receivables"], t["payments"], t["adjustments"]
        balances = []
        for d in dates:
            b = allocate(
                receivables, payments, adjustments, pd.Timestamp(d) - pd.Timedelta(days=1)
            ).balances()
            balances.append(
                b.group_by("customer_id")
                .aggregate(balance=b.balance.sum())
                .mutate(assigned_at=_date(d))
            )
        bal = balances[0].union(*balances[1:]) if len(balances) > 1 else balances[0]
        p = payments.view()
        j = a.left_join(p, [a.customer_id == p.customer_id, p.paid_at >= a.assigned_at - ibis.interval(days=pre_days),
                            p.paid_at < a.assigned_at + ibis.interval(days=window_days)])  # fmt: skip
        in_window = j.paid_at >= j.assigned_at
        per = j.group_by("customer_id", "segment", "arm", "assigned_at").aggregate(
            collected=j.amount.sum(where=in_window).fill_null(0.0),
            pre=j.amount.sum(where=~in_window).fill_null(0.0),
            payments=in_window.fill_null(False).sum(),
        )
        per = per.left_join(bal.view(), ["customer_id", "assigned_at"]).drop(
            "customer_id_right", "assigned_at_right"
        )
        per = per.mutate(balance=per.balance.fill_null(0.0), paid=(per.payments > 0).cast("int64"))
        if winsorize is not None:
            caps = per.group_by("segment").aggregate(cap=per.collected.quantile(winsorize))
            per = per.left_join(caps, "segment").drop("segment_right")
            per = per.mutate(collected=ibis.least(per.collected, per.cap))
        else:
            per = per.mutate(cap=ibis.null("float64"))
        y, x, b = per.collected, per.pre, per.balance
        agg = per.group_by("segment", "arm").aggregate(
            cap=per.cap.max(),
            n=per.count(), payers=per.paid.sum(),
            sum_y=y.sum(), sum_y2=(y * y).sum(), sum_x=x.sum(), sum_x2=(x * x).sum(), sum_xy=(x * y).sum(),
            sum_b=b.sum(), sum_b2=(b * b).sum(), sum_yb=(y * b).sum(), sum_xb=(x * b).sum(),
        )  # fmt: skip
        out = agg.to_pandas()
        cost = _window_costs(t["contacts"], a, window_days, cost_per_action)
    out = out.merge(cost, on=["segment", "arm"], how="left").fillna(
        {"contacts": 0, "costed_contacts": 0, "sum_cost": 0.0}
    )
    return out.sort_values(["segment", "arm"], ignore_index=True)


#: the tables a readout reads; adjustments and contacts may be absent (then empty)
_SPECS = {n: schema.TABLES[n] for n in ("assignments", "receivables", "payments", "adjustments", "contacts")}  # fmt: skip
_REQUIRED = ("assignments", "receivables", "payments")


def _inputs(tables: Mapping[str, TableLike]):
    """:func:`engine.inputs` of the tables a readout reads, on one backend."""
    return inputs(tables, _SPECS, required=_REQUIRED, parameter="tables")


def _window_costs(c: Table, a: Table, window_days: int, cost_per_action) -> pd.DataFrame:
    """Per segment x arm: actions ``c`` in the outcome window and their cost (see outcome_stats)."""
    columns = ["segment", "arm", "contacts", "costed_contacts", "sum_cost"]
    j = a.join(c, [a.customer_id == c.customer_id, c.at >= a.assigned_at,
                   c.at < a.assigned_at + ibis.interval(days=window_days)])  # fmt: skip
    if cost_per_action:
        table_price = j.channel.substitute({k: float(v) for k, v in cost_per_action.items()},
                                           else_=ibis.null("float64"))  # fmt: skip
        price = table_price.coalesce(j.cost.cast("float64"))
    else:
        price = j.cost.cast("float64")
    agg = j.group_by("segment", "arm").aggregate(
        contacts=j.count(), costed_contacts=price.count(), sum_cost=price.sum().fill_null(0.0)
    )
    return agg.to_pandas()[columns]


def _check_assignments(a: Table, experiment_id: str, closed) -> list:
    """Refuse an experiment that cannot be read: unknown, one arm, customers assigned twice.

    Returns the assignment dates whose outcome window is ``closed`` (one scan for both).
    """
    summary = (
        a.aggregate(
            rows=a.count(),
            customers=a.customer_id.nunique(),
            arms=a.arm.nunique(),
            dates=a.assigned_at.collect(where=closed, distinct=True),
        )  # fmt: skip
        .to_pandas()
        .iloc[0]
    )
    if summary.rows == 0:
        raise InvalidParameterError(f"experiment '{experiment_id}': no assignments")
    if summary.arms < 2:
        raise InvalidParameterError(
            f"experiment '{experiment_id}': only one arm was assigned; a readout compares arms"
        )
    if summary.customers < summary.rows:
        twice = (
            a.group_by("customer_id").aggregate(k=a.count()).filter(ibis._.k > 1).count().execute()
        )
        raise InvalidParameterError(
            f"experiment '{experiment_id}': {twice} customers are assigned more than once "
            "(a customer belongs to one arm and one segment)"
        )
    return sorted(summary.dates) if summary.dates is not None else []


def readout(
    stats_frame: pd.DataFrame,
    weights: Mapping,
    alpha: float = 0.05,
    aa: bool = False,
) -> pd.DataFrame:
    """Per segment x challenger x metric: estimate, CI, p-values (raw, Holm, BH), SRM flag.

    ``weights``: the designed arm weights (arm -> weight, or segment -> {arm: weight}); the
    first arm is the champion. ``aa``: the arms are identical (an A/A calibration check):
    the result is labelled as such and any p < ``alpha`` gets a warning about the data or
    the assignment instead of being read as an effect.
    """
    rows = []
    counts = stats_frame.rename(columns={"n": "customers"})[["segment", "arm", "customers"]]
    srm = srm_check(counts, weights).set_index("segment")
    for seg, g in stats_frame.groupby("segment", sort=False):
        w = weights.get(seg) if all(isinstance(v, Mapping) for v in weights.values()) else weights
        arms = list(w)
        champion = arms[0]
        by_arm = g.set_index("arm")
        if champion not in by_arm.index:
            continue
        c = by_arm.loc[champion]
        for challenger in arms[1:]:
            if challenger not in by_arm.index:
                for metric in ("payer_rate", "collected_per_customer", "recovery_rate"):
                    rows.append({"segment": seg, "challenger": challenger, "metric": metric,
                                 "n_champion": int(c.n), "n_challenger": 0, "reason": "no customers in this arm",
                                 "srm_p_value": srm.loc[seg, "p_value"], "srm": bool(srm.loc[seg, "srm"])})  # fmt: skip
                continue
            t = by_arm.loc[challenger]
            results = {
                "payer_rate": st.proportions(st.Proportion(int(c.n), int(c.payers)), st.Proportion(int(t.n), int(t.payers)), alpha),
                "collected_per_customer": _money(c, t, alpha),
                "recovery_rate": _recovery(c, t, alpha),
            }  # fmt: skip
            for metric, r in results.items():
                rows.append({
                    "segment": seg, "challenger": challenger, "metric": metric,
                    "n_champion": int(c.n), "n_challenger": int(t.n),
                    "champion": r.champion, "challenger_value": r.challenger,
                    "estimate": r.estimate, "ci_low": r.ci_low, "ci_high": r.ci_high,
                    "relative_lift": r.relative_lift, "p_value": r.p_value, "reason": r.reason,
                    "variance_reduction": r.extra,
                    "srm_p_value": srm.loc[seg, "p_value"], "srm": bool(srm.loc[seg, "srm"]),
                })  # fmt: skip
    out = pd.DataFrame(rows)
    family = out.metric.isin(PRIMARY_METRICS)
    out["p_holm"] = np.nan
    out["p_bh"] = np.nan
    out.loc[family, "p_holm"] = st.adjust_pvalues(out.loc[family, "p_value"], "holm")
    out.loc[family, "p_bh"] = st.adjust_pvalues(out.loc[family, "p_value"], "fdr_bh")
    out["srm"] = out["srm"].fillna(False).astype(bool)
    out["reason"] = out["reason"].fillna("")
    out["trustworthy"] = ~out["srm"]
    out["calibration_check"] = aa
    out["warning"] = ""
    if aa:
        flagged = out.p_value < alpha
        out.loc[flagged, "warning"] = (
            "A/A check: identical arms differ significantly; inspect the data and the assignment"
        )
    return out


def _joint(row, y: str, x: str) -> st.JointStats:
    names = {"y": ("sum_y", "sum_y2"), "x": ("sum_x", "sum_x2"), "b": ("sum_b", "sum_b2")}
    cross = {("y", "x"): "sum_xy", ("y", "b"): "sum_yb"}[(y, x)]
    return st.JointStats(int(row.n), float(row[names[y][0]]), float(row[names[x][0]]),
                         float(row[names[y][1]]), float(row[names[x][1]]), float(row[cross]))  # fmt: skip


def _recovery(c, t, alpha: float) -> st.Comparison:
    """Recovery rate (collected / balance at assignment): CUPED on its linearisation when the
    pre-period covariate varies, else the plain delta-method ratio."""

    def pack(r):
        return st.RatioCovariateStats(int(r.n), float(r.sum_y), float(r.sum_b), float(r.sum_x), float(r.sum_y2),
                                      float(r.sum_b2), float(r.sum_x2), float(r.sum_yb), float(r.sum_xy), float(r.sum_xb))  # fmt: skip

    jc, jt = _joint(c, "y", "x"), _joint(t, "y", "x")
    if min(jc.n, jt.n) >= 2 and (jc.cov()[1] > 0 or jt.cov()[1] > 0):
        return st.cuped_ratio(pack(c), pack(t), alpha)
    return st.ratio(_joint(c, "y", "b"), _joint(t, "y", "b"), alpha)


def _money(c, t, alpha: float) -> st.Comparison:
    """Collected per customer: CUPED on pre-period payments when they vary, else Welch."""
    jc, jt = _joint(c, "y", "x"), _joint(t, "y", "x")
    has_covariate = min(jc.n, jt.n) >= 2 and (jc.cov()[1] > 0 or jt.cov()[1] > 0)
    if has_covariate:
        return st.cuped(jc, jt, alpha)
    return st.welch(
        st.SampleMean(jc.n, jc.sum_y, jc.sum_y2), st.SampleMean(jt.n, jt.sum_y, jt.sum_y2), alpha
    )


def survival_counts(
    tables: Mapping[str, TableLike], experiment_id: str, extraction_date, window_days: int = 30
) -> pd.DataFrame:
    """Per segment x arm x day: customers whose first payment came that day after assignment
    (``event`` 1) or who had none within the window (``event`` 0, censored at
    ``window_days``); aggregated on the engine. Only closed windows count."""
    with _inputs(tables) as t:
        a = t["assignments"]
        a = a.filter(a.experiment_id == experiment_id)
        a = a.filter(a.assigned_at + ibis.interval(days=window_days) <= _date(extraction_date))
        p = t["payments"].view()
        j = a.left_join(p, [a.customer_id == p.customer_id, p.paid_at >= a.assigned_at,
                            p.paid_at < a.assigned_at + ibis.interval(days=window_days)])  # fmt: skip
        first = j.group_by("customer_id", "segment", "arm", "assigned_at").aggregate(
            first=j.paid_at.min()
        )
        event = first.first.notnull()
        days = ibis.cases(
            (event, first.first.delta(first.assigned_at, unit="day") + 1), else_=window_days
        )
        f = first.mutate(time=days, event=event.cast("int64"))
        out = f.group_by("segment", "arm", "time", "event").aggregate(n=f.count()).to_pandas()
    return out.sort_values(["segment", "arm", "time", "event"], ignore_index=True)


def survival_readout(counts: pd.DataFrame, weights: Mapping) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Kaplan-Meier curves per segment x arm and a log-rank test per segment x challenger.

    Returns (curves: segment, arm, days, survival = share not yet paid; tests: segment,
    challenger, chi2, p_value). Fitted with statsmodels ``SurvfuncRight`` on the counts
    (frequency weights); the test is :func:`stats.logrank`.
    """
    from statsmodels.duration.survfunc import SurvfuncRight

    curves, tests = [], []
    for seg, g in counts.groupby("segment", sort=False):
        w = weights.get(seg) if all(isinstance(v, Mapping) for v in weights.values()) else weights
        arms = list(w)
        for arm, h in g.groupby("arm"):
            if h.event.sum() == 0:
                continue
            sf = SurvfuncRight(
                h.time.to_numpy(float), h.event.to_numpy(), freq_weights=h.n.to_numpy(float)
            )
            curves.append(
                pd.DataFrame(
                    {"segment": seg, "arm": arm, "days": sf.surv_times, "survival": sf.surv_prob}
                )
            )
        for challenger in arms[1:]:
            pair = g[g.arm.isin([arms[0], challenger])].copy()
            pair["group"] = (pair.arm == challenger).astype(int)
            chi2, p = st.logrank(pair)
            tests.append({"segment": seg, "challenger": challenger, "chi2": chi2, "p_value": p})
    curves_frame = (
        pd.concat(curves, ignore_index=True)
        if curves
        else pd.DataFrame(columns=["segment", "arm", "days", "survival"])
    )
    return curves_frame, pd.DataFrame(tests)


def heterogeneity(result: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Does the effect differ across segments? Cochran's Q per metric x challenger.

    Standard errors are read off each segment's interval, (high - low) / (2 z): exact for
    the Welch and delta-method intervals, approximate for the (asymmetric) score interval.
    Segments marked untrustworthy by SRM are left out.
    """
    from scipy import stats as sps

    z = sps.norm.ppf(1 - alpha / 2)
    rows = []
    ok = result[result.trustworthy & result.estimate.notna()]
    for (metric, challenger), g in ok.groupby(["metric", "challenger"]):
        se = (g.ci_high - g.ci_low) / (2 * z)
        q, df, p = st.cochran_q(g.estimate, se)
        rows.append(
            {
                "metric": metric,
                "challenger": challenger,
                "segments": len(g),
                "q": q,
                "df": df,
                "p_value": p,
            }
        )
    return pd.DataFrame(rows)


def recommend(
    result: pd.DataFrame,
    monthly_customers: Mapping[str, float],
    cost_per_customer: Mapping | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    weights: Mapping | None = None,
) -> pd.DataFrame:
    """Per segment x challenger: the arm to run and the money per month if rolled out.

    ``cost_per_customer``: arm -> cost per customer (currency), or segment -> {arm: cost};
    the challenger's extra cost is its cost minus the champion's (the first arm of
    ``weights``, arm -> weight or segment -> {arm: weight}; default the arm "champion").

    A challenger wins when its payer rate or collected per customer is better with a
    Holm-adjusted p < ``alpha``; the champion stays when the challenger is significantly
    worse. Money per month = effect on collected per customer (with its CI) x the segment's
    customers per month, minus the challenger's extra cost per customer x those customers.
    Otherwise "keep testing", with the extra customers needed to detect the observed payer
    rate difference (at least the design's 3 points) with ``power`` — or "keep champion"
    when there are already enough customers for that and nothing showed. A segment with a
    sample-ratio mismatch gets no recommendation. ``code`` names the decision for reports
    (``run_challenger``, ``run_champion``, ``keep_champion``, ``keep_testing``,
    ``withheld_srm``, ``calibration``); ``decision`` says it in words.
    """
    from statsmodels.stats.power import NormalIndPower

    from .design import _h

    cost = cost_per_customer or {}
    nested = bool(cost) and all(isinstance(v, Mapping) for v in cost.values())
    rows = []
    for (seg, challenger), g in result.groupby(["segment", "challenger"], sort=False):
        by = g.set_index("metric")
        payer, money = by.loc["payer_rate"], by.loc["collected_per_customer"]
        row = {"segment": seg, "challenger": challenger}
        per_month = float(monthly_customers.get(seg, np.nan))
        arm_cost = cost.get(seg, {}) if nested else cost
        w = weights or {}
        w = w.get(seg, {}) if w and all(isinstance(v, Mapping) for v in w.values()) else w
        champion = next(iter(w), "champion")
        extra_cost = float(arm_cost.get(challenger, 0.0)) - float(arm_cost.get(champion, 0.0))
        row["extra_cost_per_customer"] = extra_cost
        if bool(payer.get("calibration_check", False)):
            row.update(decision="A/A calibration check: no recommendation", arm=None,
                       code="calibration")  # fmt: skip
            rows.append(row)
            continue
        if bool(payer.srm):
            row.update(decision="withheld: sample-ratio mismatch", arm=None, code="withheld_srm")
            rows.append(row)
            continue
        significant = [(m, r) for m, r in (("payer_rate", payer), ("collected_per_customer", money))
                       if r.p_holm == r.p_holm and r.p_holm < alpha]  # fmt: skip
        if significant:
            better = any(r.estimate > 0 for _, r in significant)
            arm = challenger if better else champion
            row.update(
                decision=f"run {arm}", arm=arm, code=f"run_{'challenger' if better else 'champion'}"
            )
            sign = 1 if better else 0
            row["money_per_month"] = sign * (money.estimate - extra_cost) * per_month
            row["money_ci_low"] = sign * (money.ci_low - extra_cost) * per_month
            row["money_ci_high"] = sign * (money.ci_high - extra_cost) * per_month
        else:
            p0, n = float(payer.champion), int(payer.n_champion + payer.n_challenger)
            effect = max(
                abs(float(payer.estimate)) if payer.estimate == payer.estimate else 0.0, 0.03
            )
            share_c = payer.n_champion / n
            ratio = (1 - share_c) / share_c
            needed = np.nan
            if 0 < p0 < 1 and p0 + effect < 1:
                n1 = NormalIndPower().solve_power(
                    effect_size=abs(_h(p0 + effect, p0)), alpha=alpha, power=power, ratio=ratio
                )
                needed = int(np.ceil(float(np.squeeze(n1)) / share_c))
            if needed == needed and needed <= n:
                # enough customers to see an effect of the design's size, and none was seen
                row.update(decision="keep champion: no effect of 3 points or more", arm=champion,
                           code="keep_champion", extra_customers_needed=0)  # fmt: skip
            else:
                extra = needed - n if needed == needed else np.nan
                row.update(decision="keep testing", arm=None, code="keep_testing",
                           extra_customers_needed=extra)  # fmt: skip
        rows.append(row)
    return pd.DataFrame(rows)
