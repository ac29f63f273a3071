"""The month's findings for page 1: what happened and what to do, ranked by money at stake.

Numbers only: each :class:`Finding` says where it comes from (a KPI change, a strategy
test's decision, a risk band's traffic light, a data-quality note), its figures, the money
at stake per month (currency), what drove it and which action it calls for (a code);
:func:`collect_kit.reports.text.finding_sentence` words it.

Money at stake (DESIGN §7):

- a KPI change: the change in the rate x this month's denominator balance
  (``stake="denominator"``: recovery rate, % overdue, CEI); for a rate over customers
  (``"customers"``: payer rate) x the customers x the average balance per customer; a
  total (``"total"``: collected) is its own change; a number of days of sales (``"sales_days"``:
  DSO) x the month's credit sales per day;
- a strategy test's decision: its money per month (what a roll-out brings, or what a worse
  challenger loses while it runs); "keep testing" carries none;
- a risk band's light (watch or act): the band's expected loss;
- data-quality notes rank last, whatever they say.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import pandas as pd

#: how many findings page 1 shows at most (at least 3 when there are)
MOST = 5

#: ranks below any money: notes that say nothing about money
QUALITY = "quality"


@dataclass(frozen=True)
class Finding:
    """One thing page 1 says.

    ``source``: ``kpi``, ``test``, ``risk``, ``plan`` or ``quality``. ``kind``: for a KPI
    ``rise``, ``fall``, ``unchanged``, ``missing`` (no figure this month), ``no_previous``
    or ``not_available`` (an input the data lacks: ``reason``); for a test the decision
    code (``run_challenger``, ``run_net_loss``, ``stop_worse``, ``stop_futile``,
    ``keep_testing``, ``withheld``); for risk ``yellow`` / ``red``; ``note`` for quality;
    ``nothing`` when there is nothing to act on. ``good``: whether the move is good for
    the business (None: neither). ``money``: currency per month at stake (NaN: none).
    ``driver``: (dimension, name, change in fraction points or currency) of what moved it
    most in its direction (``dpd_bucket`` or ``segment``). ``action``: a code
    (``look_at_bucket``, ``look_at_segment``, ``investigate``, ``keep_course``, ``roll_out``, ``weigh``,
    ``stop``, ``keep_testing``, ``fix_assignment``, ``review_model``, ``check_data``,
    ``none``).
    """

    source: str
    kind: str
    subject: str
    action: str
    money: float = math.nan
    value: float = math.nan
    previous: float = math.nan
    unit: str = ""
    good: bool | None = None
    driver: tuple[str, str, float] | None = None
    segments: tuple[str, ...] = ()
    detail: Mapping[str, object] = field(default_factory=dict)

    @property
    def change(self) -> float:
        return self.value - self.previous


def _num(x) -> float:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return math.nan
    return x


def kpi_finding(
    kpi: str,
    value,
    previous,
    denominator,
    unit: str,
    better: str | None,
    stake: str | None,
    *,
    scale: float = 1.0,
    average_balance: float = math.nan,
    days_in_month: int = 30,
    missing_input: str = "",
    driver: tuple[str, str, float] | None = None,
    tolerance: float | None = None,
) -> Finding:
    """A KPI's month: rise, fall, unchanged (within ``tolerance``: 0.0005 for a rate,
    0.05 days, 0.5 currency units by default), missing or not available, with its money at
    stake (module docstring) and whether the move is good (``better``: ``up``, ``down`` or
    None). ``scale``: the KPI's value per unit of rate (100 for CEI)."""
    if missing_input:
        return Finding("kpi", "not_available", kpi, "check_data", unit=unit,
                       detail={"input": missing_input})  # fmt: skip
    now, before, den = _num(value), _num(previous), _num(denominator)
    if math.isnan(now):
        return Finding("kpi", "missing", kpi, "check_data", unit=unit)
    if math.isnan(before):
        return Finding("kpi", "no_previous", kpi, "none", value=now, unit=unit)
    change = now - before
    if tolerance is None:
        tolerance = {"fraction": 0.0005, "days": 0.05, "index": 0.05}.get(unit, 0.5)
    if abs(change) < tolerance:
        return Finding("kpi", "unchanged", kpi, "none", 0.0, now, before, unit)
    money = math.nan
    if stake == "denominator":
        money = abs(change) / scale * den
    elif stake == "customers":
        money = abs(change) / scale * den * average_balance
    elif stake == "total":
        money = abs(change)
    elif stake == "sales_days":
        money = abs(change) * den / days_in_month
    good = None if better is None else (change > 0) == (better == "up")
    action = "none" if good is None else "keep_course" if good else "investigate"
    if good is False and driver is not None:
        action = f"look_at_{driver[0].removeprefix('dpd_')}"
    return Finding("kpi", "rise" if change > 0 else "fall", kpi, action, money, now, before,
                   unit, good, driver)  # fmt: skip


def largest_driver(
    contributions: pd.DataFrame, change: float, dimension: str
) -> tuple[str, str, float] | None:
    """The group that moved a KPI most in the direction of ``change``: ``contributions``
    has ``group`` and ``change`` (its contribution to the KPI's change; they add up to it).
    None when no group moved that way."""
    if contributions is None or contributions.empty or change != change or change == 0:
        return None
    same = contributions[(contributions.change * change) > 0]
    if same.empty:
        return None
    top = same.loc[same.change.abs().idxmax()]
    return (dimension, str(top.group), float(top.change))


def contributions(
    now: pd.DataFrame, before: pd.DataFrame, key: str, scale: float = 1.0, total: bool = False
) -> pd.DataFrame:
    """Each group's contribution to a ratio KPI's change between two months.

    ``now`` / ``before``: a KPI's result ``by=[key]`` (``numerator``, ``denominator``
    per group). The KPI is scale x sum(num) / sum(den), so group g contributes
    scale x num_g / den (its numerator over the whole denominator): a month's contributions
    add up to its value and their differences to the change, exactly. A ``total`` KPI (a
    sum, such as collected) is its numerators' sum: each group contributes its own.
    Returns ``group``, ``now``, ``before``, ``change``."""

    def share(frame: pd.DataFrame) -> pd.Series:
        per = frame.groupby(key, observed=False).numerator.sum()
        if total:
            return per * scale
        whole = frame.denominator.sum()
        return per * scale / whole if whole else per * math.nan

    out = pd.DataFrame({"now": share(now), "before": share(before)}).fillna(0.0)
    out["change"] = out.now - out.before
    return out.rename_axis("group").reset_index()


def test_findings(experiment: str, decisions: pd.DataFrame) -> list[Finding]:
    """One finding per experiment x decision (segments together): ``decisions`` is an
    experiment's recommendations (``segment``, ``challenger``, ``code``, ``reason``,
    ``money_per_month``, ``money_ci_low``, ``money_ci_high``, ``extra_customers_needed``;
    rows about 1-4 customers already left out)."""
    kinds = {
        ("run_challenger", "net_loss"): ("run_net_loss", "weigh"),
        ("run_challenger", ""): ("run_challenger", "roll_out"),
        ("stop_challenger", "worse"): ("stop_worse", "stop"),
        ("stop_challenger", "futile"): ("stop_futile", "stop"),
        ("keep_testing", ""): ("keep_testing", "keep_testing"),
        ("withheld_srm", ""): ("withheld", "fix_assignment"),
    }
    d = decisions.copy()
    d["reason"] = d["reason"].fillna("") if "reason" in d else ""
    out = []
    for (code, reason, challenger), g in d.groupby(["code", "reason", "challenger"], sort=False):
        key = (code, reason if (code, reason) in kinds else "")
        if key not in kinds:
            continue  # A/A calibration: not a business finding
        kind, action = kinds[key]
        money = _num(g.money_per_month.sum(min_count=1)) if "money_per_month" in g else math.nan
        if kind in ("keep_testing", "withheld", "stop_futile"):
            money = math.nan
        detail = {"challenger": challenger}
        if "money_ci_low" in g and not math.isnan(money):
            detail |= {"low": float(g.money_ci_low.sum()), "high": float(g.money_ci_high.sum())}
        if kind == "keep_testing" and "extra_customers_needed" in g:
            detail["customers"] = _num(g.extra_customers_needed.sum(min_count=1))
        out.append(Finding("test", kind, experiment, action, abs(money) if money == money else money,
                           unit="currency", good=None if kind in ("keep_testing", "withheld") else kind == "run_challenger",
                           segments=tuple(g.segment), detail=detail))  # fmt: skip
    return out


def risk_findings(calibration: pd.DataFrame, loss: pd.DataFrame) -> list[Finding]:
    """At most two findings: the risk bands whose out-of-time traffic light is ``red``
    (act), with the expected loss resting on them (money at stake), then those at
    ``yellow`` (watch, no money: they rank after every finding with money).
    ``calibration``: :func:`risk.bands` with ``traffic_light``; ``loss``: :func:`risk.bands`
    on the current book (same band numbers, ``expected_loss``)."""
    if calibration is None or "traffic_light" not in calibration:
        return []
    expected = (loss.set_index("band").expected_loss if loss is not None and len(loss)
                else pd.Series(dtype=float))  # fmt: skip
    out = []
    for light in ("red", "yellow"):
        bands = calibration[calibration.traffic_light == light]
        if bands.empty:
            continue
        money = float(expected.reindex(bands.band).sum()) if light == "red" else math.nan
        detail = {"observed": tuple(bands.observed_payer_rate.astype(float)),
                  "predicted": tuple(bands.predicted_payer_rate.astype(float))}  # fmt: skip
        out.append(Finding("risk", light, ", ".join(map(str, bands.band)), "review_model",
                           money, unit="fraction", good=False, segments=tuple(map(str, bands.band)),
                           detail=detail))  # fmt: skip
    return out


def quality_findings(warnings: Iterable) -> list[Finding]:
    """A finding per data-quality warning of the validation (``ValidationReport.warnings``:
    ``table``, ``column``, ``check``, ``rows``; never its example ids), ranked after every
    finding with money."""
    return [Finding(QUALITY, "note", f"{w.table}.{w.column}", "check_data",
                    detail={"check": w.check, "rows": int(w.rows)}) for w in warnings]  # fmt: skip


def rank(findings: Sequence[Finding], most: int = MOST) -> list[Finding]:
    """The findings worth page 1: those that call for something (not unchanged, not
    "keep course" below the others) by money at stake, largest first; findings without
    money next; data-quality notes last. At most ``most``; when nothing calls for
    anything, one ``nothing`` finding."""

    def key(f: Finding):
        quality = f.source == QUALITY or f.action == "check_data"
        money = f.money if f.money == f.money else -1.0
        return (quality, f.kind == "unchanged", -money)

    shown = [f for f in findings if f.kind not in ("unchanged", "no_previous")]
    if not shown:
        return [Finding("summary", "nothing", "", "none")]
    return sorted(shown, key=key)[:most]


def with_driver(f: Finding, driver: tuple[str, str, float] | None) -> Finding:
    """``f`` explained by ``driver`` when it moved the figure more than the current one,
    with the action that follows (look at that bucket or segment, or keep the course)."""
    if driver is None or (f.driver is not None and abs(f.driver[2]) >= abs(driver[2])):
        return f
    action = f.action
    if f.good is False:
        action = f"look_at_{driver[0].removeprefix('dpd_')}"
    return replace(f, driver=driver, action=action)
