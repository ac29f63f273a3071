"""The executive portfolio report's numbers: KPI tiles, tables and their sentences.

Each function calls the package (kpis, risk, segmentation) and returns tidy DataFrames or
HTML; ``portfolio_report.ipynb`` only displays them.
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from .. import engine, findings, kpis, risk
from ..availability import first_missing
from ..snapshot import DEFAULT_DPD, DpdBuckets
from . import text
from .format import WITHHELD, Formatter, html_table, is_small
from .text import change_sentence, sentence

#: The summary tiles of page 1, in order.
TILES = ("recovery_rate", "collected", "overdue_ratio", "dso", "cei", "payer_rate")

#: The KPIs whose definitions the methodology page gives.
METHODOLOGY = (*TILES, "best_possible_dso", "dso_moonflow", "cei_cash", "forward_roll_rate",
               "write_off_rate", "cure_rate", "contact_rate", "right_party_contact_rate",
               "promise_to_pay_rate", "promise_kept_rate", "managed_rate")  # fmt: skip


def kpi_label(name: str, language: str) -> str:
    """A KPI's name in the report's language (text catalogue)."""
    return text.kpi_word(name, "label", language)


def _show(value, unit: str, fmt: Formatter) -> str:
    """A tile's figure: money abbreviated, days with their unit, rates as percentages."""
    if value is None or value != value:
        return ""
    if unit == "fraction":
        return fmt.percent(value)
    if unit == "currency":
        return fmt.short_money(value)
    if unit == "days":
        return f"{fmt.number(value, 1)} {text.label('days_unit', fmt.language)}"
    return fmt.number(value, 1)


#: the month's KPIs about the customers delinquent at its start, grouped by their segment
#: then (the rest by the segment at the month end, when every payer of the month exists)
AT_START = ("recovery_rate", "payer_rate")


def _by(name: str, tables, month, key: str, groups=None) -> pd.DataFrame:
    return kpis.REGISTRY[name].function(tables, month, by=[key], groups=groups)


def tiles(
    tables, as_of, fmt: Formatter, absent=(), buckets: DpdBuckets | None = None,
    targets: dict | None = None,
) -> pd.DataFrame:  # fmt: skip
    """The summary KPIs for the month of ``as_of`` and the month before.

    One row per KPI of :data:`TILES`: ``value``, ``previous`` (computed as of that month,
    point in time, not read off the current snapshot), ``numerator`` and ``denominator``
    of both months, ``finding`` (:func:`findings.kpi_finding`, whose driver is the DPD
    bucket at the start of the month that moved the recovery and payer rates most), the
    ``shown`` figure, the ``previous_shown`` one, the direction ``marker`` (``up_good``,
    ``down_bad``...) and the ``target`` from the report config (``targets``: KPI -> value).
    A KPI whose input is in ``absent`` (``Portfolio.absent``) is "not available".
    """
    month = pd.Timestamp(as_of).to_period("M")
    buckets = buckets or DEFAULT_DPD
    targets = targets or {}
    shown = [n for n in TILES if not first_missing(kpis.REGISTRY[n].needs, absent)]
    both = kpis.compute(tables, [month, month - 1], shown).set_index(["period", "kpi"])
    end = month.to_timestamp(how="end").normalize()
    before_end = (month - 1).to_timestamp(how="end").normalize()
    now_all = {n: both.loc[(end, n)] for n in shown}
    before_all = {n: both.loc[(before_end, n)] for n in shown}
    average = np.nan
    if {"recovery_rate", "payer_rate"} <= set(now_all):  # overdue money per delinquent customer
        average = now_all["recovery_rate"].denominator / max(now_all["payer_rate"].denominator, 1)
    by_bucket = bucket_contributions(tables, month, [n for n in BY_BUCKET if n in shown], buckets)
    rows = []
    for name in TILES:
        k = kpis.REGISTRY[name]
        row = {"kpi": name, "label": kpi_label(name, fmt.language), "unit": k.unit,
               "target": targets.get(name, np.nan)}  # fmt: skip
        missing = first_missing(k.needs, absent)
        if missing:
            f = findings.kpi_finding(name, np.nan, np.nan, np.nan, k.unit, k.better, k.stake,
                                     missing_input=missing)  # fmt: skip
            rows.append(row | {"value": np.nan, "previous": np.nan, "numerator": np.nan,
                               "denominator": np.nan, "finding": f,
                               "shown": text.label("not_available_short", fmt.language),
                               "previous_shown": "", "marker": ""})  # fmt: skip
            continue
        now, before = now_all[name], before_all[name]
        driver = None
        if name in by_bucket:
            driver = findings.largest_driver(by_bucket[name], now.value - before.value,
                                             "dpd_bucket")  # fmt: skip
        f = findings.kpi_finding(
            name, now.value, before.value, now.denominator, k.unit, k.better, k.stake,
            scale=k.scale, average_balance=average, days_in_month=month.days_in_month,
            driver=driver,
        )  # fmt: skip
        rows.append(row | {
            "value": now.value, "previous": before.value, "numerator": now.numerator,
            "denominator": now.denominator, "previous_numerator": before.numerator,
            "previous_denominator": before.denominator, "finding": f,
            "shown": _show(now.value, k.unit, fmt),
            "previous_shown": _show(before.value, k.unit, fmt), "marker": _marker(f),
        })  # fmt: skip
    return pd.DataFrame(rows)


def _marker(f: findings.Finding) -> str:
    """``up_good``, ``up_bad``, ``down_good``, ``down_bad``, ``up``/``down`` (neither) or
    ``flat``."""
    if f.kind not in ("rise", "fall"):
        return "flat" if f.kind == "unchanged" else ""
    way = "up" if f.kind == "rise" else "down"
    return way if f.good is None else f"{way}_{'good' if f.good else 'bad'}"


#: the KPIs whose tile finding is explained by DPD bucket (:func:`bucket_contributions`)
BY_BUCKET = ("recovery_rate", "payer_rate")


def bucket_contributions(
    tables, month, names: Sequence[str] = BY_BUCKET, buckets: DpdBuckets | None = None,
    groups=None,
) -> dict[str, pd.DataFrame]:  # fmt: skip
    """:func:`findings.contributions` of each KPI of ``names`` between the month before and
    ``month`` by DPD bucket at the start of the month (days past due at the opening), by
    KPI name: the KPIs of both months are computed in one query."""
    if not names:
        return {}
    buckets = buckets or DEFAULT_DPD
    both = kpis.compute(tables, [month, month - 1], names, by=["max_days_past_due"],
                        groups=groups)  # fmt: skip
    both = both.assign(dpd_bucket=buckets.cut(both.max_days_past_due))
    ends = [m.to_timestamp(how="end").normalize() for m in (month, month - 1)]
    out = {}
    for name, rows in both.groupby("kpi", sort=False):
        frames = [rows[rows.period == end].reset_index(drop=True) for end in ends]
        out[name] = findings.contributions(*frames, key="dpd_bucket")
    return out


def segment_contributions(
    tables, month, name: str, segments_at: Callable[[pd.Timestamp], pd.DataFrame]
) -> pd.DataFrame:
    """:func:`findings.contributions` of a KPI between the month before and ``month`` by
    segment: at the start of each month for :data:`AT_START` KPIs, else at its end.
    ``segments_at``: month end -> ``customer_id``, ``segment``."""
    frames = []
    for m in (month, month - 1):
        when = (m - 1 if name in AT_START else m).to_timestamp(how="end").normalize()
        frames.append(_by(name, tables, m, "segment", segments_at(when)))
    k = kpis.REGISTRY[name]
    return findings.contributions(*frames, key="segment", scale=k.scale,
                                  total=k.stake == "total")  # fmt: skip


def driver_words(driver: tuple[str, str, float] | None, unit: str, fmt: Formatter) -> str | None:
    """What moved a figure most, as the words after "driven by"."""
    if driver is None:
        return None
    dimension, group, change = driver
    sign = "+" if change > 0 else "−"
    if unit == "currency":
        amount = f"{sign}{fmt.short_money(abs(change))}"
    elif unit == "fraction":
        amount = f"{sign}{fmt.number(abs(change) * 100, 1)} {text.label('points', fmt.language)}"
    elif unit == "days":
        amount = f"{sign}{fmt.number(abs(change), 1)} {text.label('days_unit', fmt.language)}"
    else:
        amount = f"{sign}{fmt.number(abs(change), 1)}"
    if dimension == "dpd_bucket":
        return sentence("driver_bucket", fmt, bucket=text.state(group, fmt.language), amount=amount)
    return sentence("driver_segment", fmt, segment=fmt.name(group), amount=amount)


#: a tile's direction: an arrow, and a class whose colour says good or bad
ARROWS = {"up": "▲", "down": "▼", "flat": "="}


def tiles_html(t: pd.DataFrame, fmt: Formatter) -> str:
    """The tiles: label, figure, direction against last month (green when good, red when
    bad, grey when neither), last month's figure and the target when set."""
    cells = []
    for r in t.itertuples():
        arrow = ARROWS.get(r.marker.split("_")[0], "") if r.marker else ""
        trend = ""
        if r.previous_shown:
            words = sentence("tile_previous", fmt, value=r.previous_shown)
            trend = (f'<div class="ck-tile-note"><span class="ck-trend ck-{r.marker}">'
                     f"{arrow}</span> {html.escape(words)}</div>")  # fmt: skip
        elif r.finding.kind == "not_available":
            trend = f'<div class="ck-tile-note">{html.escape(text.not_available(r.finding.detail["input"], fmt))}</div>'
        target = ""
        if r.target == r.target:
            words = sentence("tile_target", fmt, value=_show(r.target, r.unit, fmt))
            target = f'<div class="ck-tile-note">{html.escape(words)}</div>'
        cells.append(
            f'<div class="ck-tile"><div class="ck-tile-label">{html.escape(r.label)}</div>'
            f'<div class="ck-tile-value{" ck-long" if len(r.shown) > 12 else ""}">'
            f"{html.escape(r.shown)}</div>{trend}{target}</div>"
        )
    return f'<div class="ck-tiles">{"".join(cells)}</div>'


def recovery_by_segment(
    tables, as_of, opening_assigned: pd.DataFrame, fmt: Formatter
) -> pd.DataFrame:
    """Recovery, payer rate and collected per segment, segments taken at the month's start."""
    month = pd.Timestamp(as_of).to_period("M")
    groups = opening_assigned[["customer_id", "segment"]]
    rec = kpis.recovery_rate(tables, month, by=["segment"], groups=groups)
    pay = kpis.payer_rate(tables, month, by=["segment"], groups=groups)
    out = rec[["segment", "numerator", "denominator", "value"]].rename(
        columns={
            "numerator": "recovered",
            "denominator": "overdue_at_start",
            "value": "recovery_rate",
        }
    )
    out = out.merge(
        pay[["segment", "denominator", "value"]].rename(
            columns={"denominator": "delinquent_customers", "value": "payer_rate"}
        ),
        on="segment",
    )
    out["delinquent_customers"] = out["delinquent_customers"].astype(int)
    return out


def recovery_table(frame: pd.DataFrame, fmt: Formatter, order: list[str]) -> str:
    lang = fmt.language
    labels = {
        "segment": text.label("segment", lang),
        "delinquent_customers": text.label("delinquent_at_start", lang),
        "overdue_at_start": money_header("overdue_at_start", fmt),
        "recovered": money_header("recovered", fmt),
        "recovery_rate": text.label("recovery_rate", lang),
        "payer_rate": text.label("payer_rate", lang),
    }
    frame = (
        frame.set_index("segment")
        .reindex([s for s in order if s in set(frame.segment)])
        .reset_index()
    )
    formats = {"segment": "text", "delinquent_customers": "count", "overdue_at_start": "money",
               "recovered": "money", "recovery_rate": "percent", "payer_rate": "percent"}  # fmt: skip
    return html_table(frame, formats, fmt, labels, count_column="delinquent_customers",
                      totals=recovery_totals(frame, fmt))  # fmt: skip


def recovery_totals(frame: pd.DataFrame, fmt: Formatter) -> dict:
    """The whole book's row of :func:`recovery_by_segment`: money and customers summed,
    the rates over the sums (the payer rate weighted by delinquent customers)."""
    n, due, got = (frame.delinquent_customers.sum(), frame.overdue_at_start.sum(),
                   frame.recovered.sum())  # fmt: skip
    payers = (frame.payer_rate * frame.delinquent_customers).sum()
    return {"segment": text.label("total", fmt.language), "delinquent_customers": n,
            "overdue_at_start": due, "recovered": got,
            "recovery_rate": got / due if due else np.nan,
            "payer_rate": payers / n if n else np.nan}  # fmt: skip


def money_header(key: str, fmt: Formatter) -> str:
    """A money column's header with its currency: ``Balance (CLP)``."""
    word = text.label(key, fmt.language)
    return f"{word} ({fmt.currency})" if fmt.currency else word


def methodology_table(names: list[str], fmt: Formatter, absent=()) -> str:
    """The KPIs' definitions; with ``absent`` (``Portfolio.absent``) a column says which
    are not available for this data and why."""
    m = kpis.methodology(absent, fmt.language).set_index("name").loc[list(names)].reset_index()
    words = {
        "label": "kpi",
        "definition": "definition",
        "numerator": "numerator",
        "denominator": "denominator",
        "source": "source",
    }  # column -> catalogue label
    labels = {c: text.label(key, fmt.language) for c, key in words.items()}
    if m.missing_input.ne("").any():
        m["availability"] = [text.not_available(n, fmt) if n else "" for n in m.missing_input]
        labels["availability"] = text.label("availability", fmt.language)
    return html_table(m, dict.fromkeys(labels, "text"), fmt, labels)


#: at most this many values of a breakdown column get their own row (by balance owed)
BREAKDOWN_ROWS = 15


def breakdown(
    tables, as_of, opening: pd.DataFrame, closing: pd.DataFrame, column: str, absent=()
) -> pd.DataFrame:
    """Recovery, payer rate and % overdue of the month by the values of ``column``.

    ``opening`` / ``closing``: the snapshots at the start and end of the month (Ibis
    tables on the book's engine, or pandas, with ``column``): recovery and payer rate group customers by their value at the
    start, % overdue by their value at the end. One row per value (``group``; missing
    values as None), with ``owing_customers``, ``balance``, ``overdue_ratio``,
    ``delinquent_at_start``, ``recovery_rate`` and ``payer_rate`` (the last three left out
    when ``absent`` has no dated payments); the values beyond the :data:`BREAKDOWN_ROWS`
    owing most are summed into one row with ``group`` "__other__".
    """
    month = pd.Timestamp(as_of).to_period("M")
    with engine.inputs({"opening": opening, "closing": closing}) as t:
        end = t["closing"].select("customer_id", column)
        over = kpis.overdue_ratio(tables, month, by=[column], groups=end)
        owe = t["closing"].filter(t["closing"].balance > 0)
        owing = engine.pull(owe.group_by(column).aggregate(n=owe.count()), f"{column} values")
        owing = owing.set_index(column).n
        parts = {
            "over_num": over.set_index(column).numerator,
            "balance": over.set_index(column).denominator,
            "owing_customers": owing,
        }
        paid = "payments" not in absent
        if paid:
            start = t["opening"].select("customer_id", column)
            rec = kpis.recovery_rate(tables, month, by=[column], groups=start).set_index(column)
            pay = kpis.payer_rate(tables, month, by=[column], groups=start).set_index(column)
            parts |= {"rec_num": rec.numerator, "rec_den": rec.denominator,
                      "pay_num": pay.numerator, "pay_den": pay.denominator}  # fmt: skip
    f = pd.DataFrame({k: v.groupby(level=0, dropna=False).sum() for k, v in parts.items()})
    f = f.fillna(0.0).rename_axis("group").reset_index()
    f["group"] = f["group"].astype(object).where(f["group"].notna(), None)
    f = f.sort_values(["balance", "owing_customers"], ascending=False, ignore_index=True)
    if len(f) > BREAKDOWN_ROWS:
        rest = f.iloc[BREAKDOWN_ROWS - 1 :].drop(columns="group").sum()
        f = pd.concat([f.iloc[: BREAKDOWN_ROWS - 1], rest.to_frame().T.assign(group="__other__")])
    f["overdue_ratio"] = f.over_num / f.balance.where(f.balance != 0)
    f["owing_customers"] = f.owing_customers.astype(int)
    cols = ["group", "owing_customers", "balance", "overdue_ratio"]
    if paid:
        f["recovery_rate"] = f.rec_num / f.rec_den.where(f.rec_den != 0)
        f["payer_rate"] = f.pay_num / f.pay_den.where(f.pay_den != 0)
        f["delinquent_at_start"] = f.pay_den.astype(int)
        cols += ["delinquent_at_start", "recovery_rate", "payer_rate"]
    return f[cols].reset_index(drop=True)


def breakdown_table(frame: pd.DataFrame, fmt: Formatter) -> str:
    """:func:`breakdown` as an HTML table (values as given, escaped; figures of fewer
    than 5 customers withheld)."""
    lang = fmt.language
    shown = frame.copy()
    shown["group"] = [
        text.label("other_values", lang) if g == "__other__"
        else text.label("no_value", lang) if g is None else str(g)
        for g in shown.group
    ]  # fmt: skip
    labels = {
        "group": text.label("group", lang),
        "owing_customers": text.label("owing_customers", lang),
        "balance": f"{text.label('balance', lang)} ({fmt.currency})",
        "overdue_ratio": text.label("overdue_ratio", lang),
        "delinquent_at_start": text.label("delinquent_at_start", lang),
        "recovery_rate": text.label("recovery_rate", lang),
        "payer_rate": text.label("payer_rate", lang),
    }
    formats = {"group": "text", "owing_customers": "count", "balance": "money",
               "overdue_ratio": "percent"}  # fmt: skip
    if "delinquent_at_start" in shown:
        # the rates of the month are about the delinquent customers: withheld for 1-4
        few = [is_small(n) for n in shown.delinquent_at_start]
        for col in ("recovery_rate", "payer_rate"):
            shown[col] = [
                WITHHELD if small else v for small, v in zip(few, shown[col], strict=True)
            ]
        formats |= {"delinquent_at_start": "count", "recovery_rate": "percent", "payer_rate": "percent"}  # fmt: skip
    return html_table(shown, formats, fmt, labels, count_column="owing_customers")


def risk_sentence(evaluation: dict, fmt: Formatter) -> str:
    """How well the propensity model and the bureau score rank customers, out of time."""
    m = evaluation["model"]
    words = sentence(
        "risk_model", fmt, trained=fmt.date(evaluation["trained_on"]),
        evaluated=fmt.date(evaluation["evaluated_on"]), auc=fmt.number(m.auc, 3),
        gini=fmt.number(m.gini, 3), ks=fmt.number(m.ks, 3),
    )  # fmt: skip
    if evaluation.get("baseline"):
        feature, b = evaluation["baseline"]
        gain = fmt.number((m.auc - b.auc) * 100, 1)
        text_ = sentence(
            "baseline_sentence", fmt, feature=feature, auc=fmt.number(b.auc, 3), gain=gain
        )
        words += " " + text_
    if evaluation.get("dropped"):
        words += " " + _dropped_sentence(evaluation["dropped"], fmt)
    if "external" in evaluation:
        e = evaluation["external"]
        words += " " + sentence(
            "risk_external", fmt, auc=fmt.number(e.auc, 3), gini=fmt.number(e.gini, 3)
        )
    return words


def calibration_table(bands: pd.DataFrame, fmt: Formatter) -> str:
    labels = {c: text.label(c, fmt.language) for c in ("band_riskiest", "customers",
              "predicted_payer_rate", "observed_payer_rate", "traffic_light")}  # fmt: skip
    labels["band"] = labels.pop("band_riskiest")
    formats = {"band": "text", "customers": "count", "predicted_payer_rate": "percent",
               "observed_payer_rate": "percent", "traffic_light": "light"}  # fmt: skip
    cap = text.title("calibration", fmt)
    return html_table(bands, formats, fmt, labels, count_column="customers", caption=cap)


def loss_table(bands: pd.DataFrame, fmt: Formatter) -> str:
    lang = fmt.language
    labels = {c: text.label(c, lang) for c in ("band", "customers", "predicted_payer_rate")}
    labels |= {"balance": money_header("balance", fmt),
               "expected_loss": money_header("expected_loss", fmt)}  # fmt: skip
    formats = {"band": "text", "customers": "count", "balance": "money", "predicted_payer_rate": "percent",
               "expected_loss": "money"}  # fmt: skip
    lgd = fmt.percent(bands.lgd.iloc[0], 0) if len(bands) else ""
    days = int(bands.horizon_days.iloc[0]) if "horizon_days" in bands and len(bands) else 30
    cap = text.title("expected_loss", fmt, lgd=lgd, days=days)
    n, balance = bands.customers.sum(), bands.balance.sum()
    totals = {"band": text.label("total", lang), "customers": n, "balance": balance,
              "predicted_payer_rate": (bands.predicted_payer_rate * bands.customers).sum() / n
              if n else np.nan, "expected_loss": bands.expected_loss.sum()}  # fmt: skip
    return html_table(bands, formats, fmt, labels, count_column="customers", caption=cap,
                      totals=totals)  # fmt: skip


def distribution_table(dist: pd.DataFrame, fmt: Formatter, order: list[str]) -> str:
    dist = (
        dist.set_index("segment")
        .reindex([s for s in order if s in set(dist.segment)])
        .reset_index()
    )
    labels = {c: text.label(c, fmt.language) for c in ("segment", "customers", "p10", "p50", "p90", "mean")}  # fmt: skip
    formats = {"segment": "text", "customers": "count", "p10": "percent", "p50": "percent", "p90": "percent",
               "mean": "percent"}  # fmt: skip
    cap = text.title("score_distribution", fmt)
    return html_table(dist, formats, fmt, labels, count_column="customers", caption=cap)


def quality_note(report, fmt: Formatter) -> str:
    """What the validation found, in the report's language: problems and warnings counted
    (their rows and example ids stay in ``collect-kit validate``), the optional inputs the
    data leaves out."""
    head = sentence("quality_ok" if report.checked else "quality_ok_run", fmt)
    if not report.ok:
        head = sentence("quality_problems", fmt, n=fmt.number(len(report.problems)))
    lines = [head]
    if report.warnings:
        lines.append(sentence("quality_warnings", fmt, n=fmt.number(len(report.warnings))))
    lines += [f"- {text.not_available(name, fmt)}" for name in report.absent]
    return "\n".join(lines)


def concentration_table(tables, as_of, fmt: Formatter) -> str:
    """:func:`kpis.concentration` at ``as_of`` as an HTML table with the HHI in the caption."""
    c = kpis.concentration(tables, as_of)
    hhi = c[c.top.isna()].value.iloc[0] if len(c) else np.nan
    shares = c.dropna(subset=["top"]).copy()
    lang = fmt.language
    shares["top"] = [
        text.label("top_share", lang).format(share=fmt.percent(t, 0)) for t in shares.top
    ]
    labels = {"top": text.label("largest_debtors", lang), "customers": text.label("customers", lang),
              "numerator": f"{text.label('balance', lang)} ({fmt.currency})",
              "value": text.label("share_of_balance", lang)}  # fmt: skip
    formats = {"top": "text", "customers": "count", "numerator": "money", "value": "percent"}
    caption = text.label("concentration_caption", lang).format(hhi=fmt.number(hhi, 4))
    return html_table(shares, formats, fmt, labels, count_column="customers", caption=caption)


def cross_validated_risk(snap: pd.DataFrame, target: str, features, penalty: float, fmt: Formatter):
    """For a book without dated payments: the cross-validated model of ``target`` and its
    baseline (:func:`risk.cross_validate`), as (sentence, metrics table HTML)."""
    cv = risk.cross_validate(snap, target, features, penalty=penalty)
    m = cv.metrics.set_index("scorer")
    words = sentence(
        "cv_sentence", fmt, target=target, folds=cv.folds, n=fmt.number(m.n["model"]),
        rate=fmt.percent(m.event_rate["model"]), auc=fmt.number(m.auc["model"], 3),
        gini=fmt.number(m.gini["model"], 3), feature=m.feature["baseline"],
        base_auc=fmt.number(m.auc["baseline"], 3),
    )  # fmt: skip
    if cv.dropped:
        words += " " + _dropped_sentence(cv.dropped, fmt)
    lang = fmt.language
    table = cv.metrics.copy()
    table["scorer"] = [
        text.label("model", lang) if s == "model"
        else text.label("baseline", lang).format(feature=f)
        for s, f in zip(table.scorer, table.feature, strict=True)
    ]  # fmt: skip
    labels = {"scorer": text.label("scorer", lang), "auc": "AUC", "gini": "Gini", "ks": "KS"}
    formats = {"scorer": "text", "auc": "number3", "gini": "number3", "ks": "number3"}
    return words, html_table(table, formats, fmt, labels)


def _dropped_sentence(dropped: dict, fmt: Formatter) -> str:
    """ "Left out of the model: ..." for the columns a fit dropped, with why."""
    kinds = {"all null": "dropped_all_null", "constant": "dropped_constant",
             "collinear": "dropped_collinear"}  # fmt: skip
    items = [
        sentence(next(v for k, v in kinds.items() if why.startswith(k)), fmt, name=name)
        for name, why in dropped.items()
    ]
    return sentence("model_dropped", fmt, items=", ".join(items))


def contact_quality_table(data, fmt: Formatter) -> str:
    """The phone and e-mail checks of ``collect-kit validate`` for this data (from the
    cache; a report run never runs them), as an HTML table; a sentence when they were not
    run; nothing when the sources YAML has no ``contact_quality:``."""
    from ..contact_quality import cached_summary

    if data.contact_quality is None or "customers" not in data.tables:
        return ""
    summary = cached_summary(data.tables["customers"], *data.contact_quality)
    if summary is None:
        return text.paragraph(sentence("contacts_not_checked", fmt))
    lang = fmt.language
    f = summary.copy()
    f["kind"] = [text.label(k, lang) for k in f.kind]
    f["valid_share"] = f.valid / f.present.where(f.present != 0)
    f["possible_share"] = f.possible / f.present.where(f.present != 0)
    labels = {"kind": text.label("contact_kind", lang), "present": text.label("present", lang),
              "valid_share": text.label("valid_share", lang),
              "possible_share": text.label("possible_share", lang),
              "shared_points": text.label("shared_points", lang).format(n=data.contact_quality[1]),
              "customers_on_shared": text.label("customers_on_shared", lang)}  # fmt: skip
    formats = {"kind": "text", "present": "count", "valid_share": "percent",
               "possible_share": "percent", "shared_points": "number",
               "customers_on_shared": "count"}  # fmt: skip
    caption = text.label("contact_caption", lang).format(region=data.contact_quality[0])
    return html_table(f, formats, fmt, labels, caption=caption)


def aging_table(aging: pd.DataFrame, fmt: Formatter) -> str:
    """:func:`kpis.aging` as an HTML table: customers owing and balance per DPD bucket
    (customer level: each customer in the bucket of its most overdue invoice)."""
    lang = fmt.language
    shown = aging.assign(dpd_bucket=[text.state(b, lang) for b in aging.dpd_bucket])
    labels = {"dpd_bucket": text.label("days_past_due", lang),
              "customers": text.label("owing_customers", lang),
              "numerator": money_header("balance", fmt), "value": text.label("share", lang)}  # fmt: skip
    formats = {"dpd_bucket": "text", "customers": "count", "numerator": "money", "value": "percent"}
    totals = {"dpd_bucket": text.label("total", lang), "customers": aging.customers.sum(),
              "numerator": aging.numerator.sum(), "value": 1.0 if aging.numerator.sum() else np.nan}  # fmt: skip
    return html_table(shown, formats, fmt, labels, count_column="customers", totals=totals,
                      caption=text.title("aging_customer_level", fmt))  # fmt: skip


def roll_matrices(rolls: pd.DataFrame, fmt: Formatter) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`kpis.roll_rates` as (customers, share of the row's customers) matrices, rows
    the bucket at the start, columns the state at the end, in words."""
    kw = dict(index="from_bucket", columns="to_state", aggfunc="sum", observed=True)
    counts = rolls.pivot_table(values="customers", fill_value=0, **kw)
    shares = rolls.pivot_table(values="customer_share", **kw).reindex_like(counts)
    lang = fmt.language
    return tuple(
        m.rename(index=lambda b: text.state(b, lang), columns=lambda b: text.state(b, lang))
        for m in (counts, shares)
    )


def channel_table(tables, as_of, fmt: Formatter) -> str:
    """Attempts, contact rate and right-party contact rate of the month by channel."""
    month = pd.Timestamp(as_of).to_period("M")
    contact = kpis.contact_rate(tables, month, by=["channel"])
    rpc = kpis.right_party_contact_rate(tables, month, by=["channel"])
    f = contact[["channel", "denominator", "value"]].rename(
        columns={"denominator": "attempts", "value": "contact_rate"}
    )
    f = f.merge(rpc[["channel", "value"]].rename(columns={"value": "rpc_rate"}), on="channel")
    lang = fmt.language
    f["channel"] = [text.channel(c, lang) for c in f.channel]
    labels = {"channel": text.label("channel", lang), "attempts": text.label("attempts", lang),
              "contact_rate": kpi_label("contact_rate", lang),
              "rpc_rate": kpi_label("right_party_contact_rate", lang)}  # fmt: skip
    formats = {"channel": "text", "attempts": "number", "contact_rate": "percent",
               "rpc_rate": "percent"}  # fmt: skip
    return html_table(f, formats, fmt, labels)


def promise_sentences(tables, as_of, fmt: Formatter) -> str:
    """How the promise and management rates moved since the previous month."""
    month = pd.Timestamp(as_of).to_period("M")
    lines = []
    for name in ("promise_to_pay_rate", "promise_kept_rate", "managed_rate"):
        k = kpis.REGISTRY[name]
        now, before = k.function(tables, month).iloc[0], k.function(tables, month - 1).iloc[0]
        label = kpi_label(name, fmt.language)
        lines.append(change_sentence(label, now.value, before.value, "fraction", fmt))
    return " ".join(lines)


def vintage_frame(tables, as_of) -> pd.DataFrame:
    """Cumulative recovery of the last seven months' delinquency vintages (each at least 5
    episodes), by months since entering delinquency, with a ``vintage_label``."""
    when = pd.Timestamp(as_of)
    curves = kpis.vintage_curves(tables, (when - pd.DateOffset(months=7)).strftime("%Y-%m"),
                                 when.strftime("%Y-%m"), max_months=6)  # fmt: skip
    curves = curves[curves.episodes >= 5].copy()
    curves["vintage_label"] = curves.vintage.dt.strftime("%Y-%m")
    return curves


def month_findings(
    tables, as_of, tile_frame: pd.DataFrame, fmt: Formatter, *,
    segments_at: Callable[[pd.Timestamp], pd.DataFrame] | None = None,
    readouts=(), risk_bands: tuple[pd.DataFrame, pd.DataFrame] | None = None,
    quality_notes=(), most: int = findings.MOST,
) -> list[findings.Finding]:  # fmt: skip
    """Page 1's findings (:func:`findings.rank`) from the tiles (:func:`tiles`), the
    strategy tests' decisions (``readouts``), the risk bands' lights (``risk_bands``:
    calibration and expected-loss bands of :func:`risk_summary`) and the data-quality notes.
    The KPI findings shown are explained by segment as well as by DPD bucket
    (``segments_at``: month end -> ``customer_id``, ``segment``), whichever moved them more."""
    from .experiment import formatter, recommendation_frame

    found = list(tile_frame.finding)
    for r in readouts:
        rec = recommendation_frame(r, fmt)
        rec = rec[~rec.smallest_arm.map(is_small)]
        names = dict(formatter(r, fmt).names)  # the experiment's own arms and segments
        found += [dataclasses.replace(f, detail={**f.detail, "names": names})
                  for f in findings.test_findings(r.config.experiment_id, rec)]  # fmt: skip
    if risk_bands is not None:
        found += findings.risk_findings(*risk_bands)
    found += findings.quality_findings(quality_notes)
    month = pd.Timestamp(as_of).to_period("M")
    out = []
    for f in findings.rank(found, most):
        if f.source == "kpi" and f.kind in ("rise", "fall") and segments_at is not None:
            c = segment_contributions(tables, month, f.subject, segments_at)
            f = findings.with_driver(f, findings.largest_driver(c, f.change, "segment"))
        out.append(f)
    return out


def finding_sentence(f: findings.Finding, fmt: Formatter) -> str:
    """One finding in one sentence: what happened, its number, its driver, what to do."""
    lang = fmt.language
    segments = ", ".join(map(fmt.name, f.segments))
    if f.source == "kpi":
        name = kpi_label(f.subject, lang)
        if f.kind == "not_available":
            return sentence("finding_not_available", fmt, kpi=name,
                            why=text.not_available(f.detail["input"], fmt))  # fmt: skip
        if f.kind == "missing":
            return sentence("finding_missing", fmt, kpi=name)
        words = change_sentence(name, f.value, f.previous,
                                "count" if f.unit == "index" else f.unit, fmt,
                                driver_words(f.driver, f.unit, fmt), short=True).rstrip(".")  # fmt: skip
        if f.money == f.money and f.money > 0:
            words += sentence("finding_at_stake", fmt, money=fmt.short_money(f.money))
        return f"{words}. {_action(f, fmt)}".strip()
    if f.source == "test":
        fmt = dataclasses.replace(fmt, names=f.detail.get("names", fmt.names))
        segments = ", ".join(map(fmt.name, f.segments))
        values = {"experiment": fmt.name(f.subject), "segments": segments,
                  "challenger": fmt.name(f.detail.get("challenger", "")),
                  "money": fmt.short_money(f.money)}  # fmt: skip
        if "low" in f.detail:
            low, high = f.detail["low"], f.detail["high"]
            if f.kind == "stop_worse" or f.kind == "run_net_loss":
                low, high = -high, -low
            values |= {"low": fmt.short_money(low), "high": fmt.short_money(high)}
        else:
            values |= {"low": "", "high": ""}
        customers = f.detail.get("customers", np.nan)
        values["customers"] = fmt.count(customers) if customers == customers else "?"
        return sentence(f"finding_{f.kind}", fmt, **values)
    if f.source == "risk":
        pairs = zip(f.detail["observed"], f.detail["predicted"], strict=True)
        rates = "; ".join(sentence("risk_band_rates", fmt, band=b, observed=fmt.percent(o),
                                   predicted=fmt.percent(p))
                          for b, (o, p) in zip(f.segments, pairs, strict=True))  # fmt: skip
        light = text.label(f"light_{f.kind}", lang)
        if f.kind == "red":
            return sentence("finding_risk_act", fmt, rates=rates, light=light,
                            money=fmt.short_money(f.money))  # fmt: skip
        return sentence("finding_risk_watch", fmt, rates=rates, light=light)
    if f.source == findings.QUALITY:
        return sentence("finding_quality", fmt, column=f.subject, check=f.detail["check"],
                        rows=fmt.number(f.detail["rows"]))  # fmt: skip
    return sentence("finding_nothing", fmt)


def _action(f: findings.Finding, fmt: Formatter) -> str:
    if f.action == "look_at_bucket":
        return sentence("action_look_at_bucket", fmt, bucket=text.state(f.driver[1], fmt.language))
    if f.action == "look_at_segment":
        return sentence("action_look_at_segment", fmt, segment=fmt.name(f.driver[1]))
    if f.action in ("investigate", "keep_course"):
        return sentence(f"action_{f.action}", fmt)
    return ""


def findings_html(items: list[findings.Finding], fmt: Formatter) -> str:
    """Page 1's findings as a numbered list, the most money at stake first."""
    lines = "".join(
        f'<li class="ck-finding ck-finding-{html.escape(f.source)}">'
        f"{html.escape(finding_sentence(f, fmt))}</li>"
        for f in items
    )
    return f'<ol class="ck-findings">{lines}</ol>'


def owing_sentence(tables, as_of, fmt: Formatter) -> str:
    """How many customers owe money at the month end, against the month before (the total
    row of the aging tables)."""
    month = pd.Timestamp(as_of).to_period("M")
    now = kpis.aging(tables, month.to_timestamp(how="end").normalize()).customers.sum()
    before = kpis.aging(tables, (month - 1).to_timestamp(how="end").normalize()).customers.sum()
    return change_sentence(text.label("owing_customers", fmt.language), now, before, "count", fmt)


def receivable_aging_table(tables, as_of, fmt: Formatter, buckets=None) -> str:
    """:func:`kpis.aging_receivables`: each open invoice in its own bucket (its overdue share
    is the month's % overdue)."""
    aging = kpis.aging_receivables(tables, as_of, buckets)
    lang = fmt.language
    shown = aging.assign(dpd_bucket=[text.state(b, lang) for b in aging.dpd_bucket])
    labels = {"dpd_bucket": text.label("days_past_due", lang),
              "receivables": text.label("receivables", lang),
              "customers": text.label("customers", lang),
              "numerator": money_header("balance", fmt), "value": text.label("share", lang)}  # fmt: skip
    formats = {"dpd_bucket": "text", "receivables": "number", "customers": "count",
               "numerator": "money", "value": "percent"}  # fmt: skip
    total = aging.numerator.sum()
    totals = {"dpd_bucket": text.label("total", lang), "receivables": aging.receivables.sum(),
              "customers": np.nan, "numerator": total, "value": 1.0 if total else np.nan}  # fmt: skip
    return html_table(shown, formats, fmt, labels, totals=totals,
                      caption=text.title("aging_receivable_level", fmt))  # fmt: skip


#: the DSO and CEI variants shown side by side, with their definitions
VARIANTS = ("dso", "best_possible_dso", "dso_moonflow", "cei", "cei_cash")


def variants_table(tables, as_of, fmt: Formatter, absent=()) -> str:
    """The three DSOs and the two CEIs of the month and the month before, each with its
    formula (the catalogue's definition); the ones whose input is absent are left out."""
    month = pd.Timestamp(as_of).to_period("M")
    lang, rows = fmt.language, []
    shown = [n for n in VARIANTS if not first_missing(kpis.REGISTRY[n].needs, absent)]
    if not shown:
        return ""
    # both months of every variant in one kpis.compute: at 10 M customers 6.8-8.6 s
    # against 14.3-14.5 s one KPI and month at a time
    both = kpis.compute(tables, [month, month - 1], shown).set_index(["period", "kpi"]).value
    for name in shown:
        k = kpis.REGISTRY[name]
        now, before = (both.loc[(m.to_timestamp(how="end").normalize(), name)]
                       for m in (month, month - 1))  # fmt: skip
        rows.append({"kpi": kpi_label(name, lang), "value": _show(now, k.unit, fmt),
                     "previous": _show(before, k.unit, fmt),
                     "definition": text.kpi_word(name, "definition", lang)})  # fmt: skip
    labels = {"kpi": text.label("kpi", lang), "value": text.label("this_month", lang),
              "previous": text.label("last_month", lang),
              "definition": text.label("definition", lang)}  # fmt: skip
    formats = {"kpi": "text", "value": "text", "previous": "text", "definition": "text"}
    return html_table(pd.DataFrame(rows), formats, fmt, labels,
                      caption=text.title("variants", fmt))  # fmt: skip


def roll_balance_table(rolls: pd.DataFrame, fmt: Formatter) -> str:
    """:func:`kpis.roll_rates` by balance: each row the share of the bucket's opening
    balance by state at the month end (rows add up to 100 %), written off its own column."""
    lang = fmt.language
    m = rolls.pivot_table(index="from_bucket", columns="to_state", values="balance_share",
                          aggfunc="sum", observed=True).fillna(0.0)  # fmt: skip
    m.columns = [text.state(c, lang) for c in m.columns]
    m = m.rename_axis("from_bucket").reset_index()
    m["from_bucket"] = [text.state(b, lang) for b in m.from_bucket]
    formats = {"from_bucket": "text"} | dict.fromkeys(m.columns[1:], "percent")
    labels = {"from_bucket": text.label("from_to", lang)}
    return html_table(m, formats, fmt, labels, caption=text.title("roll_balance", fmt))


def roll_sentence(tables, as_of, fmt: Formatter, buckets=None) -> str:
    """The forward roll and the roll to write-off of the month, in one sentence each."""
    month = pd.Timestamp(as_of).to_period("M")
    out = []
    for name in ("forward_roll_rate", "write_off_rate", "cure_rate"):
        k = kpis.REGISTRY[name]
        now, before = (k.function(tables, m, buckets=buckets).value.iloc[0]
                       for m in (month, month - 1))  # fmt: skip
        out.append(change_sentence(kpi_label(name, fmt.language), now, before, "fraction", fmt))
    return " ".join(out)


def stage_table(stages: pd.DataFrame, fmt: Formatter) -> str:
    """:func:`risk.ifrs9_stages` as a table, labelled a simplification."""
    lang = fmt.language
    shown = stages.assign(stage=[text.label(f"stage_{s}", lang) for s in stages.stage])
    labels = {"stage": text.label("stage", lang), "customers": text.label("owing_customers", lang),
              "balance": money_header("balance", fmt),
              "expected_loss": money_header("expected_loss", fmt),
              "coverage": text.label("coverage", lang)}  # fmt: skip
    formats = {"stage": "text", "customers": "count", "balance": "money",
               "expected_loss": "money", "coverage": "percent"}  # fmt: skip
    b, el = stages.balance.sum(), stages.expected_loss.sum()
    totals = {"stage": text.label("total", lang), "customers": stages.customers.sum(),
              "balance": b, "expected_loss": el, "coverage": el / b if b else np.nan}  # fmt: skip
    return html_table(shown, formats, fmt, labels, count_column="customers", totals=totals,
                      caption=text.title("ifrs9", fmt))  # fmt: skip


def appendix_table(tile_frame: pd.DataFrame, fmt: Formatter) -> str:
    """Every tile's numerator and denominator this month, with what each one counts."""
    lang, rows = fmt.language, []
    for r in tile_frame.itertuples():
        if r.value != r.value:
            continue
        rows.append({"kpi": r.label, "value": r.shown,
                     "numerator": fmt.number(r.numerator),
                     "numerator_is": text.kpi_word(r.kpi, "numerator", lang),
                     "denominator": fmt.number(r.denominator),
                     "denominator_is": text.kpi_word(r.kpi, "denominator", lang)})  # fmt: skip
    labels = {"kpi": text.label("kpi", lang), "value": text.label("value", lang),
              "numerator": text.label("numerator", lang), "numerator_is": text.label("what_it_counts", lang),
              "denominator": text.label("denominator", lang), "denominator_is": text.label("what_it_counts", lang)}  # fmt: skip
    formats = dict.fromkeys(labels, "text")
    return html_table(pd.DataFrame(rows), formats, fmt, labels, caption=text.title("appendix", fmt))


def payment_curves(tables, as_of, groups: pd.DataFrame, months: int = 6) -> pd.DataFrame:
    """Kaplan-Meier time to first payment of the customers entering delinquency in the last
    ``months`` month ends up to the previous one, by segment (``groups``: ``customer_id``,
    ``segment``), segments with at least 5 episodes; a ``panel`` column for one plot."""
    month = pd.Timestamp(as_of).to_period("M")
    curves = kpis.time_to_first_payment(tables, str(month - months), str(month - 1),
                                        by=["segment"], groups=groups)  # fmt: skip
    big = curves.groupby("segment").at_risk.max()
    curves = curves[curves.segment.isin(big[big >= 5].index)].copy()
    curves["panel"] = ""
    return curves
