"""The executive portfolio report's numbers: KPI tiles, tables and their sentences.

Each function calls the package (kpis, risk, segmentation) and returns tidy DataFrames or
HTML; ``portfolio_report.ipynb`` only displays them.
"""

from __future__ import annotations

import html
from collections.abc import Callable

import numpy as np
import pandas as pd
from ibis.expr.types import Table

from .. import kpis, risk
from ..availability import first_missing
from ..snapshot import DEFAULT_DPD, DpdBuckets
from . import text
from .format import WITHHELD, Formatter, html_table, is_small
from .text import change_sentence, sentence

#: The summary tiles: KPI name and how its value is shown.
TILES = ("recovery_rate", "collected", "overdue_ratio", "dso", "cei", "payer_rate")

KPI_NAMES_ES = {
    "recovery_rate": "Tasa de recuperación",
    "collected": "Recaudado",
    "overdue_ratio": "% vencido",
    "dso": "DSO (estándar)",
    "cei": "Índice de efectividad de cobranza",
    "payer_rate": "Tasa de pagadores",
    "promise_to_pay_rate": "Tasa de promesas de pago",
    "promise_kept_rate": "Tasa de promesas cumplidas",
    "managed_rate": "% de clientes morosos gestionados",
    "contact_rate": "Tasa de contacto",
    "right_party_contact_rate": "Tasa de contacto con el titular",
}


def kpi_label(name: str, language: str) -> str:
    if language == "es" and name in KPI_NAMES_ES:
        return KPI_NAMES_ES[name]
    return kpis.REGISTRY[name].label


def _show(value, unit: str, fmt: Formatter) -> str:
    if unit == "fraction":
        return fmt.percent(value)
    if unit == "currency":
        return fmt.money(value)
    if unit == "days":
        return fmt.number(value, 1)
    return fmt.number(value, 1)


def tiles(
    tables, as_of, fmt: Formatter, absent=(), buckets: DpdBuckets | None = None
) -> pd.DataFrame:
    """The summary KPIs for the month of ``as_of`` and the month before, with a sentence each.

    The previous month's figure is computed as of that month (point in time), not read off
    the current snapshot. A KPI whose input is in ``absent`` (``Portfolio.absent``) shows
    "not available" and why.
    """
    month = pd.Timestamp(as_of).to_period("M")
    rows = []
    for name in TILES:
        k = kpis.REGISTRY[name]
        missing = first_missing(k.needs, absent)
        if missing:
            rows.append({"kpi": name, "label": kpi_label(name, fmt.language),
                         "value": np.nan, "previous": np.nan, "numerator": np.nan,
                         "denominator": np.nan,
                         "shown": text.label("not_available_short", fmt.language),
                         "sentence": text.not_available(missing, fmt)})  # fmt: skip
            continue
        now = k.function(tables, month).iloc[0]
        before = k.function(tables, month - 1).iloc[0]
        unit = "index" if k.unit == "index" else k.unit
        driver = None
        if name == "recovery_rate":
            by = ["max_days_past_due"]
            contributions = bucket_contributions(
                k.function(tables, month, by=by), k.function(tables, month - 1, by=by), buckets
            )
            driver = recovery_driver(contributions, now.value - before.value, fmt)
        rows.append(
            {
                "kpi": name,
                "label": kpi_label(name, fmt.language),
                "value": now.value,
                "previous": before.value,
                "numerator": now.numerator,
                "denominator": now.denominator,
                "shown": _show(now.value, unit, fmt),
                "sentence": change_sentence(
                    kpi_label(name, fmt.language),
                    now.value,
                    before.value,
                    "count" if unit == "index" else unit,
                    fmt,
                    driver,
                ),  # fmt: skip
            }
        )
    return pd.DataFrame(rows)


def bucket_contributions(
    now: pd.DataFrame, before: pd.DataFrame, buckets: DpdBuckets | None = None
) -> pd.DataFrame:
    """Who moved the recovery rate: per DPD bucket at the start of the month, its share of
    the change (fraction points).

    ``now`` / ``before``: :func:`kpis.recovery_rate` of two months ``by=["max_days_past_due"]``
    (days past due at the opening). The rate is sum(num) / sum(den), so bucket b contributes
    num_b / den (its recovered money over the whole opening book); the contributions of a
    month add up to its rate and their differences to the change, exactly. ``buckets``:
    default :data:`~collect_kit.snapshot.DEFAULT_DPD`.
    """
    buckets = buckets or DEFAULT_DPD

    def per_bucket(frame: pd.DataFrame) -> pd.Series:
        total = frame.denominator.sum()
        bucket = buckets.cut(frame.max_days_past_due)
        share = frame.numerator.groupby(bucket, observed=False).sum()
        return share / total if total else share * np.nan

    out = pd.DataFrame({"now": per_bucket(now), "before": per_bucket(before)})
    out["change"] = out.now - out.before
    return out.rename_axis("dpd_bucket").reset_index()


def recovery_driver(contributions: pd.DataFrame, change: float, fmt: Formatter) -> str | None:
    """The bucket that moved the recovery rate most in the direction of ``change``, as the
    words after "driven by"; None when nothing moved (less than 0.05 points) or no
    bucket moved that way."""
    if change != change or abs(change) < 0.0005:
        return None
    same = contributions[np.sign(contributions.change) == np.sign(change)]
    if same.empty:
        return None
    top = same.loc[same.change.abs().idxmax()]
    points = f"{'+' if top.change > 0 else '−'}{fmt.number(abs(top.change) * 100, 1)}"
    if fmt.language == "es":
        return f"los clientes con {top.dpd_bucket} días de mora al inicio del mes ({points} puntos)"
    return f"customers {top.dpd_bucket} days past due at the start of the month ({points} points)"


def tiles_html(t: pd.DataFrame) -> str:
    cells = "".join(
        f'<div class="ck-tile"><div class="ck-tile-label">{html.escape(r.label)}</div>'
        f'<div class="ck-tile-value">{html.escape(r.shown)}</div>'
        f'<div class="ck-tile-note">{html.escape(r.sentence)}</div></div>'
        for r in t.itertuples()
    )
    return f'<div class="ck-tiles">{cells}</div>'


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
    es = fmt.language == "es"
    labels = {
        "segment": "Segmento" if es else "Segment",
        "delinquent_customers": "Clientes morosos al inicio" if es else "Delinquent at start",
        "overdue_at_start": f"{'Vencido al inicio' if es else 'Overdue at start'} ({fmt.currency})",
        "recovered": f"{'Recuperado' if es else 'Recovered'} ({fmt.currency})",
        "recovery_rate": "Tasa de recuperación" if es else "Recovery rate",
        "payer_rate": "Tasa de pagadores" if es else "Payer rate",
    }
    frame = (
        frame.set_index("segment")
        .reindex([s for s in order if s in set(frame.segment)])
        .reset_index()
    )
    formats = {"segment": "text", "delinquent_customers": "count", "overdue_at_start": "money",
               "recovered": "money", "recovery_rate": "percent", "payer_rate": "percent"}  # fmt: skip
    return html_table(frame, formats, fmt, labels, count_column="delinquent_customers")


def methodology_table(names: list[str], fmt: Formatter, absent=()) -> str:
    """The KPIs' definitions; with ``absent`` (``Portfolio.absent``) a column says which
    are not available for this data and why."""
    m = kpis.methodology(absent).set_index("name").loc[names].reset_index()
    m["label"] = [kpi_label(n, fmt.language) for n in m.name]
    es = fmt.language == "es"
    labels = {"label": "Indicador" if es else "KPI", "definition": "Definición" if es else "Definition",
              "numerator": "Numerador" if es else "Numerator", "denominator": "Denominador" if es else "Denominator",
              "source": "Fuente" if es else "Source"}  # fmt: skip
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

    ``opening`` / ``closing``: the snapshots at the start and end of the month (pandas,
    with ``column``): recovery and payer rate group customers by their value at the
    start, % overdue by their value at the end. One row per value (``group``; missing
    values as None), with ``owing_customers``, ``balance``, ``overdue_ratio``,
    ``delinquent_at_start``, ``recovery_rate`` and ``payer_rate`` (the last three left out
    when ``absent`` has no dated payments); the values beyond the :data:`BREAKDOWN_ROWS`
    owing most are summed into one row with ``group`` "__other__".
    """
    month = pd.Timestamp(as_of).to_period("M")
    end = closing[["customer_id", column]]
    over = kpis.overdue_ratio(tables, month, by=[column], groups=end)
    owing = closing[closing.balance > 0].groupby(column, dropna=False).size()
    parts = {
        "over_num": over.set_index(column).numerator,
        "balance": over.set_index(column).denominator,
        "owing_customers": owing,
    }
    paid = "payments" not in absent
    if paid:
        start = opening[["customer_id", column]]
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


def risk_summary(
    tables,
    snap: pd.DataFrame,
    as_of,
    assigned: pd.DataFrame,
    lgd: float,
    fmt: Formatter,
    snapshot_of: Callable[[pd.Timestamp], Table] | None = None,
):
    """Fit on t0, evaluate out of time on t1 (:func:`risk.training_dates` of ``as_of``, so
    every label was known at ``as_of``), score the current snapshot ``snap``.

    ``snapshot_of``: date -> snapshot as an Ibis table on the tables' database (e.g.
    :func:`context.snapshot_table` over the runner's cache); default: computed.
    Returns (evaluation dict, calibration bands on t1, expected loss bands on the current
    snapshot, score distribution by segment).
    """
    from ..snapshot import snapshot as build_snapshot

    snapshot_of = snapshot_of or (lambda d: build_snapshot(tables, d))
    t0, t1 = risk.training_dates(as_of)
    pay = tables["payments"]
    model = risk.fit(snapshot_of(t0), pay, t0)
    snap1 = snapshot_of(t1)
    oot = risk.outcomes(model.score(snap1), pay, t1)
    base = model.baseline_score(snap1).to_pandas()[["customer_id", "baseline"]]
    with_base = oot.merge(base, on="customer_id")
    evaluation = {
        "trained_on": t0,
        "evaluated_on": t1,
        "model": risk.discrimination(oot.p_pay.to_numpy(), oot.paid.to_numpy()),
        "baseline": (
            model.baseline[0],
            risk.discrimination(with_base.baseline.to_numpy(), with_base.paid.to_numpy()),
        ),
        "dropped": dict(model.dropped),
    }
    s1 = snap1.select("customer_id", "score").to_pandas().dropna()
    if len(s1):
        ext = oot.merge(s1, on="customer_id")
        evaluation["external"] = risk.discrimination(ext.score.to_numpy(), ext.paid.to_numpy())
    calibration = risk.bands(oot, n_bands=5, lgd=lgd)
    current = model.score(snap)
    loss = risk.bands(current, n_bands=5, lgd=lgd)
    dist = risk.score_distribution(
        current.merge(assigned[["customer_id", "segment"]], on="customer_id"), "p_pay", "segment"
    )
    return evaluation, calibration, loss, dist


def risk_sentence(evaluation: dict, fmt: Formatter) -> str:
    """How well the propensity model and the bureau score rank customers, out of time."""
    es = fmt.language == "es"
    m = evaluation["model"]
    t0, t1 = fmt.date(evaluation["trained_on"]), fmt.date(evaluation["evaluated_on"])
    text = (
        f"Modelo de propensión de pago entrenado al {t0} y evaluado fuera de tiempo al {t1}: "
        f"AUC {fmt.number(m.auc, 3)}, Gini {fmt.number(m.gini, 3)}, KS {fmt.number(m.ks, 3)}."
        if es
        else f"Propensity-to-pay model trained on {t0} and evaluated out of time on {t1}: "
        f"AUC {fmt.number(m.auc, 3)}, Gini {fmt.number(m.gini, 3)}, KS {fmt.number(m.ks, 3)}."
    )
    if evaluation.get("baseline"):
        feature, b = evaluation["baseline"]
        gain = fmt.number((m.auc - b.auc) * 100, 1)
        text_ = sentence(
            "baseline_sentence", fmt, feature=feature, auc=fmt.number(b.auc, 3), gain=gain
        )
        text += " " + text_
    if evaluation.get("dropped"):
        text += " " + _dropped_sentence(evaluation["dropped"], fmt)
    if "external" in evaluation:
        e = evaluation["external"]
        text += (
            f" Puntaje externo en los mismos clientes: AUC {fmt.number(e.auc, 3)}, Gini {fmt.number(e.gini, 3)}."
            if es
            else f" External score on the same customers: AUC {fmt.number(e.auc, 3)}, Gini {fmt.number(e.gini, 3)}."
        )
    return text


def calibration_table(bands: pd.DataFrame, fmt: Formatter) -> str:
    es = fmt.language == "es"
    labels = {
        "band": "Tramo (1 = más riesgo)" if es else "Band (1 = riskiest)",
        "customers": "Clientes" if es else "Customers",
        "predicted_payer_rate": "Pagadores previstos" if es else "Predicted payer rate",
        "observed_payer_rate": "Pagadores observados" if es else "Observed payer rate",
        "traffic_light": "Semáforo" if es else "Traffic light",
    }
    formats = {"band": "text", "customers": "count", "predicted_payer_rate": "percent",
               "observed_payer_rate": "percent", "traffic_light": "light"}  # fmt: skip
    cap = "Calibración fuera de tiempo" if es else "Calibration, out of time"
    return html_table(bands, formats, fmt, labels, count_column="customers", caption=cap)


def loss_table(bands: pd.DataFrame, fmt: Formatter) -> str:
    es = fmt.language == "es"
    event = bands.event.iloc[0] if len(bands) else ""
    labels = {
        "band": "Tramo" if es else "Band",
        "customers": "Clientes" if es else "Customers",
        "balance": f"{'Saldo' if es else 'Balance'} ({fmt.currency})",
        "predicted_payer_rate": "Pagadores previstos" if es else "Predicted payer rate",
        "expected_loss": f"{'Pérdida esperada' if es else 'Expected loss'} ({fmt.currency})",
    }
    formats = {"band": "text", "customers": "count", "balance": "money", "predicted_payer_rate": "percent",
               "expected_loss": "money"}  # fmt: skip
    lgd = fmt.percent(bands.lgd.iloc[0], 0) if len(bands) else ""
    cap = (f"Pérdida esperada = P(evento) x saldo x LGD {lgd}; evento: sin pago en 30 días" if es
           else f"Expected loss = P({event}) x balance x LGD {lgd}")  # fmt: skip
    return html_table(bands, formats, fmt, labels, count_column="customers", caption=cap)


def distribution_table(dist: pd.DataFrame, fmt: Formatter, order: list[str]) -> str:
    es = fmt.language == "es"
    dist = (
        dist.set_index("segment")
        .reindex([s for s in order if s in set(dist.segment)])
        .reset_index()
    )
    labels = {"segment": "Segmento" if es else "Segment", "customers": "Clientes" if es else "Customers",
              "p10": "P10", "p50": "P50" if not es else "Mediana", "p90": "P90", "mean": "Media" if es else "Mean"}  # fmt: skip
    formats = {"segment": "text", "customers": "count", "p10": "percent", "p50": "percent", "p90": "percent",
               "mean": "percent"}  # fmt: skip
    cap = ("Probabilidad de pago en 30 días por segmento (clientes con saldo)" if es
           else "Probability of paying within 30 days by segment (customers owing)")  # fmt: skip
    return html_table(dist, formats, fmt, labels, count_column="customers", caption=cap)


def quality_note(report, fmt: Formatter) -> str:
    """Validation outcome and information lines (no example ids), and rows excluded."""
    es = fmt.language == "es"
    head = (
        "La validación no encontró problemas; no se excluyó ninguna fila."
        if es
        else "Validation found no problems; no rows were excluded."
    )
    if not report.checked:
        head = (
            "La validación de esta ejecución (antes de los cuadernos) no encontró problemas; "
            "no se excluyó ninguna fila."
            if es
            else "The run's validation (before the notebooks) found no problems; no rows "
            "were excluded."
        )
    if not report.ok:
        head = (
            f"{len(report.problems)} problem(s) found."
            if not es
            else f"Se encontraron {len(report.problems)} problema(s)."
        )
    notes = "".join(f"\n- {line}" for line in report.info)
    return head + notes


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
