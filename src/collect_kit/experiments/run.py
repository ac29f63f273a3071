"""The experiment commands as library calls: design, assign and read out from a config."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
from ibis.expr.types import Table

from .. import schema, sources
from .. import segmentation as sg
from ..engine import TableLike, inputs, numpy_frame, pull
from ..errors import ConfigError, InvalidParameterError, NoResultsYetError
from ..files import spreadsheet_safe, write_atomic
from ..periods import parse_date
from .assign import assign_arms
from .config import ExperimentConfig, load_experiment
from .design import design
from .metrics import FREE_TEXT
from .readout import (
    WEEKS_PER_MONTH,
    Settings,
    compare,
    decide,
    heterogeneity,
    outcome_stats,
    survival_counts,
    survival_readout,
)
from .stored import load as load_stored


@dataclass
class ExperimentReadout:
    """Everything a readout shows; every table is aggregated (no customer rows)."""

    config: ExperimentConfig
    statistics: pd.DataFrame  # per segment x arm: n, payers, the window's actions and cost
    moments: pd.DataFrame  # sufficient statistics per segment x arm x metric
    results: pd.DataFrame  # per segment x challenger x metric x raw/CUPED
    overall: pd.DataFrame  # post-stratified over segments, per challenger x metric x raw/CUPED
    survival: pd.DataFrame  # Kaplan-Meier curves per segment x arm
    logrank: pd.DataFrame
    heterogeneity: pd.DataFrame
    recommendations: pd.DataFrame
    as_of: pd.Timestamp  # what was known at this date was read (module readout)
    currency: str
    looks: pd.DataFrame = field(default_factory=pd.DataFrame)  # sequential: the weekly looks
    #: code -> {language: name} of the experiment, its arms and its segmentation's
    #: segments and strategies, as their configs label them (:func:`display_labels`)
    labels: dict = field(default_factory=dict)

    @property
    def portfolio_srm(self) -> bool:
        """The whole experiment failed its sample-ratio check: nothing is recommended."""
        return bool(len(self.results) and self.results.portfolio_srm.iloc[0])


def _open(
    config_path, database, sources_path=None
) -> tuple[ExperimentConfig, Path, sources.Portfolio]:
    """The config, its folder and its portfolio (``sources_path`` overrides the config's)."""
    cfg, base = load_experiment(config_path)
    path = sources_path or (
        cfg.sources if os.path.isabs(cfg.sources) else os.path.normpath(base / cfg.sources)
    )
    return cfg, base, sources.load(path, database=database)


def _segments(cfg: ExperimentConfig, base: Path, portfolio, as_of, every: bool = False) -> Table:
    """customer_id, segment, overdue_balance at ``as_of`` (an Ibis table on the
    portfolio's engine): the test's segments only, or ``every`` segment of the
    segmentation."""
    if cfg.segmentation is None:
        raise ConfigError(
            f"experiment '{cfg.experiment_id}': design and assign need a segmentation in the config"
        )
    path = (
        cfg.segmentation
        if os.path.isabs(cfg.segmentation)
        else os.path.normpath(base / cfg.segmentation)
    )
    rules = sg.load(path)
    wanted = cfg.test_segments()
    unknown = [s for s in wanted or [] if s not in rules.names]
    if unknown:
        raise ConfigError(
            f"experiment '{cfg.experiment_id}': segments {unknown} are not segments of "
            f"{cfg.segmentation} ({rules.names})"
        )
    snap = sg.portfolio_snapshot(rules, portfolio, as_of)
    out = sg.assign(rules, snap).select("customer_id", "segment", "overdue_balance")
    if wanted is None or every:
        return out
    return out.filter(out.segment.isin(wanted))


def design_experiment(config_path, database=None, as_of=None, sources=None) -> pd.DataFrame:
    """Per segment (customers with an overdue balance at ``as_of``): sample size, MDE and
    the expected duration.

    The champion's expected payer rate is the segment's share of those customers who paid
    anything in the 30 days up to ``as_of``; the amount's standard deviation is that of
    their payments in the same window (currency). ``monthly_inflow``: :func:`segment_inflow`,
    the customers entering each segment in the month (the intake a running test gets). ``expected_weeks``: assigning everyone owing now and then the inflow, the
    weeks until the primary metric's sample (``needed_customers``, or
    ``needed_customers_amount`` for collected per customer) has closed outcome windows;
    NaN when the inflow never gets there. ``as_of``: a month end; ``sources``: a sources
    YAML instead of the config's.
    """
    cfg, base, portfolio = _open(config_path, database, sources)
    when = portfolio.month_end(as_of, "as_of")
    seg = _segments(cfg, base, portfolio, when)
    seg = seg.filter(seg.overdue_balance > 0)
    p = portfolio.tables["payments"]
    lo, hi = ibis.date((when - pd.Timedelta(days=30)).date()), ibis.date(when.date())
    recent = (
        p.filter((p.paid_at > lo) & (p.paid_at <= hi))
        .group_by("customer_id")
        .aggregate(paid=p.amount.sum())
    )
    j = seg.left_join(recent, "customer_id")
    paid = j.paid.fill_null(0.0)
    baseline = pull(
        j.group_by("segment").aggregate(
            customers=j.count(),
            payer_rate=(paid > 0).cast("float64").mean(),
            amount_sd=paid.std(how="sample"),
        ),
        "segment baselines",
    )
    out = design(baseline, cfg.arms, cfg.mde_payer_rate, cfg.mde_amount, cfg.alpha, cfg.power)
    inflow = segment_inflow(cfg, base, portfolio, when, seg)
    out["monthly_inflow"] = out.segment.map(inflow).fillna(0).astype(int)
    sized = {"payer_rate": "needed_customers", "collected_per_customer": "needed_customers_amount"}
    needed = sized.get(cfg.primary_metric, "")
    if needed not in out:  # a metric the design does not size: the readout does
        needed = "needed_primary"
        out[needed] = np.nan
    out["expected_weeks"] = [
        expected_weeks(need, have, flow, cfg.window_days)
        for need, have, flow in zip(out[needed], out.customers, out.monthly_inflow, strict=True)
    ]
    out["needed_primary"] = out[needed].to_numpy()
    out["primary_metric"], out["window_days"] = cfg.primary_metric, cfg.window_days
    return _in_order(out, _segment_order(cfg, base, out.segment))


def segment_inflow(
    cfg: ExperimentConfig, base: Path, portfolio, when: pd.Timestamp, now=None
) -> pd.Series:
    """Per segment of the test: customers owing at the month end ``when`` who were not
    owing in that segment at the month end before (new debtors, and customers who moved in,
    e.g. aged from 31-60 into 61-90): the customers a month of roll-out reaches. ``now``:
    the segments at ``when`` when already computed."""
    now = _segments(cfg, base, portfolio, when) if now is None else now
    now = now.filter(now.overdue_balance > 0)
    before = _segments(cfg, base, portfolio, _previous_month_end(when), every=True)
    before = before.filter(before.overdue_balance > 0).select("customer_id", "segment")
    moved = now.anti_join(before, ["customer_id", "segment"])
    counts = pull(moved.group_by("segment").aggregate(n=moved.count()), "segment inflow")
    return counts.set_index("segment").n


def _previous_month_end(when: pd.Timestamp) -> pd.Timestamp:
    return (when.to_period("M") - 1).to_timestamp(how="end").normalize()


def expected_weeks(
    needed: float, available: float, monthly_inflow: float, window_days: int
) -> float:
    """Weeks until ``needed`` customers have closed outcome windows: everyone owing now
    (``available``) is assigned at once, the rest arrive at ``monthly_inflow`` a month;
    then the last one's ``window_days``. NaN when ``needed`` is unknown or never reached."""
    if needed != needed:
        return float("nan")
    short = max(float(needed) - float(available), 0.0)
    if short > 0 and not monthly_inflow > 0:
        return float("nan")
    intake_weeks = short / (monthly_inflow / WEEKS_PER_MONTH) if short > 0 else 0.0
    return float(np.ceil(intake_weeks + window_days / 7))


def assign_experiment(
    config_path, export: str | os.PathLike, database=None, as_of=None, sources=None
) -> pd.DataFrame:
    """Assign the customers owing at ``as_of`` (a month end) in the test's segments to arms
    and write customer_id, segment, arm (CSV or Parquet by extension, atomically; text
    cells that a spreadsheet would run as formulas are prefixed with ``'``); returns the
    counts per segment x arm. Customers already in the experiment's ``assignments`` keep
    their arm and are not exported again (``counts.attrs["already_assigned"]``)."""
    export = Path(export)
    if export.suffix.lower() not in (".csv", ".parquet"):
        raise ConfigError(f"--export: '{export}' must end in .csv or .parquet")
    if not export.parent.is_dir():
        raise ConfigError(f"--export: folder '{export.parent}' does not exist")
    cfg, base, portfolio = _open(config_path, database, sources)
    when = portfolio.month_end(as_of, "as_of")
    seg = _segments(cfg, base, portfolio, when)
    seg = seg.filter(seg.overdue_balance > 0).select("customer_id", "segment")
    seg = numpy_frame(seg.to_pyarrow())  # the export: one row per customer
    stored = portfolio.tables.get("assignments")
    already = 0
    if stored is not None:
        mine = stored.filter(stored.experiment_id == cfg.experiment_id).select("customer_id")
        known = seg.customer_id.isin(set(mine.distinct().to_pandas().customer_id))
        already, seg = int(known.sum()), seg[~known]
    try:
        out = assign_arms(seg, cfg.salt or cfg.experiment_id, cfg.arms)[
            ["customer_id", "segment", "arm"]
        ]
    except InvalidParameterError as exc:
        raise ConfigError(f"{config_path}: arms: {str(exc).removeprefix('weights: ')}") from None
    if export.suffix.lower() == ".csv":
        safe = spreadsheet_safe(out)
        write_atomic(export, lambda tmp: safe.to_csv(tmp, index=False), "--export")
    else:
        write_atomic(export, lambda tmp: out.to_parquet(tmp, index=False), "--export")
    counts = out.groupby(["segment", "arm"]).size().rename("customers").reset_index()
    counts.attrs["already_assigned"] = already
    return counts


def readout_experiment(
    config_path,
    database=None,
    as_of=None,
    portfolio: sources.Portfolio | None = None,
    sources: str | os.PathLike | None = None,
    stored: dict | None = None,
) -> ExperimentReadout:
    """Read out the experiment of the config from the portfolio's ``assignments``.

    ``as_of`` (default: the extraction date; any calendar date ``YYYY-MM-DD``, because
    sequential readouts look weekly): only customers whose outcome window closed by then
    are read, so a report for a past month shows what was known at its end. Refused after
    the extraction date; before the experiment's first assignment it raises
    :class:`NoResultsYetError` (a report lists the experiment as "no results yet").

    ``portfolio``: an already loaded portfolio to read instead of the config's sources (a
    report run validates the data once for all its notebooks).

    Money per month if rolled out: the effect per customer x :func:`monthly_inflow`.

    ``stored``: the readouts a report run computed once (config path -> folder,
    :mod:`collect_kit.experiments.stored`); one for this config and date is loaded instead
    of read again.
    """
    if stored and as_of is not None:
        kept = load_stored(stored, config_path, parse_date(as_of, "as_of"))
        if kept is not None:
            return kept
    if portfolio is None:
        cfg, base, portfolio = _open(config_path, database, sources)
    else:
        cfg, base = load_experiment(config_path)
    t = portfolio.tables
    end = parse_date(as_of, "as_of", extraction_date=portfolio.extraction_date)
    first = first_assignment(t["assignments"], cfg.experiment_id)
    if first is not None and end < first:
        raise NoResultsYetError(
            f"as_of: {end.date()} is before the first assignment of experiment "
            f"'{cfg.experiment_id}' ({first.date()}): there is nothing to read yet"
        )
    specs = cfg.metric_specs()
    settings = Settings.of(cfg)
    _check_where_values(cfg, config_path, t)
    try:
        out = outcome_stats(
            t, cfg.experiment_id, end, specs, cfg.window_days, cfg.pre_days, cfg.winsorize,
            cfg.cost_per_action, sequential=cfg.sequential,
        )  # fmt: skip
    except NoResultsYetError:
        raise
    except ValueError as exc:
        raise ConfigError(f"{config_path}: {exc}") from None
    _check_design(cfg, config_path, base, out.arms)
    results, overall = compare(out.moments, cfg.arms, specs, settings)
    curves, tests = survival_readout(
        survival_counts(t, cfg.experiment_id, end, cfg.window_days, cfg.sequential), cfg.arms
    )
    monthly, ended = intake(t["assignments"], cfg.experiment_id, end)
    if ended:  # a one-off or stopped intake says nothing about a month of roll-out
        monthly = _rollout_reach(cfg, base, portfolio, end)
    rec = decide(results, specs, settings, monthly, strategy_costs(cfg, out.arms), cfg.arms, ended)
    payers = out.moments[out.moments.metric == "payer_rate"][["segment", "arm", "sum_y"]]
    statistics = out.arms.merge(payers.rename(columns={"sum_y": "payers"}), on=["segment", "arm"])
    statistics["payers"] = statistics.payers.round().astype(int)
    looks = (
        weekly_looks(t, cfg, first, end) if cfg.sequential and first is not None else pd.DataFrame()
    )
    order = _segment_order(cfg, base, out.arms.segment)
    statistics, moments, results, curves, tests, rec, looks = (
        _in_order(f, order) for f in (statistics, out.moments, results, curves, tests, rec, looks)
    )
    return ExperimentReadout(
        cfg, statistics, moments, results, overall, curves, tests,
        heterogeneity(results, cfg.alpha), rec, end, portfolio.currency, looks,
        display_labels(cfg, base),
    )  # fmt: skip


def display_labels(cfg: ExperimentConfig, base: Path) -> dict[str, dict[str, str]]:
    """Code -> {language: name} for what the configs label: the experiment (``label``),
    its arms (``arm_labels``) and its segmentation's segments and strategies."""
    out: dict[str, dict[str, str]] = {}
    if cfg.segmentation is not None:
        rules = sg.load(base / cfg.segmentation)
        out |= {s.name: dict(s.label) for s in rules.segments if s.label}
        out |= {k: dict(v) for k, v in rules.strategy_labels.items()}
    out |= {arm: dict(words) for arm, words in cfg.arm_labels.items()}
    if cfg.label:
        out[cfg.experiment_id] = dict(cfg.label)
    return out


def _check_design(cfg: ExperimentConfig, path, base: Path, read: pd.DataFrame) -> None:
    """The assignments read (segment, arm) are what the config designs: every segment is
    one of the test's (``segments``, else the segmentation's), has weights, and every arm
    is one of the config's."""
    known = cfg.test_segments() or _segmentation_names(cfg, base)
    stray = sorted(set(read.segment) - set(known), key=_natural) if known else []
    if stray:
        key = "segments" if cfg.test_segments() else f"segmentation ({cfg.segmentation})"
        raise ConfigError(
            f"{path}: {key}: experiment '{cfg.experiment_id}' assigned customers to segment(s) "
            f"{stray}, which are not among {known}; point the config at the segments the "
            "assignments used"
        )
    where = f"{path}: arms"
    for seg, g in read.groupby("segment", sort=False):
        designed = cfg.arms[seg] if cfg.nested_arms else cfg.arms
        extra = sorted(set(g.arm) - set(designed))
        if extra:
            raise ConfigError(
                f"{where}: experiment '{cfg.experiment_id}' assigned customers of segment "
                f"'{seg}' to arm(s) {extra}, which the config does not design "
                f"({list(designed)}); add them with their weights or fix the assignments"
            )


def _check_where_values(cfg: ExperimentConfig, path, tables) -> None:
    """A metric's ``where`` on a free-text column (agent, queue, method) names values the
    data has: a misspelt agent would otherwise read out as a metric of zero."""
    for name, spec in cfg.metrics.items():
        table = tables.get("contacts" if spec.table == "promises" else spec.table)
        for column, values in spec.where.items():
            if table is None or column == "kept":
                continue
            if column not in table.columns:
                raise ConfigError(
                    f"{path}: metrics.{name}.where.{column}: {spec.table} has no column "
                    f"'{column}' in this portfolio (an optional column its sources do not map)"
                )
            if column not in FREE_TEXT:
                continue  # coded columns were checked against their codes with the config
            present = set(
                table.filter(table[column].isin(values))
                .select(column)
                .distinct()
                .to_pandas()[column]
            )
            absent = [v for v in values if v not in present]
            if absent:
                raise ConfigError(
                    f"{path}: metrics.{name}.where.{column}: {absent} never appear in "
                    f"{spec.table}.{column}"
                )


def _rollout_reach(cfg: ExperimentConfig, base: Path, portfolio, end: pd.Timestamp) -> dict:
    """Customers a month of roll-out reaches per segment once the experiment's intake has
    ended: the segments' inflow at the last month end by ``end`` (:func:`segment_inflow`);
    empty (money per month unknown) without a segmentation or data for that month."""
    if cfg.segmentation is None:
        return {}
    month_end = end if end.is_month_end else _previous_month_end(end)
    try:
        return {k: float(v) for k, v in segment_inflow(cfg, base, portfolio, month_end).items()}
    except (ConfigError, InvalidParameterError):
        return {}


def look_dates(first: pd.Timestamp, as_of) -> list[pd.Timestamp]:
    """The weekly looks of a sequential test: every 7 days from the first assignment, up to
    ``as_of``."""
    end = pd.Timestamp(as_of)
    out, day = [], pd.Timestamp(first) + pd.Timedelta(days=7)
    while day <= end:
        out.append(day)
        day += pd.Timedelta(days=7)
    return out


def weekly_looks(tables, cfg: ExperimentConfig, first: pd.Timestamp, as_of) -> pd.DataFrame:
    """The primary metric at every weekly look up to ``as_of`` (:func:`look_dates`), all
    looks compared at once: look, segment, challenger, customers, estimate, fixed-horizon
    p-value, always-valid interval and p-value, and whether the always-valid p is below
    alpha after Holm at that look (``decided``)."""
    specs = cfg.metric_specs()
    frames = []
    for day in look_dates(first, as_of):
        try:
            out = outcome_stats(tables, cfg.experiment_id, day, specs, cfg.window_days,
                                cfg.pre_days, cfg.winsorize, cfg.cost_per_action, sequential=True)  # fmt: skip
        except NoResultsYetError:
            continue
        frames.append(out.moments.assign(look=day))
    if not frames:
        return pd.DataFrame()
    results, _ = compare(
        pd.concat(frames, ignore_index=True), cfg.arms, specs, Settings.of(cfg), by=["look"]
    )
    prim = results[results.used & (results.metric == cfg.primary_metric)].copy()
    prim["customers"] = prim.n_champion + prim.n_challenger
    prim = prim.sort_values(["segment", "challenger", "look"], kind="stable")
    before = prim.groupby(["segment", "challenger"], sort=False).customers.shift(fill_value=0)
    prim["new_customers"] = prim.customers - before
    prim["decided"] = prim.p_holm < cfg.alpha
    cols = ["look", "segment", "challenger", "customers", "new_customers", "estimate", "p_value",
            "seq_ci_low", "seq_ci_high", "seq_p_value", "p_holm", "decided"]  # fmt: skip
    return prim[cols].sort_values("look", kind="stable").reset_index(drop=True)


def rereads(looks: pd.DataFrame) -> pd.Timestamp | None:
    """The first weekly look from which nobody new is read (the same customers with longer
    outcome windows: a one-off assignment, or an intake that stopped), or None. The
    always-valid guarantee is for customers arriving over time; such looks are information."""
    if looks is None or looks.empty:
        return None
    per_look = looks.groupby("look").new_customers.sum().sort_index()
    grew = per_look[per_look > 0]
    later = per_look[per_look.index > grew.index.max()] if len(grew) else per_look
    return None if later.empty else pd.Timestamp(later.index.min())


def first_assignment(assignments: TableLike, experiment_id: str) -> pd.Timestamp | None:
    """The experiment's first ``assigned_at`` (None when it has no assignments).

    ``assignments``: the canonical table, pandas, Arrow or Ibis.
    """
    with _assignments(assignments) as t:
        a = t["assignments"].filter(t["assignments"].experiment_id == experiment_id)
        value = a.assigned_at.min().execute()
    return None if value is None or pd.isna(value) else pd.Timestamp(value)


def _assignments(assignments: TableLike):
    """:func:`engine.inputs` of the canonical ``assignments`` table."""
    return inputs(
        {"assignments": assignments},
        {"assignments": schema.ASSIGNMENTS},
        required=["assignments"],
    )


def strategy_costs(cfg: ExperimentConfig, stats: pd.DataFrame) -> dict:
    """Cost per customer of each arm: the config's ``cost_per_customer`` when given (arm ->
    currency), else measured from the actions of the outcome window (``sum_cost / n`` per
    segment x arm, priced by ``cost_per_action`` or the contacts' own cost), else none.
    ``stats``: :attr:`readout.OutcomeStats.arms`."""
    if cfg.cost_per_customer:
        return dict(cfg.cost_per_customer)
    if "costed_actions" not in stats or stats.costed_actions.sum() == 0:
        return {}
    out: dict[str, dict[str, float]] = {}
    for row in stats.itertuples():
        out.setdefault(row.segment, {})[row.arm] = row.cost / row.n if row.n else 0.0
    return out


def monthly_inflow(
    assignments: TableLike, experiment_id: str, as_of, months: int = 3
) -> dict[str, float]:
    """Per segment, the customers a month of roll-out reaches: customers assigned per month
    over the last ``months`` calendar months of the experiment's intake up to ``as_of``.

    A champion/challenger test assigns customers as they enter a segment, so its intake per
    month is the segment's monthly inflow; the last 3 months smooth out a single month's
    swings. The average runs over the months the experiment was assigning (from its
    first month), so a one-off assignment counts once, not divided by 3.
    """
    when = ibis.date(pd.Timestamp(as_of).date())
    with _assignments(assignments) as t:
        a = t["assignments"]
        a = a.filter((a.experiment_id == experiment_id) & (a.assigned_at <= when))
        per = (
            a.group_by(month=a.assigned_at.truncate("M"), segment=a.segment)
            .aggregate(customers=a.count())
            .to_pandas()
        )
    if per.empty:
        return {}
    per["month"] = pd.to_datetime(per.month).dt.to_period("M")
    last, first = per.month.max(), per.month.min()
    window = [m for m in pd.period_range(last - (months - 1), last, freq="M") if m >= first]
    recent = per[per.month.isin(window)]
    return (recent.groupby("segment").customers.sum() / len(window)).to_dict()


def intake(assignments: TableLike, experiment_id: str, as_of) -> tuple[dict[str, float], bool]:
    """:func:`monthly_inflow` and whether the intake has ended: nobody was assigned in the
    30 days up to ``as_of`` (a test that assigned once, or stopped assigning)."""
    monthly = monthly_inflow(assignments, experiment_id, as_of)
    when = pd.Timestamp(as_of)
    with _assignments(assignments) as t:
        a = t["assignments"]
        a = a.filter((a.experiment_id == experiment_id) & (a.assigned_at <= ibis.date(when.date())))
        last = a.assigned_at.max().execute()
    ended = last is None or pd.isna(last) or pd.Timestamp(last) <= when - pd.Timedelta(days=30)
    return monthly, bool(ended)


def _segment_order(cfg: ExperimentConfig, base: Path, present) -> list[str]:
    """Segments in the order of the segmentation's cascade, the others in natural order
    ("61-90" before "181+"), so every table and figure lists them the same way."""
    names = _segmentation_names(cfg, base)
    present = sorted(set(present), key=_natural)
    return [n for n in names if n in present] + [n for n in present if n not in names]


def _segmentation_names(cfg: ExperimentConfig, base: Path) -> list[str]:
    """The segments of the config's segmentation, in cascade order ([] without one)."""
    if cfg.segmentation is None:
        return []
    path = cfg.segmentation if os.path.isabs(cfg.segmentation) else base / cfg.segmentation
    return sg.load(path).names if Path(path).exists() else []


def _natural(text: str) -> list:
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", text) if p]


def _in_order(frame: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    if frame.empty or "segment" not in frame:
        return frame
    rank = frame.segment.map({s: i for i, s in enumerate(order)})
    return (
        frame.assign(_rank=rank)
        .sort_values("_rank", kind="stable")
        .drop(columns="_rank")
        .reset_index(drop=True)
    )


def _p3(p: float) -> str:
    """A p-value to 3 significant digits ("" when there is none)."""
    return "" if p != p else f"{p:.3g}"


def _g4(v: float) -> str:
    """A number to 4 significant digits ("" when there is none)."""
    return "" if v != v else f"{v:.4g}"


def _interval(lo: float, hi: float, form=_g4) -> str:
    return "" if lo != lo or hi != hi else f"[{form(lo)}, {form(hi)}]"


def _percent(v: float) -> str:
    return "+inf" if v == np.inf else f"{v:+.1%}"


#: what the marks of :func:`readout_table` mean, printed under it
LEGEND = (
    "* the primary metric: the only one that decides (Holm over segments x challengers: "
    "p_holm). (info): the unadjusted result beside the CUPED one, for information. p: "
    "two-sided, to 3 significant digits; z or t (Welch df) is the test statistic; relative: "
    "the lift over the champion with Fieller's interval (+inf: the champion is too imprecise to bound it)."
)


def readout_lines(r: ExperimentReadout) -> list[str]:
    """The sample-ratio checks in words, the whole experiment's first (a failure there
    withholds every recommendation, so it is said before anything else)."""
    res = r.results.drop_duplicates("segment")
    if res.empty:
        return []
    first = res.iloc[0]
    verdict = "FAILED: every recommendation is withheld" if r.portfolio_srm else "ok"
    lines = [
        f"Sample-ratio check, whole experiment: p = {_p3(first.portfolio_srm_p_value)} ({verdict})"
    ]
    per = ", ".join(f"{row.segment} p = {_p3(row.srm_p_value)}{' FAILED' if row.srm else ''}"
                    for row in res.itertuples())  # fmt: skip
    lines.append(f"Sample-ratio check per segment (fails at p < 0.001): {per}")
    return lines


def readout_table(r: ExperimentReadout, overall: bool = False) -> pd.DataFrame:
    """The readout as text for a terminal: one row per segment (or overall) x challenger x
    metric x raw/CUPED, the test statistic and p-values to 3 significant digits."""
    f = r.overall if overall else r.results
    if f.empty:
        return pd.DataFrame()
    out = pd.DataFrame({"segment": "all" if overall else f.segment, "challenger": f.challenger,
                        "metric": f.metric + np.where(f.role == "primary", " *", ""),
                        "adjustment": f.adjustment + np.where(f.used, "", " (info)"),
                        "n_champion": f.n_champion, "n_challenger": f.n_challenger})  # fmt: skip
    out["estimate"] = f.estimate.map(_g4)
    out["ci"] = [_interval(lo, hi) for lo, hi in zip(f.ci_low, f.ci_high, strict=True)]
    stat = np.where(np.isinf(f.df), "z", "t")
    out["statistic"] = ["" if v != v else f"{k} = {v:.3g}" + ("" if k == "z" else f" (df {d:.0f})")
                        for k, v, d in zip(stat, f.statistic, f.df, strict=True)]  # fmt: skip
    out["p"] = f.p_value.map(_p3)
    out["relative"] = ["" if v != v else f"{v:+.1%} " + _interval(lo, hi, _percent) for v, lo, hi in
                       zip(f.relative, f.relative_ci_low, f.relative_ci_high, strict=True)]  # fmt: skip
    if "p_holm" in f:
        out["p_holm"] = f.p_holm.map(_p3)
    if r.config.sequential and "seq_p_value" in f:
        out["always_valid_ci"] = [_interval(lo, hi) for lo, hi in zip(f.seq_ci_low, f.seq_ci_high, strict=True)]  # fmt: skip
        out["always_valid_p"] = f.seq_p_value.map(_p3)
    if "reason" in f:
        out["note"] = f.reason.fillna("")
    return out


def looks_table(r: ExperimentReadout) -> pd.DataFrame:
    """A sequential test's weekly looks as text for a terminal: customers read (and new
    since the look before), the primary metric's difference, its fixed-horizon p, the
    always-valid interval and p, and whether Holm at that look decides."""
    f = r.looks
    if f is None or f.empty:
        return pd.DataFrame()
    return pd.DataFrame({
        "look": f.look.dt.date, "segment": f.segment, "challenger": f.challenger,
        "customers": f.customers.map("{:,.0f}".format),
        "new": f.new_customers.map("{:,.0f}".format),
        "estimate": f.estimate.map(_g4), "p": f.p_value.map(_p3),
        "always_valid_ci": [_interval(lo, hi) for lo, hi in zip(f.seq_ci_low, f.seq_ci_high, strict=True)],
        "always_valid_p": f.seq_p_value.map(_p3), "p_holm": f.p_holm.map(_p3),
        "decided": np.where(f.decided, "yes", ""),
    })  # fmt: skip


def looks_lines(r: ExperimentReadout) -> list[str]:
    """What the weekly looks can be trusted for, in words (empty when nothing to say)."""
    since = rereads(r.looks)
    if since is None:
        return []
    return [
        f"From the look of {since.date()} nobody new is read: the looks re-read the same "
        "customers with longer outcome windows. The always-valid guarantee is for customers "
        "arriving over time, so read these looks as information and decide on the full "
        "windows (a fixed-horizon readout once they have closed)."
    ]


def decision_table(r: ExperimentReadout) -> pd.DataFrame:
    """The decisions per segment x challenger (``metric``: the primary metric that decides),
    money rounded to whole currency units."""
    d = r.recommendations
    if d.empty:
        return d
    out = d[["segment", "challenger", "metric", "code", "reason"]].copy()
    for col in (
        "money_per_month",
        "money_ci_low",
        "money_ci_high",
        "extra_customers_needed",
        "weeks_needed",
    ):
        out[col] = d[col].map(lambda v: "" if v != v else f"{v:,.0f}")
    out["intake"] = np.where(d.intake_ended, "ended", "open")
    cur = f" ({r.currency})" if r.currency else ""
    return out.rename(
        columns={c: c + cur for c in ("money_per_month", "money_ci_low", "money_ci_high")}
    )


#: what the decision codes mean, printed under the decisions
DECISION_LEGEND = (
    "run_challenger: better on the primary metric after Holm; money per month = (its effect on "
    "collected per customer - its extra cost) x the customers a month of roll-out reaches, "
    "with the 95 % interval's ends (reason net_loss: better on the metric but its cost exceeds "
    "the money it brings - weigh before rolling out). stop_challenger: worse after Holm (money "
    "it loses per month while it runs) or futile (an effect of the MDE is ruled out). "
    "keep_testing: customers (both arms) and weeks still needed; intake ended = nobody was "
    "assigned in the last 30 days. withheld_srm: a sample-ratio check failed. calibration: "
    "A/A check, passed or failed."
)
