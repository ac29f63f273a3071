"""The experiment readout's pages: design recap, SRM, effects, survival, recommendations.

Each function takes an :class:`~collect_kit.experiments.run.ExperimentReadout` (already
aggregated: no customer rows) and a :class:`~collect_kit.reports.format.Formatter`, and
returns HTML, a sentence or a tidy frame for :mod:`collect_kit.plots`;
``experiment_readout.ipynb`` and the portfolio report's strategy-test section only display
them. Rows about 1-4 customers in an arm are withheld ("<5").
"""

from __future__ import annotations

import html
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..errors import NoResultsYetError
from ..experiments.config import ExperimentConfig, load_experiment
from ..experiments.design import design
from ..experiments.run import ExperimentReadout, readout_experiment
from .format import Formatter, html_table, is_small
from .text import label

METRICS = {
    "payer_rate": {"en": "Payer rate", "es": "Tasa de pagadores", "unit": "fraction"},
    "collected_per_customer": {
        "en": "Collected per customer",
        "es": "Recaudado por cliente",
        "unit": "currency",
    },
    "recovery_rate": {"en": "Recovery rate", "es": "Tasa de recuperación", "unit": "fraction"},
}

DECISIONS = {
    "run_challenger": {"en": "Run the challenger", "es": "Usar el desafiante"},
    "run_champion": {
        "en": "Keep the champion (the challenger is worse)",
        "es": "Mantener el campeón (el desafiante es peor)",
    },
    "keep_champion": {
        "en": "Keep the champion: no effect of 3 points or more",
        "es": "Mantener el campeón: sin efecto de 3 puntos o más",
    },
    "keep_testing": {"en": "Keep testing", "es": "Seguir probando"},
    "withheld_srm": {
        "en": "Withheld: sample-ratio mismatch",
        "es": "Retenida: desbalance de la muestra",
    },
    "calibration": {
        "en": "A/A calibration check: no recommendation",
        "es": "Control A/A: sin recomendación",
    },
}


def read_all(paths, as_of, portfolio) -> tuple[list[ExperimentReadout], list[str]]:
    """Read out each experiment config as of ``as_of`` on an open ``portfolio``.

    Returns the readouts and the configs of experiments with no closed outcome window yet
    (not started, or too recent: see :func:`pending_sentence`), so the report says so
    instead of failing.
    """
    readouts, pending = [], []
    for path in paths:
        try:
            readouts.append(readout_experiment(path, as_of=as_of, portfolio=portfolio))
        except NoResultsYetError:
            pending.append(load_experiment(path)[0])
    return readouts, pending


def pending_sentence(pending: list[ExperimentConfig], as_of, fmt: Formatter) -> str:
    """Which experiments have nothing to read yet at ``as_of``."""
    if not pending:
        return ""
    names = ", ".join(c.experiment_id for c in pending)
    if fmt.language == "es":
        return (
            f"Sin resultados aún al {fmt.date(as_of)} (ninguna ventana de resultado cerrada): "
            f"{names}."
        )
    return f"No results yet as of {fmt.date(as_of)} (no outcome window has closed): {names}."


def metric_label(metric: str, language: str) -> str:
    return METRICS[metric][language]


def _weights(r: ExperimentReadout, segment: str) -> dict[str, float]:
    arms = r.config.arms
    w = arms.get(segment, {}) if all(isinstance(v, Mapping) for v in arms.values()) else arms
    total = float(sum(w.values())) or 1.0
    return {a: v / total for a, v in w.items()}


def title_block(r: ExperimentReadout, fmt: Formatter) -> str:
    """The experiment's id, description and what was read (windows closed by as_of)."""
    c = r.config
    es = fmt.language == "es"
    n = int(r.statistics.n.sum())
    text = (
        f"{fmt.count(n)} clientes con la ventana de resultado de {c.window_days} días cerrada al "
        f"{fmt.date(r.as_of)}; α = {fmt.number(c.alpha, 2)}."
        if es
        else f"{fmt.count(n)} customers whose {c.window_days}-day outcome window closed by "
        f"{fmt.date(r.as_of)}; α = {fmt.number(c.alpha, 2)}."
    )
    aa = ""
    if c.aa:
        aa = (
            '<p class="ck-warning">Prueba A/A de calibración: los brazos son idénticos; '
            "cualquier diferencia «significativa» es una alerta sobre los datos o la asignación.</p>"
            if es
            else '<p class="ck-warning">A/A calibration check: the arms are identical; any '
            '"significant" difference is a warning about the data or the assignment.</p>'
        )
    desc = f"<p>{html.escape(c.description)}</p>" if c.description else ""
    return (
        f"<h2>{html.escape(label('experiment', fmt.language))}: {html.escape(c.experiment_id)}</h2>"
        f"{desc}<p>{html.escape(text)}</p>{aa}"
    )


def design_recap(r: ExperimentReadout, fmt: Formatter) -> tuple[str, list[str]]:
    """Per segment: the lift in payer rate this sample could detect, and the sample the
    design's target lift (``mde_payer_rate``) would need (statsmodels power, as designed).

    The baseline is the champion's observed payer rate; returns (HTML table, sentences).
    """
    c = r.config
    s = r.statistics
    rows = []
    for seg, g in s.groupby("segment", sort=False):
        w = _weights(r, seg)
        champion = next(iter(w))
        champ = g[g.arm == champion]
        if champ.empty or champ.n.iloc[0] == 0:
            continue
        rows.append(
            {
                "segment": seg,
                "customers": int(g.n.sum()),
                "payer_rate": float(champ.payers.iloc[0] / champ.n.iloc[0]),
                "weights": w,
            }
        )
    frames = []
    for row in rows:
        d = design(
            pd.DataFrame([row]).drop(columns="weights"), row["weights"], c.mde_payer_rate,
            alpha=c.alpha, power=c.power, language=fmt.language,
        )  # fmt: skip
        frames.append(d)
    if not frames:
        return "", []
    table = pd.concat(frames, ignore_index=True)
    table["mde"] = table.mde_payer_rate_achievable * 100
    table["champion_payer_rate"] = table.payer_rate
    split = ", ".join(
        f"{html.escape(a)} {fmt.percent(v, 0)}" for a, v in _weights(r, table.segment[0]).items()
    )
    formats = {"segment": "text", "challenger": "text", "customers": "count",
               "champion_payer_rate": "percent", "mde": "number1", "needed": "count"}  # fmt: skip
    table["needed"] = table.needed_customers
    labels = {k: label(k, fmt.language) for k in formats}
    caption = ("Reparto diseñado: " if fmt.language == "es" else "Designed split: ") + split
    sentences = [s for s, n in zip(table.sentence, table.customers, strict=True) if not is_small(n)]
    return (
        html_table(table, formats, fmt, labels, count_column="customers", caption=caption),
        sentences,
    )


def srm_frame(r: ExperimentReadout) -> pd.DataFrame:
    """Per segment x arm: designed share, customers, observed share, the segment's SRM p."""
    s = r.statistics[["segment", "arm", "n"]].rename(columns={"n": "customers"})
    check = r.results.drop_duplicates("segment").set_index("segment")
    rows = []
    for seg, g in s.groupby("segment", sort=False):
        w = _weights(r, seg)
        total = g.customers.sum()
        for arm, share in w.items():
            n = int(g.loc[g.arm == arm, "customers"].sum())
            rows.append(
                {
                    "segment": seg,
                    "arm": arm,
                    "designed_share": share,
                    "customers": n,
                    "observed_share": n / total if total else np.nan,
                    "srm_p": check.srm_p_value.get(seg, np.nan),
                    "srm": bool(check.srm.get(seg, False)),
                }
            )
    return pd.DataFrame(rows)


def srm_table(r: ExperimentReadout, fmt: Formatter) -> str:
    f = srm_frame(r)
    f["verdict"] = np.where(f.srm, label("failed", fmt.language), label("ok", fmt.language))
    f["srm_p"] = f.srm_p.map(lambda p: "" if p != p else _p(p, fmt))
    formats = {"segment": "text", "arm": "text", "customers": "count",
               "designed_share": "percent", "observed_share": "percent", "srm_p": "text",
               "verdict": "text"}  # fmt: skip
    labels = {k: label(k, fmt.language) for k in formats}
    return html_table(f, formats, fmt, labels, count_column="customers")


def srm_sentence(r: ExperimentReadout, fmt: Formatter) -> str:
    """Which segments failed the sample-ratio check (p < 0.001), or that none did."""
    failed = sorted(set(r.results.loc[r.results.srm, "segment"]))
    es = fmt.language == "es"
    if not failed:
        return (
            "Todos los segmentos superan el control de proporciones (p ≥ 0,001): la asignación "
            "se comporta según el diseño."
            if es
            else "Every segment passes the sample-ratio check (p ≥ 0.001): the assignment "
            "behaves as designed."
        )
    names = ", ".join(failed)
    return (
        f"Desbalance de la muestra en {names}: sus resultados no son confiables y no se "
        "recomienda nada para ellos hasta revisar la asignación."
        if es
        else f"Sample-ratio mismatch in {names}: their results are untrustworthy and get no "
        "recommendation until the assignment is fixed."
    )


def _p(p: float, fmt: Formatter) -> str:
    if p != p:
        return ""
    return "< " + fmt.number(0.001, 3) if p < 0.001 else fmt.number(p, 3)


def effects(r: ExperimentReadout, metric: str) -> pd.DataFrame:
    """The rows of one metric, with a ``label`` per segment (and challenger when several)
    and ``smallest_arm`` (customers in the smaller arm, for suppression)."""
    f = r.results[r.results.metric == metric].copy()
    several = f.challenger.nunique() > 1
    f["label"] = f.segment + (" · " + f.challenger if several else "")
    f["smallest_arm"] = f[["n_champion", "n_challenger"]].min(axis=1)
    f["significant"] = (
        f.p_holm < r.config.alpha if metric != "recovery_rate" else f.p_value < r.config.alpha
    )
    return f.reset_index(drop=True)


def effects_table(r: ExperimentReadout, metric: str, fmt: Formatter) -> str:
    """Champion and challenger values, the difference with its CI and the p-values."""
    f = effects(r, metric)
    fraction = METRICS[metric]["unit"] == "fraction"
    scale = 100.0 if fraction else 1.0
    for col in ("estimate", "ci_low", "ci_high"):
        f[col] = f[col] * scale
    kind = "percent" if fraction else "money"
    diff = "number1" if fraction else "money"
    for col in ("p_value", "p_holm", "p_bh"):
        f[col] = f[col].map(lambda p, fmt=fmt: _p(p, fmt))
    formats = {"label": "text", "n_champion": "count", "n_challenger": "count",
               "champion": kind, "challenger_value": kind, "estimate": diff, "ci_low": diff,
               "ci_high": diff, "p_value": "text", "p_holm": "text", "p_bh": "text"}  # fmt: skip
    if metric == "recovery_rate":
        formats.pop("p_holm"), formats.pop("p_bh")
    labels = {k: label(k, fmt.language) for k in formats}
    labels["label"] = label("segment", fmt.language)
    labels["champion"] = label("champion_value", fmt.language)
    unit = (" (puntos)" if fmt.language == "es" else " (points)") if fraction else (
        f" ({fmt.currency})" if fmt.currency else "")  # fmt: skip
    labels["estimate"] = label("difference", fmt.language) + unit
    return html_table(f, formats, fmt, labels, count_column="smallest_arm",
                      caption=metric_label(metric, fmt.language))  # fmt: skip


def forest_title(r: ExperimentReadout, metric: str, fmt: Formatter) -> str:
    """A title stating the finding: which segments moved (Holm-adjusted), or that none did."""
    f = effects(r, metric)
    f = f[f.trustworthy & ~f.smallest_arm.map(is_small) & f.estimate.notna()]
    name = metric_label(metric, fmt.language)
    es = fmt.language == "es"
    up = list(f.loc[f.significant & (f.estimate > 0), "label"])
    down = list(f.loc[f.significant & (f.estimate < 0), "label"])
    if not up and not down and metric == "recovery_rate":  # not in the corrected family
        return (
            f"{name}: ningún segmento muestra una diferencia con p < α"
            if es
            else f"{name}: no segment shows a difference with p < α"
        )
    if not up and not down:
        return (
            f"{name}: ningún segmento muestra una diferencia que resista la corrección múltiple"
            if es
            else f"{name}: no segment shows a difference that survives the multiple-testing correction"
        )
    parts = []
    if up:
        parts.append(
            ("el desafiante sube en " if es else "the challenger is higher in ") + ", ".join(up)
        )
    if down:
        parts.append(
            ("el desafiante baja en " if es else "the challenger is lower in ") + ", ".join(down)
        )
    tail = ""
    if metric == "recovery_rate":
        tail = " (p < α, sin corregir)" if es else " (p < α, uncorrected)"
    return f"{name}: " + "; ".join(parts) + tail


def heterogeneity_sentence(r: ExperimentReadout, fmt: Formatter) -> str:
    """Cochran's Q per primary metric: does the effect differ across segments?"""
    h = r.heterogeneity
    es = fmt.language == "es"
    if h.empty:
        return (
            "Hay menos de dos segmentos confiables: no se puede comparar el efecto entre segmentos."
            if es
            else "Fewer than two trustworthy segments: the effect cannot be compared across segments."
        )
    out = []
    for row in h.itertuples():
        if row.metric not in METRICS or row.segments < 2:
            continue
        name = metric_label(row.metric, fmt.language)
        differs = row.p_value < r.config.alpha
        if es:
            verdict = "difiere" if differs else "no difiere de forma detectable"
            out.append(f"{name} ({row.challenger}): el efecto {verdict} entre {row.segments} "
                       f"segmentos (Q de Cochran = {fmt.number(row.q, 2)}, p = {_p(row.p_value, fmt)}).")  # fmt: skip
        else:
            verdict = "differs" if differs else "does not differ detectably"
            out.append(f"{name} ({row.challenger}): the effect {verdict} across {row.segments} "
                       f"segments (Cochran's Q = {fmt.number(row.q, 2)}, p = {_p(row.p_value, fmt)}).")  # fmt: skip
    return " ".join(out)


def recommendation_frame(r: ExperimentReadout, fmt: Formatter) -> pd.DataFrame:
    """The recommendation table in words and money, with the customers behind each row."""
    rec = r.recommendations.copy()
    for col in ("money_per_month", "money_ci_low", "money_ci_high", "extra_customers_needed",
                "extra_cost_per_customer"):  # fmt: skip
        if col not in rec:
            rec[col] = np.nan
    n = r.results.drop_duplicates(["segment", "challenger"]).set_index(["segment", "challenger"])
    keys = list(zip(rec.segment, rec.challenger, strict=True))
    rec["customers"] = [int(n.n_champion.get(k, 0) + n.n_challenger.get(k, 0)) for k in keys]
    rec["smallest_arm"] = [int(min(n.n_champion.get(k, 0), n.n_challenger.get(k, 0))) for k in keys]
    rec["decision_text"] = [
        DECISIONS[c][fmt.language] + (f" ({ch})" if c == "run_challenger" else "")
        for c, ch in zip(rec.code, rec.challenger, strict=True)
    ]
    rec["money_ci"] = [
        "" if lo != lo else f"{fmt.number(lo)} … {fmt.number(hi)}"
        for lo, hi in zip(rec.money_ci_low, rec.money_ci_high, strict=True)
    ]
    return rec


def recommendation_table(r: ExperimentReadout, fmt: Formatter) -> str:
    rec = recommendation_frame(r, fmt)
    formats = {"segment": "text", "challenger": "text", "customers": "count",
               "decision_text": "text", "extra_cost_per_customer": "money",
               "money_per_month": "money", "money_ci": "text",
               "extra_customers_needed": "number"}  # fmt: skip
    labels = {k: label(k, fmt.language) for k in formats}
    labels["decision_text"] = label("decision", fmt.language)
    cur = f" ({fmt.currency})" if fmt.currency else ""
    labels["money_per_month"] += cur
    labels["money_ci"] += cur
    labels["extra_cost_per_customer"] += cur
    rec.loc[rec.smallest_arm.map(is_small), "money_ci"] = "·"
    return html_table(rec, formats, fmt, labels, count_column="smallest_arm")


def recommendation_sentence(r: ExperimentReadout, fmt: Formatter) -> str:
    """One sentence: what to roll out and the money it brings, or why nothing is."""
    rec = recommendation_frame(r, fmt)
    rec = rec[~rec.smallest_arm.map(is_small)]
    es = fmt.language == "es"
    wins = rec[rec.code == "run_challenger"]
    if r.config.aa:
        return (
            "Prueba A/A: no se recomienda ninguna estrategia; sirve para calibrar."
            if es
            else "A/A check: no strategy is recommended; it calibrates the method."
        )
    if wins.empty:
        testing = list(rec.loc[rec.code == "keep_testing", "segment"])
        tail = (
            (f" Seguir probando en {', '.join(testing)}." if es else f" Keep testing in {', '.join(testing)}.")
            if testing
            else ""
        )  # fmt: skip
        return (
            "Ningún desafiante supera al campeón con la evidencia actual." + tail
            if es
            else "No challenger beats the champion on the evidence so far." + tail
        )
    total = wins.money_per_month.sum()
    lo, hi = wins.money_ci_low.sum(), wins.money_ci_high.sum()
    segs = ", ".join(wins.segment)
    if es:
        return (
            f"Usar el desafiante en {segs} aportaría {fmt.money(total)} por mes "
            f"(suma de los IC 95 % por segmento: {fmt.number(lo)} a {fmt.number(hi)})."
        )
    return (
        f"Rolling the challenger out in {segs} would bring {fmt.money(total)} per month "
        f"(sum of the per-segment 95 % CIs: {fmt.number(lo)} to {fmt.number(hi)})."
    )


def survival_curves(r: ExperimentReadout) -> pd.DataFrame:
    """Kaplan-Meier curves (share not yet paid by day) of arms with at least 5 customers."""
    n = r.statistics.set_index(["segment", "arm"]).n
    c = r.survival
    keep = [
        not is_small(n.get((s, a), 0)) and n.get((s, a), 0) > 0
        for s, a in zip(c.segment, c.arm, strict=True)
    ]
    return c[keep].reset_index(drop=True)


def survival_sentence(r: ExperimentReadout, fmt: Formatter) -> str:
    """Log-rank test per segment: does the challenger bring the first payment forward?"""
    es = fmt.language == "es"
    t = r.logrank
    if t.empty:
        return ""
    differ = list(t.loc[t.p_value < r.config.alpha, "segment"])
    if not differ:
        return (
            "La prueba log-rank no muestra diferencias en el tiempo hasta el primer pago en ningún segmento."
            if es
            else "The log-rank test shows no difference in time to first payment in any segment."
        )
    return (
        f"El tiempo hasta el primer pago difiere entre brazos (log-rank, p < {fmt.number(r.config.alpha, 2)}, "
        f"sin corregir) en: {', '.join(differ)}."
        if es
        else f"Time to first payment differs between arms (log-rank, p < {fmt.number(r.config.alpha, 2)}, "
        f"uncorrected) in: {', '.join(differ)}."
    )


def axis_label(metric: str, fmt: Formatter) -> str:
    """The forest plot's axis: a difference in points (rates) or in currency (money)."""
    es = fmt.language == "es"
    if METRICS[metric]["unit"] == "fraction":
        return "Diferencia (puntos)" if es else "Difference (points)"
    word_ = "Diferencia" if es else "Difference"
    return f"{word_} ({fmt.currency})" if fmt.currency else word_


def survival_title(r: ExperimentReadout, fmt: Formatter) -> str:
    """The survival figure's title states the finding of the log-rank tests."""
    t = r.logrank
    es = fmt.language == "es"
    differ = [] if t.empty else list(t.loc[t.p_value < r.config.alpha, "segment"])
    if differ:
        return (
            f"El primer pago llega a otro ritmo según el brazo en {', '.join(differ)}"
            if es
            else f"The first payment comes at a different pace by arm in {', '.join(differ)}"
        )
    return (
        "Los brazos pagan por primera vez al mismo ritmo (Kaplan-Meier)"
        if es
        else "Arms make their first payment at the same pace (Kaplan-Meier)"
    )


def short_title(r: ExperimentReadout, fmt: Formatter, level: int = 3) -> str:
    """The experiment id and description as a sub-heading (the portfolio report's summary)."""
    c = r.config
    desc = f" — {c.description}" if c.description else ""
    return f"<h{level}>{html.escape(c.experiment_id + desc)}</h{level}>"


def method_note(fmt: Formatter) -> str:
    """How the decisions are reached, in one paragraph for executives."""
    if fmt.language == "es":
        return (
            "Cada desafiante se compara con el campeón dentro de cada segmento. Se recomienda "
            "cambiar solo si la tasa de pagadores o el recaudado por cliente mejoran con un "
            "valor p ajustado por Holm menor que α sobre todas las comparaciones; el dinero por "
            "mes es el efecto por cliente por los clientes que entran al segmento cada mes, "
            "neto del costo adicional, con su intervalo de confianza del 95 %."
        )
    return (
        "Each challenger is compared with the champion within each segment. A switch is "
        "recommended only when the payer rate or the amount collected per customer improves "
        "with a Holm-adjusted p-value below α across all comparisons; money per month is the "
        "effect per customer times the customers entering the segment each month, net of the "
        "extra cost, with its 95 % confidence interval."
    )
