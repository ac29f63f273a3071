"""Readout of a champion/challenger experiment: engine sums, then the statistics and decisions.

1. :func:`outcome_stats` (engine): the customers to read at ``as_of`` and each one's
   outcome window ``[assigned_at, assigned_at + window_days)``. A fixed-horizon readout
   reads the customers whose window has closed (its last day, ``assigned_at +
   window_days - 1``, is on or before ``as_of``). A sequential look at ``as_of`` reads
   every customer assigned at least 7 days earlier, with outcomes up to ``min(as_of,
   assigned_at + window_days - 1)``. Only sums per segment x arm x metric come back
   (:mod:`.metrics`).
2. :func:`compare`: per segment x challenger x metric, the champion against the challenger
   (:mod:`.stats`): proportions by the score test, means by Welch, ratios by the delta
   method; mean and ratio metrics also CUPED-adjusted with their pre-period value. The row
   the decision reads (``used``) is the CUPED one when the config asks for it and the
   covariate varies; the raw one is kept beside it for information. An ``overall`` row per
   challenger x metric post-stratifies the segments (weights: each segment's share of the
   customers read). Sample-ratio mismatch is checked per segment and over the whole
   experiment (p < 0.001). Holm and Benjamini-Hochberg adjust the declared family: the
   primary metric's used rows x segments x challengers (DESIGN §9); secondary metrics keep
   uncorrected p-values. With ``sequential`` the used rows also carry always-valid
   intervals and p-values, and the decision reads those.
3. :func:`decide`: per segment x challenger, ``run_challenger``, ``stop_challenger``
   (``worse`` or ``futile``), ``keep_testing`` (customers and weeks still needed),
   ``withheld_srm`` or ``calibration`` (A/A), with the money per month at stake.

Measured calibration (tests/experiments/test_calibration.py, 2 000 seeded simulations with
champion n = 400, challenger n = 100, payer rate 30 %, lognormal(11, 1.2) amounts for
payers): the payer-rate score interval covers 95.5 % (A/A) and 95.1 % (a +5 point effect),
inside the 99.9 % binomial band around 95 %; the Welch interval on collected per customer
under-covers with such skewed, zero-inflated money at n = 100: 92.9 % (A/A, i.e. 7.1 %
false positives) and 91.6 % (A/B). Read money results of small segments with that in mind.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import ibis
import numpy as np
import pandas as pd
from ibis.expr.types import Table
from scipy import stats as sps

from .. import schema
from ..engine import TableLike, inputs, pull
from ..errors import InvalidParameterError, NoResultsYetError
from . import stats as st
from .metrics import MetricSpec, customer_values, moments
from .srm import design_shares, srm_check, srm_overall

#: days a customer must have been assigned before a sequential look reads them
LOOK_DELAY_DAYS = 7
WEEKS_PER_MONTH = 52 / 12


def _date(d):
    return ibis.date(pd.Timestamp(d).date())


@dataclass
class OutcomeStats:
    """What the engine returns: ``moments`` (segment, arm, metric, n and sums, ``cap``)
    and ``arms`` (segment, arm, n and the window's ``actions``, ``costed_actions``,
    ``cost`` in currency)."""

    moments: pd.DataFrame
    arms: pd.DataFrame


def outcome_stats(
    tables: Mapping[str, TableLike],
    experiment_id: str,
    as_of,
    specs: Mapping[str, MetricSpec],
    window_days: int = 30,
    pre_days: int = 90,
    winsorize: float | None = None,
    cost_per_action: Mapping[str, float] | None = None,
    sequential: bool = False,
) -> OutcomeStats:
    """Sufficient statistics per segment x arm x metric at ``as_of`` (module docstring).

    Raises :class:`NoResultsYetError` when nobody can be read yet and
    :class:`InvalidParameterError` for an experiment that cannot be read (unknown, one
    arm, customers assigned twice).
    """
    if winsorize is not None and not 0.5 < winsorize < 1:
        raise InvalidParameterError(
            f"winsorize: a quantile in (0.5, 1), e.g. 0.99 (got {winsorize})"
        )
    with _inputs(tables) as t:
        a = _population(t["assignments"], experiment_id, as_of, window_days, sequential)
        per = customer_values(a, t, specs, pre_days, cost_per_action)
        frame, arms = moments(per, specs, winsorize)
    return OutcomeStats(frame, arms)


def _population(a: Table, experiment_id: str, as_of, window_days: int, sequential: bool) -> Table:
    """The assignments read at ``as_of``, with ``horizon``: the exclusive end of each
    customer's outcome window (module docstring)."""
    every = a
    a = a.filter(a.experiment_id == experiment_id)
    window = ibis.interval(days=window_days)
    end = _date(as_of)
    if sequential:
        readable = a.assigned_at <= end - ibis.interval(days=LOOK_DELAY_DAYS)
        horizon = ibis.least(a.assigned_at + window, end + ibis.interval(days=1))
        when = f"by {pd.Timestamp(as_of).date()} (a look reads customers assigned {LOOK_DELAY_DAYS} days or more before it)"  # fmt: skip
    else:
        readable = a.assigned_at + window <= end + ibis.interval(days=1)  # last day <= as_of
        horizon = a.assigned_at + window
        when = f"has a closed outcome window by {pd.Timestamp(as_of).date()}"
    if _check_assignments(a, experiment_id, readable, every) == 0:
        raise NoResultsYetError(f"experiment '{experiment_id}': no assigned customer {when}")
    a = a.filter(readable)
    return a.mutate(horizon=horizon.cast("date"))


#: the tables a readout reads; adjustments and contacts may be absent
_SPECS = {n: schema.TABLES[n] for n in ("assignments", "receivables", "payments", "adjustments", "contacts")}  # fmt: skip
_REQUIRED = ("assignments", "receivables", "payments")


def _inputs(tables: Mapping[str, TableLike]):
    """:func:`engine.inputs` of the tables a readout reads, on one backend."""
    return inputs(tables, _SPECS, required=_REQUIRED, parameter="tables")


def _check_assignments(a: Table, experiment_id: str, readable, every: Table) -> int:
    """Refuse an experiment that cannot be read: unknown, one arm, customers assigned twice.

    Returns how many customers are ``readable`` (one scan for both).
    """
    summary = pull(
        a.aggregate(
            rows=a.count(),
            customers=a.customer_id.nunique(),
            arms=a.arm.nunique(),
            readable=readable.cast("int64").sum(),
        ),
        "assignment counts",
    ).iloc[0]
    if summary.rows == 0:
        ids = sorted(
            pull(every.select("experiment_id").distinct(), "experiment ids").experiment_id.dropna()
        )
        raise InvalidParameterError(
            f"experiment_id: '{experiment_id}' has no assignments; the assignments table holds "
            f"{ids[:20] or 'none'}"
        )
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
    return int(summary.readable or 0)


@dataclass(frozen=True)
class Settings:
    """The statistical settings of a readout (from the experiment config)."""

    primary: str = "collected_per_customer"
    alpha: float = 0.05
    power: float = 0.8
    cuped: bool = True
    cuped_theta: str = "within_arm"
    score_correction: bool = True
    sequential: bool = False
    sequential_tuning: int | None = None
    aa: bool = False

    @classmethod
    def of(cls, cfg) -> Settings:
        return cls(cfg.primary_metric, cfg.alpha, cfg.power, cfg.cuped, cfg.cuped_theta,
                   cfg.score_correction, cfg.sequential, cfg.sequential_tuning, cfg.aa)  # fmt: skip


RESULT_COLUMNS = [
    "segment", "challenger", "metric", "role", "adjustment", "used", "n_champion",
    "n_challenger", "champion", "challenger_value", "estimate", "se", "ci_low", "ci_high",
    "statistic", "df", "p_value", "relative", "relative_se", "relative_ci_low",
    "relative_ci_high", "relative_p_value", "theta", "variance_reduction", "reason",
]  # fmt: skip
SUMS = ("n", "sum_y", "sum_y2", "sum_x", "sum_x2", "sum_xy", "sum_b", "sum_b2", "sum_yb", "sum_xb")


def compare(
    frame: pd.DataFrame,
    weights: Mapping,
    specs: Mapping[str, MetricSpec],
    settings: Settings = Settings(),
    by: Sequence[str] = (),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per segment x challenger x metric (x raw / CUPED): the comparisons, and the overall
    rows per challenger x metric (module docstring). ``frame``: :attr:`OutcomeStats.moments`;
    ``by``: columns of ``frame`` that hold separate readouts (e.g. ``look``, the date of
    each weekly look), all computed at once.

    Returns ``(results, overall)``. ``results`` columns: :data:`RESULT_COLUMNS` plus
    ``p_holm`` / ``p_bh`` (the family's rows), ``srm_p_value`` / ``srm`` (the segment),
    ``portfolio_srm_p_value`` / ``portfolio_srm``, ``trustworthy``, ``calibration_check``,
    ``warning`` and, with ``sequential``, ``seq_ci_low``, ``seq_ci_high``, ``seq_p_value``
    and ``tuning`` (customers). ``overall`` has the same statistics per challenger x metric x
    adjustment, with ``segments`` (how many entered).
    """
    by = list(by)
    if frame.empty:
        return pd.DataFrame(columns=by + RESULT_COLUMNS), pd.DataFrame()
    design = design_shares(weights, frame.segment)
    known = frame[["segment", "arm"]].drop_duplicates().merge(design, how="left", indicator=True)
    stray = known[known._merge == "left_only"]
    if len(stray):
        seg = stray.segment.iloc[0]
        arms = sorted(stray.loc[stray.segment == seg, "arm"])
        raise InvalidParameterError(f"segment {seg!r}: arms {arms} are not in the design")
    champions = design[design.position == 0][["segment", "arm"]].rename(
        columns={"arm": "champion_arm"}
    )
    # an arm designed at weight 0 is compared only where it has customers (then SRM fails)
    present = design.merge(frame[["segment", "arm"]].drop_duplicates(), how="left", indicator=True)
    tested = (present.share > 0) | (present._merge == "both")
    pairs = present[(present.position > 0) & tested][["segment", "arm"]]
    pairs = pairs.rename(columns={"arm": "challenger"})
    pairs = pairs.merge(champions, on="segment")
    pairs = pairs.merge(pd.DataFrame({"metric": list(specs)}), how="cross")
    if by:
        pairs = pairs.merge(frame[by].drop_duplicates(), how="cross")
    sums = frame.reindex(columns=by + ["segment", "arm", "metric", *SUMS]).fillna(
        {s: 0.0 for s in SUMS}
    )
    key = by + ["segment", "metric"]
    pairs = pairs.merge(sums.rename(columns={"arm": "champion_arm"} | {s: f"{s}_0" for s in SUMS}),
                        on=key + ["champion_arm"], how="left")  # fmt: skip
    pairs = pairs.merge(sums.rename(columns={"arm": "challenger"} | {s: f"{s}_1" for s in SUMS}),
                        on=key + ["challenger"], how="left")  # fmt: skip
    pairs = pairs.fillna({f"{s}_{i}": 0.0 for s in SUMS for i in (0, 1)})
    order = {m: i for i, m in enumerate(specs)}
    parts = []
    for metric, spec in specs.items():
        p = pairs[pairs.metric == metric].reset_index(drop=True)
        a = st.Moments(**{s: p[f"{s}_0"].to_numpy(float) for s in SUMS})
        b = st.Moments(**{s: p[f"{s}_1"].to_numpy(float) for s in SUMS})
        tests = _tests(spec, a, b, settings)
        covariate = (a.var_x > 0) | (b.var_x > 0)
        base = p[by + ["segment", "challenger", "metric"]].assign(
            n_champion=a.n.astype(int), n_challenger=b.n.astype(int),
            champion_se=_champion_se(spec, a), _m=order[metric],
        )  # fmt: skip
        for adjustment, comp in tests.items():
            values = comp.frame().rename(columns={"challenger": "challenger_value"})
            part = pd.concat([base, values], axis=1).assign(adjustment=adjustment)
            if adjustment == "cuped":
                part = part[covariate].assign(used=settings.cuped)
            else:
                part["used"] = ~covariate if (settings.cuped and "cuped" in tests) else True
            parts.append(part)
    out = pd.concat(parts, ignore_index=True)
    out["role"] = np.where(out.metric == settings.primary, "primary", "secondary")
    out = _with_srm(out, frame, weights, by)
    if settings.sequential:
        out = _with_sequential(out, specs, settings, by)
    out = _with_family(out, settings, by)
    out["calibration_check"] = settings.aa
    out["warning"] = ""
    if settings.aa:
        p = out.seq_p_value if settings.sequential else out.p_value
        out.loc[out.used & (p < settings.alpha), "warning"] = (
            "A/A check: identical arms differ significantly; inspect the data and the assignment"
        )
    out = out.sort_values(by + ["_m", "adjustment"], kind="stable").drop(columns="_m")
    out = out.reset_index(drop=True)
    return out, _overall(out, frame, settings, by)


def _tests(spec: MetricSpec, a: st.Moments, b: st.Moments, s: Settings) -> dict[str, st.Comparison]:
    """The raw test of the metric's type, and its CUPED version when it has a covariate."""
    if spec.type == "proportion":
        return {"raw": st.proportion_test(a, b, s.alpha, s.score_correction)}
    test = st.mean_test if spec.type == "mean" else st.ratio_test
    out = {"raw": test(a, b, s.alpha)}
    if spec.uses_covariate:
        out["cuped"] = test(a, b, s.alpha, cuped=s.cuped_theta)
    return out


def _champion_se(spec: MetricSpec, a: st.Moments) -> np.ndarray:
    """Standard error of the champion's value (the overall row's relative lift needs it)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        if spec.type == "proportion":
            p = a.mean_y
            return np.sqrt(p * (1 - p) / a.n)
        if spec.type == "mean":
            return np.sqrt(a.var_y / a.n)
        return np.sqrt(a.linearised()[1] / a.n)


def _with_srm(
    out: pd.DataFrame, frame: pd.DataFrame, weights: Mapping, by: list[str]
) -> pd.DataFrame:
    """The sample-ratio checks: per segment and over the whole experiment (p < 0.001)."""
    counts = frame.drop_duplicates(by + ["segment", "arm"]).rename(columns={"n": "customers"})
    counts = counts[by + ["segment", "arm", "customers"]]
    per = srm_check(counts, weights, by=by).rename(columns={"p_value": "srm_p_value"})
    whole = srm_overall(counts, weights, by=by).rename(
        columns={"p_value": "portfolio_srm_p_value", "srm": "portfolio_srm"}
    )
    out = out.merge(per[by + ["segment", "srm_p_value", "srm"]], on=by + ["segment"], how="left")
    if by:
        out = out.merge(whole[by + ["portfolio_srm_p_value", "portfolio_srm"]], on=by, how="left")
    else:
        out["portfolio_srm_p_value"] = whole.portfolio_srm_p_value.iloc[0]
        out["portfolio_srm"] = bool(whole.portfolio_srm.iloc[0])
    out["srm"] = out.srm.fillna(False).astype(bool)
    out["portfolio_srm"] = out.portfolio_srm.fillna(False).astype(bool)
    out["trustworthy"] = ~out.srm & ~out.portfolio_srm
    return out


def tuning_customers(se, n, mde, alpha: float, power: float):
    """Customers (both arms) a fixed-horizon test needs to detect ``mde`` with ``power``:
    the current ``n`` scaled by (se (z_{1-alpha/2} + z_power) / mde)^2, as the standard
    error shrinks with the square root of the sample (NaN where undefined; arrays too)."""
    z = sps.norm.ppf(1 - alpha / 2) + sps.norm.ppf(power)
    se, n, mde = (np.asarray(v, dtype=float) for v in (se, n, mde))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where((se > 0) & (mde > 0) & (n > 0), n * (se * z / mde) ** 2, np.nan)
    return out if out.ndim else float(out)


def _with_sequential(
    out: pd.DataFrame, specs: Mapping[str, MetricSpec], s: Settings, by: list[str]
) -> pd.DataFrame:
    """Always-valid intervals and p-values on the used rows (:func:`stats.confidence_sequence`).

    The sequence is tuned to be narrowest at ``sequential_tuning`` customers, or by default
    at the fixed-horizon sample size of the primary metric's MDE in that segment
    (:func:`tuning_customers`), the size the design aims at.
    """
    n = (out.n_champion + out.n_challenger).astype(float)
    if s.sequential_tuning:
        out["tuning"] = float(s.sequential_tuning)
    else:
        mde = specs[s.primary].mde or np.nan
        prim = out[out.used & (out.metric == s.primary)]
        keys = by + ["segment", "challenger"]
        tuning = prim[keys].assign(
            tuning=tuning_customers(
                prim.se, prim.n_champion + prim.n_challenger, mde, s.alpha, s.power
            )
        )
        out = out.merge(tuning, on=keys, how="left")
    low, high, p = st.confidence_sequence(out.estimate, out.se, n, s.alpha, out.tuning.fillna(-1.0))
    used = out.used.to_numpy()
    out["seq_ci_low"] = np.where(used, low, np.nan)
    out["seq_ci_high"] = np.where(used, high, np.nan)
    out["seq_p_value"] = np.where(used, p, np.nan)
    return out


def _with_family(out: pd.DataFrame, s: Settings, by: list[str]) -> pd.DataFrame:
    """Holm and BH over the declared family: the primary metric's used rows (DESIGN §9),
    separately for each ``by`` group (a look is its own readout)."""
    family = out.used & (out.role == "primary")
    p = (out.seq_p_value if s.sequential else out.p_value).to_numpy(float)
    out["p_holm"] = np.nan
    out["p_bh"] = np.nan
    groups = out[family].groupby(by, sort=False).indices if by else {(): np.arange(family.sum())}
    rows = np.flatnonzero(family.to_numpy())
    for idx in groups.values():
        where = rows[idx]
        out.loc[where, "p_holm"] = st.adjust_pvalues(p[where], "holm")
        out.loc[where, "p_bh"] = st.adjust_pvalues(p[where], "fdr_bh")
    return out


def _overall(out: pd.DataFrame, frame: pd.DataFrame, s: Settings, by: list[str]) -> pd.DataFrame:
    """Post-stratified overall rows per challenger x metric x adjustment (x ``by``).

    Each segment's difference weighted by its share w_s of the customers read (all arms),
    over the segments where the comparison is defined; variance sum w_s^2 se_s^2 (the
    segments are independent); normal interval and z test. Relative lift: the weighted
    difference over the weighted champion value, delta-method se and Fieller's interval
    (the difference and the champion value covary through the champion: cov =
    -var(champion)). ``champion`` and
    ``challenger_value``: the arms' values weighted the same way.
    """
    size = frame.drop_duplicates(by + ["segment", "arm"]).groupby(by + ["segment"]).n.sum()
    size = size.rename("_size").reset_index()
    g = out[np.isfinite(out.estimate) & np.isfinite(out.se)].merge(size, on=by + ["segment"])
    if g.empty:
        return pd.DataFrame()
    keys = by + ["challenger", "metric", "adjustment"]
    g = g.assign(_w=g._size / g.groupby(keys)._size.transform("sum"))
    g = g.assign(_wd=g._w * g.estimate, _wv=g._w**2 * g.se**2, _wm=g._w * g.champion,
                 _wc=g._w * g.challenger_value, _wm_v=g._w**2 * g.champion_se**2)  # fmt: skip
    o = g.groupby(keys, sort=False).agg(
        used=("used", "all"), role=("role", "first"), segments=("segment", "size"),
        n_champion=("n_champion", "sum"), n_challenger=("n_challenger", "sum"),
        estimate=("_wd", "sum"), var=("_wv", "sum"), champion=("_wm", "sum"),
        challenger_value=("_wc", "sum"),
        var_m0=("_wm_v", "sum"), trustworthy=("trustworthy", "all"),
        tuning=("tuning", "sum") if "tuning" in g else ("_w", "size"),
    ).reset_index()  # fmt: skip
    z = sps.norm.ppf(1 - s.alpha / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        o["se"] = np.sqrt(o["var"])
        o["ci_low"], o["ci_high"] = o.estimate - z * o.se, o.estimate + z * o.se
        o["statistic"] = o.estimate / o.se
        o["df"] = np.inf
        o["p_value"] = 2 * sps.norm.sf(np.abs(o.statistic))
        rel = o.estimate / o.champion
        var_rel = (o["var"] + 2 * rel * o.var_m0 + rel**2 * o.var_m0) / o.champion**2
        o["relative"] = rel
        o["relative_se"] = np.sqrt(var_rel)
        lo, hi = st.fieller(o.estimate, o.champion, o["var"], o.var_m0, -o.var_m0, z)
        o["relative_ci_low"], o["relative_ci_high"] = np.maximum(lo, -1.0), hi
        o["relative_p_value"] = o.p_value  # "no lift" is "no difference"
    if s.sequential:
        lo, hi, p = st.confidence_sequence(o.estimate, o.se, o.n_champion + o.n_challenger,
                                           s.alpha, o.tuning.where(o.tuning > 0, -1.0))  # fmt: skip
        o["seq_ci_low"], o["seq_ci_high"], o["seq_p_value"] = lo, hi, p
    return o.drop(columns=["var", "var_m0", "tuning"])


def _money(money, extra_cost: float, customers: float) -> dict:
    """Money per month: (the effect on collected per customer - the extra cost) x customers,
    with the interval's ends (currency); nothing without a finite money effect."""
    if money is None or not np.isfinite(money.estimate):
        return {}
    return {
        "money_per_month": (money.estimate - extra_cost) * customers,
        "money_ci_low": (money.ci_low - extra_cost) * customers,
        "money_ci_high": (money.ci_high - extra_cost) * customers,
    }


DECISIONS = ("run_challenger", "stop_challenger", "keep_testing", "withheld_srm", "calibration")


def decide(
    results: pd.DataFrame,
    specs: Mapping[str, MetricSpec],
    settings: Settings,
    monthly_customers: Mapping[str, float],
    cost_per_customer: Mapping | None = None,
    weights: Mapping | None = None,
    intake_ended: bool = False,
) -> pd.DataFrame:
    """Per segment x challenger: what to do, from the primary metric (module docstring).

    - ``run_challenger``: better on the primary metric with a Holm-adjusted p < alpha;
      ``money_per_month`` = (effect on collected per customer - the challenger's extra cost)
      x the segment's customers per month, with the interval's ends (currency); ``reason``
      ``net_loss`` when that money is negative (better on the metric, e.g. more payers,
      but its cost exceeds the money it brings: a roll-out to weigh, not to take);
    - ``stop_challenger``, ``reason`` ``worse`` (worse with Holm p < alpha; the money it
      loses per month while it runs = the same effect x the customers it receives a month)
      or ``futile`` (the interval's end on the better side is short of the MDE: an effect
      worth having is ruled out);
    - ``keep_testing``: ``extra_customers_needed`` (both arms) to detect the MDE with the
      config's power at the current standard error (or, when the sample already suffices,
      to separate the estimate from 0 or from the MDE) and ``weeks_needed`` at the intake of
      the experiment's last 3 months; ``intake_ended`` when nobody was assigned in the last
      30 days (no weeks then);
    - ``withheld_srm`` (a segment's or the whole experiment's sample-ratio check failed) and
      ``calibration`` (A/A) with ``reason`` ``passed``, or ``failed`` when the identical
      arms differ on the primary metric with Holm p < alpha (the method or the data is off).

    ``monthly_customers``: segment -> customers assigned per month (:func:`run.monthly_inflow`);
    ``cost_per_customer``: arm -> currency or segment -> {arm: currency}; ``weights``: the
    designed weights (the first arm is the champion).
    """
    s = settings
    cost = cost_per_customer or {}
    nested = bool(cost) and all(isinstance(v, Mapping) for v in cost.values())
    spec = specs[s.primary]
    mde = float(spec.mde or np.nan)
    sign = 1.0 if spec.higher_is_better else -1.0
    z_a = sps.norm.ppf(1 - s.alpha / 2)
    rows = []
    seg_rows = results[results.used]
    shares = design_shares(weights, seg_rows.segment) if weights else None
    for (seg, challenger), g in seg_rows.groupby(["segment", "challenger"], sort=False):
        by = g.set_index("metric")
        r = by.loc[s.primary]
        money = by.loc["collected_per_customer"] if "collected_per_customer" in by.index else None
        if shares is not None:
            d = shares[shares.segment == seg].set_index("arm")
            champion, share = d.index[0], float(d.share.get(challenger, 0.0))
        else:
            champion, share = "champion", 0.5
        arm_cost = cost.get(seg, {}) if nested else cost
        extra_cost = float(arm_cost.get(challenger, 0.0)) - float(arm_cost.get(champion, 0.0))
        per_month = float(monthly_customers.get(seg, np.nan))
        row = {"segment": seg, "challenger": challenger, "metric": s.primary, "reason": "",
               "extra_cost_per_customer": extra_cost, "customers_per_month": per_month,
               "intake_ended": intake_ended, "money_per_month": np.nan, "money_ci_low": np.nan,
               "money_ci_high": np.nan, "extra_customers_needed": np.nan, "weeks_needed": np.nan}  # fmt: skip
        if bool(r.portfolio_srm) or bool(r.srm):
            rows.append(row | {"code": "withheld_srm",
                               "reason": "experiment" if bool(r.portfolio_srm) else "segment"})  # fmt: skip
            continue
        if s.aa:  # identical arms: a difference past Holm means the method or the data is off
            failed = r.p_holm == r.p_holm and r.p_holm < s.alpha
            rows.append(row | {"code": "calibration", "reason": "failed" if failed else "passed"})
            continue
        low, high = (r.seq_ci_low, r.seq_ci_high) if s.sequential else (r.ci_low, r.ci_high)
        est = float(r.estimate)

        if r.p_holm == r.p_holm and r.p_holm < s.alpha and est == est:
            if sign * est > 0:
                gain = _money(money, extra_cost, per_month)
                loses = gain.get("money_per_month", 0.0) < 0  # better, but dearer than it brings
                rows.append(row | {"code": "run_challenger", "reason": "net_loss" if loses else ""} | gain)  # fmt: skip
            else:
                rows.append(row | {"code": "stop_challenger", "reason": "worse"} | _money(money, extra_cost, per_month * share))  # fmt: skip
            continue
        better_end = high if sign > 0 else -low
        if better_end == better_end and better_end < mde:
            rows.append(row | {"code": "stop_challenger", "reason": "futile"})
            continue
        n_now = float(r.n_champion + r.n_challenger)
        needed = tuning_customers(r.se, n_now, mde, s.alpha, s.power)
        if needed == needed and needed <= n_now and r.se > 0:
            target = max(abs(est), mde - sign * est)
            needed = n_now * (r.se * z_a / target) ** 2 if target > 0 else np.nan
        extra = float(math.ceil(max(needed - n_now, 1.0))) if needed == needed else np.nan
        weekly = per_month / WEEKS_PER_MONTH
        weeks = float(math.ceil(extra / weekly)) if (not intake_ended and weekly > 0 and extra == extra) else np.nan  # fmt: skip
        rows.append(
            row | {"code": "keep_testing", "extra_customers_needed": extra, "weeks_needed": weeks}
        )
    return pd.DataFrame(rows)


def survival_counts(
    tables: Mapping[str, TableLike],
    experiment_id: str,
    as_of,
    window_days: int = 30,
    sequential: bool = False,
) -> pd.DataFrame:
    """Per segment x arm x day: customers whose first payment came that day after assignment
    (``event`` 1) or who had none by the end of their outcome window (``event`` 0, censored
    there: ``window_days``, or fewer days at a sequential look); aggregated on the engine.
    The customers are those :func:`outcome_stats` reads at ``as_of``."""
    with _inputs(tables) as t:
        a = _population(t["assignments"], experiment_id, as_of, window_days, sequential)
        p = t["payments"].view()
        j = a.left_join(p, [a.customer_id == p.customer_id, p.paid_at >= a.assigned_at,
                            p.paid_at < a.horizon])  # fmt: skip
        first = j.group_by("customer_id", "segment", "arm", "assigned_at", "horizon").aggregate(
            first=j.paid_at.min()
        )
        event = first.first.notnull()
        days = ibis.cases(
            (event, first.first.delta(first.assigned_at, unit="day") + 1),
            else_=first.horizon.delta(first.assigned_at, unit="day"),
        )
        f = first.mutate(time=days, event=event.cast("int64"))
        out = pull(
            f.group_by("segment", "arm", "time", "event").aggregate(n=f.count()), "payment times"
        )
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

    Each segment's unpooled standard error (``se``) weighs its estimate.
    Only the rows decisions read (``used``); segments marked untrustworthy by SRM are left out.
    """
    rows = []
    ok = result[result.used & result.trustworthy & result.estimate.notna()]
    for (metric, challenger), g in ok.groupby(["metric", "challenger"], sort=False):
        q, df, p = st.cochran_q(g.estimate, g.se)
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
