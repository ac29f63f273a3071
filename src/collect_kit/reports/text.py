"""Words of the reports in English and Spanish, and sentences generated from numbers."""

from __future__ import annotations

import html
import math

from .format import Formatter

LABELS: dict[str, dict[str, str]] = {
    "segment": {"en": "Segment", "es": "Segmento"},
    "strategy": {"en": "Strategy", "es": "Estrategia"},
    "customers": {"en": "Customers", "es": "Clientes"},
    "light_green": {"en": "in line", "es": "en línea"},
    "light_yellow": {"en": "watch", "es": "vigilar"},
    "light_red": {"en": "act", "es": "actuar"},
    "new_customers": {"en": "New", "es": "Nuevos"},
    "share": {"en": "Share", "es": "Proporción"},
    "balance": {"en": "Balance", "es": "Saldo"},
    "overdue_balance": {"en": "Overdue balance", "es": "Saldo vencido"},
    "mean_days_past_due": {"en": "Mean days past due", "es": "Días de mora promedio"},
    "satisfied": {"en": "Meet the condition", "es": "Cumplen la condición"},
    "reason": {"en": "Why it is empty", "es": "Por qué está vacío"},
    "severity": {"en": "Severity", "es": "Gravedad"},
    "check": {"en": "Check", "es": "Revisión"},
    "message": {"en": "Finding", "es": "Hallazgo"},
    "column": {"en": "Column", "es": "Columna"},
    "null_rate": {"en": "Missing", "es": "Sin dato"},
    "distinct": {"en": "Distinct values", "es": "Valores distintos"},
    "taken_by": {"en": "Condition of ↓ / taken by →", "es": "Condición de ↓ / asignado a →"},
    "from_to": {"en": "Previous month ↓ / this month →", "es": "Mes anterior ↓ / este mes →"},
    "page": {"en": "Page", "es": "Página"},
    "of": {"en": "of", "es": "de"},
    "as_of": {"en": "as of", "es": "al"},
    "run": {"en": "run", "es": "ejecución"},
    "mean_score": {"en": "Mean score", "es": "Puntaje promedio"},
    "company_share": {"en": "Companies", "es": "Empresas"},
    "valid_phone_share": {"en": "Valid phone", "es": "Teléfono válido"},
    "new_share": {"en": "New customers", "es": "Clientes nuevos"},
    "mean_broken_promises": {"en": "Broken promises (mean)", "es": "Promesas rotas (promedio)"},
    "arm": {"en": "Arm", "es": "Brazo"},
    "challenger": {"en": "Challenger", "es": "Desafiante"},
    "designed_share": {"en": "Designed share", "es": "Proporción diseñada"},
    "observed_share": {"en": "Observed share", "es": "Proporción observada"},
    "srm_p": {"en": "p-value (chi-square)", "es": "Valor p (chi-cuadrado)"},
    "verdict": {"en": "Check", "es": "Control"},
    "ok": {"en": "passed", "es": "superado"},
    "failed": {"en": "FAILED: untrustworthy", "es": "FALLIDO: no confiable"},
    "n_champion": {"en": "Champion customers", "es": "Clientes campeón"},
    "n_challenger": {"en": "Challenger customers", "es": "Clientes desafiante"},
    "champion_value": {"en": "Champion", "es": "Campeón"},
    "challenger_value": {"en": "Challenger", "es": "Desafiante"},
    "difference": {"en": "Difference", "es": "Diferencia"},
    "ci_low": {"en": "95 % CI low", "es": "IC 95 % inferior"},
    "ci_high": {"en": "95 % CI high", "es": "IC 95 % superior"},
    "p_value": {"en": "p", "es": "p"},
    "p_holm": {"en": "p (Holm)", "es": "p (Holm)"},
    "p_bh": {"en": "p (BH)", "es": "p (BH)"},
    "decision": {"en": "Decision", "es": "Decisión"},
    "money_per_month": {"en": "Money per month", "es": "Dinero por mes"},
    "weeks_needed": {"en": "Weeks needed", "es": "Semanas necesarias"},
    "look": {"en": "Look", "es": "Lectura"},
    "decided": {"en": "Decided", "es": "Decidido"},
    "relative": {"en": "Relative lift", "es": "Alza relativa"},
    "statistic": {"en": "Statistic", "es": "Estadístico"},
    "adjustment": {"en": "Adjustment", "es": "Ajuste"},
    "raw": {"en": "raw (for information)", "es": "sin ajuste (informativo)"},
    "cuped": {"en": "CUPED", "es": "CUPED"},
    "overall": {"en": "All segments", "es": "Todos los segmentos"},
    "seq_ci": {"en": "Always-valid 95 % CI", "es": "IC 95 % siempre válido"},
    "seq_p": {"en": "Always-valid p", "es": "p siempre válido"},
    "extra_cost_per_customer": {
        "en": "Extra cost per customer",
        "es": "Costo adicional por cliente",
    },
    "money_ci": {"en": "95 % CI", "es": "IC 95 %"},
    "extra_customers_needed": {
        "en": "More customers needed",
        "es": "Clientes adicionales necesarios",
    },
    "champion_payer_rate": {"en": "Champion payer rate", "es": "Tasa de pagadores del campeón"},
    "mde": {"en": "Detectable lift (points)", "es": "Alza detectable (puntos)"},
    "needed": {"en": "Customers for the target lift", "es": "Clientes para el alza objetivo"},
    "experiment": {"en": "Experiment", "es": "Experimento"},
    "group": {"en": "Value", "es": "Valor"},
    "owing_customers": {"en": "Customers owing", "es": "Clientes con saldo"},
    "delinquent_at_start": {"en": "Delinquent at start", "es": "Clientes morosos al inicio"},
    "recovery_rate": {"en": "Recovery rate", "es": "Tasa de recuperación"},
    "payer_rate": {"en": "Payer rate", "es": "Tasa de pagadores"},
    "overdue_ratio": {"en": "% overdue", "es": "% vencido"},
    "other_values": {"en": "(other values)", "es": "(otros valores)"},
    "no_value": {"en": "(no value)", "es": "(sin valor)"},
    "availability": {"en": "Availability", "es": "Disponibilidad"},
    "scorer": {"en": "Scorer", "es": "Puntuador"},
    "model": {"en": "Propensity model", "es": "Modelo de propensión"},
    "baseline": {"en": "Baseline: {feature} alone", "es": "Referencia: solo {feature}"},
    "largest_debtors": {"en": "Largest debtors", "es": "Mayores deudores"},
    "share_of_balance": {"en": "Share of the balance", "es": "Proporción del saldo"},
    "concentration_caption": {
        "en": "Concentration: share of the balance owed by the largest debtors; HHI {hhi}",
        "es": "Concentración: proporción del saldo de los mayores deudores; HHI {hhi}",
    },
    "top_share": {"en": "Top {share}", "es": "{share} mayores"},
    "auc": {"en": "AUC", "es": "AUC"},
    "gini": {"en": "Gini", "es": "Gini"},
    "ks": {"en": "KS", "es": "KS"},
    "not_available_short": {"en": "not available", "es": "no disponible"},
    "contact_kind": {"en": "Contact point", "es": "Punto de contacto"},
    "phone": {"en": "Phone", "es": "Teléfono"},
    "email": {"en": "E-mail", "es": "Correo"},
    "present": {"en": "Customers with one", "es": "Clientes con dato"},
    "valid_share": {"en": "Valid", "es": "Válidos"},
    "possible_share": {"en": "Possible length", "es": "Largo posible"},
    "shared_points": {"en": "Shared by > {n} customers", "es": "Compartidos por > {n} clientes"},
    "customers_on_shared": {"en": "Their customers", "es": "Sus clientes"},
    "contact_caption": {
        "en": "Phones checked with phonenumbers for region {region}, e-mails by syntax",
        "es": "Teléfonos revisados con phonenumbers para la región {region}, correos por sintaxis",
    },
}

#: Sentences with placeholders, by key and language.
SENTENCES: dict[str, dict[str, str]] = {
    "not_available_table": {
        "en": "Not available: the data has no {name} table.",
        "es": "No disponible: los datos no traen la tabla {name}.",
    },
    "not_available_column": {
        "en": "Not available: the {table} table has no {name} column.",
        "es": "No disponible: la tabla {table} no trae la columna {name}.",
    },
    "model_dropped": {
        "en": "Left out of the model: {items}.",
        "es": "Fuera del modelo: {items}.",
    },
    "dropped_all_null": {"en": "{name} (no value)", "es": "{name} (sin valores)"},
    "dropped_constant": {"en": "{name} (the same for everyone)", "es": "{name} (igual para todos)"},
    "dropped_collinear": {
        "en": "{name} (repeats other features)",
        "es": "{name} (repite otras variables)",
    },
    "not_available_payments": {
        "en": "Not available: the data has no dated payments.",
        "es": "No disponible: los datos no traen pagos fechados.",
    },
    "not_available_receivables": {
        "en": "Not available: the data has no dated receivables.",
        "es": "No disponible: los datos no traen documentos fechados.",
    },
    "contacts_not_checked": {
        "en": "Phones and e-mails were not checked for this data: run collect-kit validate.",
        "es": "Teléfonos y correos no revisados para estos datos: ejecute collect-kit validate.",
    },
    "no_roll_rates": {
        "en": "Roll rates: not available, the data has no book at {date} (the start of the month).",
        "es": "Tasas de traspaso: no disponibles, los datos no traen la cartera al {date} "
        "(inicio del mes).",
    },
    "no_previous_book": {
        "en": "Not available: the data has no book at {date} (the previous month end).",
        "es": "No disponible: los datos no traen la cartera al {date} (cierre del mes anterior).",
    },
    "cv_sentence": {
        "en": "A model of {target} cross-validated over {folds} folds on {n} customers ({rate} "
        "with the event): AUC {auc}, Gini {gini}. {feature} alone: AUC {base_auc}.",
        "es": "Modelo de {target} con validación cruzada en {folds} partes sobre {n} clientes "
        "({rate} con el evento): AUC {auc}, Gini {gini}. Solo {feature}: AUC {base_auc}.",
    },
    "decision_run_challenger": {
        "en": "Run the challenger ({challenger}): better on {metric}",
        "es": "Usar el desafiante ({challenger}): mejor en {metric}",
    },
    "decision_run_net_loss": {
        "en": "Better on {metric}, but it costs more than it brings: weigh before running the challenger ({challenger})",
        "es": "Mejor en {metric}, pero cuesta más de lo que aporta: evaluar antes de usar el desafiante ({challenger})",
    },
    "run_net_loss_sentence": {
        "en": "In {segments} the challenger is better on {metric} but, net of its cost, loses {money} per month (95 % CI {low} to {high}).",
        "es": "En {segments} el desafiante es mejor en {metric} pero, descontado su costo, pierde {money} por mes (IC 95 % {low} a {high}).",
    },
    "decision_stop_worse": {
        "en": "Stop the challenger: worse on {metric}",
        "es": "Detener el desafiante: peor en {metric}",
    },
    "decision_stop_futile": {
        "en": "Stop the challenger: a lift of {mde} or more on {metric} is ruled out",
        "es": "Detener el desafiante: se descarta un alza de {mde} o más en {metric}",
    },
    "decision_keep_testing": {
        "en": "Keep testing: {customers} more customers, about {weeks} weeks",
        "es": "Seguir probando: {customers} clientes más, unas {weeks} semanas",
    },
    "decision_keep_testing_ended": {
        "en": "Keep testing: {customers} more customers (nobody was assigned in the last 30 days)",
        "es": "Seguir probando: {customers} clientes más (nadie fue asignado en los últimos 30 días)",
    },
    "decision_withheld_segment": {
        "en": "Withheld: sample-ratio mismatch in this segment",
        "es": "Retenida: desbalance de la muestra en este segmento",
    },
    "decision_withheld_experiment": {
        "en": "Withheld: the whole experiment fails the sample-ratio check",
        "es": "Retenida: el experimento completo no supera el control de proporciones",
    },
    "decision_calibration": {
        "en": "A/A calibration check: no recommendation",
        "es": "Control A/A: sin recomendación",
    },
    "decision_calibration_failed": {
        "en": "A/A calibration check FAILED: identical arms differ on {metric}; check the assignment and the data before trusting any test",
        "es": "Control A/A FALLIDO: brazos idénticos difieren en {metric}; revisar la asignación y los datos antes de confiar en cualquier prueba",
    },
    "srm_experiment_failed": {
        "en": "Sample-ratio mismatch over the whole experiment (p = {p}): the arms do not have "
        "the designed sizes, so every result below is untrustworthy and nothing is recommended "
        "until the assignment is fixed.",
        "es": "Desbalance de la muestra en el experimento completo (p = {p}): los brazos no "
        "tienen los tamaños diseñados, así que ningún resultado es confiable y no se recomienda "
        "nada hasta corregir la asignación.",
    },
    "stop_sentence": {
        "en": "Stop the challenger in {segments}: {why}.",
        "es": "Detener el desafiante en {segments}: {why}.",
    },
    "stop_worse_money": {
        "en": "while it runs it loses {money} per month (95 % CI {low} to {high})",
        "es": "mientras funciona pierde {money} por mes (IC 95 % {low} a {high})",
    },
    "stop_futile": {
        "en": "an effect worth having is ruled out",
        "es": "se descarta un efecto que valga la pena",
    },
    "overall_sentence": {
        "en": "All segments together ({challenger}, {metric}): {estimate}{unit} ({relative} %), "
        "95 % CI {low} to {high}, p = {p} (post-stratified; for information, outside the "
        "decision family).",
        "es": "Todos los segmentos juntos ({challenger}, {metric}): {estimate}{unit} "
        "({relative} %), IC 95 % {low} a {high}, p = {p} (post-estratificado; informativo, "
        "fuera de la familia de decisiones).",
    },
    "primary_metric_note": {
        "en": "Decisions read {metric} (MDE {mde}); the other metrics are shown with "
        "uncorrected p-values and decide nothing.",
        "es": "Las decisiones leen {metric} (efecto mínimo {mde}); las demás métricas se "
        "muestran con valores p sin corregir y no deciden nada.",
    },
    "sequential_note": {
        "en": "Sequential readout: always-valid intervals and p-values (confidence sequences, "
        "tuned to {tuning} customers), so looking every week does not inflate false positives.",
        "es": "Lectura secuencial: intervalos y valores p siempre válidos (secuencias de "
        "confianza, ajustadas a {tuning} clientes), así que mirar cada semana no infla los "
        "falsos positivos.",
    },
    "withheld_note": {
        "en": "{mark} a figure about fewer than 5 customers, withheld (their count shows as <5).",
        "es": "{mark} cifra sobre menos de 5 clientes, omitida (su número aparece como <5).",
    },
    "light_legend": {
        "en": "Traffic light: binomial test of each band's observed events against its "
        "prediction; ● in line (inside the central 95 % range), ▲ watch (outside it, inside "
        "99.9 %), ■ act (beyond 99.9 %).",
        "es": "Semáforo: prueba binomial de los eventos observados de cada tramo frente a su "
        "predicción; ● en línea (dentro del 95 % central), ▲ vigilar (fuera de él, dentro del "
        "99,9 %), ■ actuar (más allá del 99,9 %).",
    },
    "sequential_rereads": {
        "en": "From the look of {date} nobody new is read: the looks re-read the same customers "
        "with longer windows. The always-valid guarantee is for customers arriving over time, so "
        "these looks are information; decide once the windows have closed.",
        "es": "Desde la revisión del {date} no se lee a nadie nuevo: las revisiones vuelven a "
        "leer a los mismos clientes con ventanas más largas. La garantía siempre válida es para "
        "clientes que van llegando, así que estas revisiones son informativas; decidir cuando "
        "las ventanas hayan cerrado.",
    },
    "baseline_sentence": {
        "en": "The same customers ranked by {feature} alone: AUC {auc}; the model adds "
        "{gain} AUC points.",
        "es": "Los mismos clientes ordenados solo por {feature}: AUC {auc}; el modelo agrega "
        "{gain} puntos de AUC.",
    },
}


def sentence(key: str, fmt: Formatter, **values) -> str:
    """The sentence ``key`` of :data:`SENTENCES` in the report's language, filled in."""
    return SENTENCES[key][fmt.language].format(**values)


def not_available(name: str, fmt: Formatter) -> str:
    """ "Not available: ..." for an absent input ``name`` (``contacts`` or
    ``contacts.cost``), in the report's language."""
    if name in ("payments", "receivables"):
        return sentence(f"not_available_{name}", fmt)
    if "." in name:
        table, column = name.split(".", 1)
        return sentence("not_available_column", fmt, table=table, name=column)
    return sentence("not_available_table", fmt, name=name)


HEADINGS: dict[str, dict[str, str]] = {
    "summary": {"en": "Summary", "es": "Resumen"},
    # each document of a run: "<report title>: <document>" in its title and running header
    "document_portfolio_report": {"en": "Portfolio", "es": "Cartera"},
    "document_segmentation": {"en": "Segmentation", "es": "Segmentación"},
    "document_experiment_readout": {"en": "Strategy tests", "es": "Pruebas de estrategia"},
    "recovery": {"en": "Recovery by segment", "es": "Recuperación por segmento"},
    "vintages": {"en": "Recovery by vintage", "es": "Recuperación por cosecha"},
    "aging": {"en": "Aging and roll rates", "es": "Antigüedad de la deuda y tasas de traspaso"},
    "contact": {"en": "Contactability and promises", "es": "Contactabilidad y promesas"},
    "risk": {"en": "Risk", "es": "Riesgo"},
    "strategy": {"en": "Strategy tests", "es": "Pruebas de estrategia"},
    "methodology": {"en": "Methodology", "es": "Metodología"},
    "quality": {"en": "Data quality", "es": "Calidad de datos"},
    "segments": {"en": "Segments", "es": "Segmentos"},
    "diagnostics": {"en": "Diagnostics", "es": "Diagnóstico"},
    "absorption": {"en": "Absorption between segments", "es": "Absorción entre segmentos"},
    "migration": {
        "en": "Migration since the previous month",
        "es": "Migración desde el mes anterior",
    },
    "profile": {"en": "Profile of each segment", "es": "Perfil de cada segmento"},
    "design": {"en": "Design recap", "es": "Resumen del diseño"},
    "srm": {"en": "Sample-ratio check", "es": "Control de proporciones de la muestra"},
    "effects": {"en": "Effects per segment", "es": "Efectos por segmento"},
    "survival": {"en": "Time to first payment", "es": "Tiempo hasta el primer pago"},
    "heterogeneity": {
        "en": "Does the effect differ across segments?",
        "es": "¿Difiere el efecto entre segmentos?",
    },
    "recommendation": {"en": "Recommendation", "es": "Recomendación"},
    "looks": {
        "en": "Weekly looks (always-valid intervals)",
        "es": "Lecturas semanales (intervalos siempre válidos)",
    },
    "breakdown": {"en": "Indicators by {column}", "es": "Indicadores por {column}"},
}


def document_title(report_title: str, notebook: str, language: str) -> str:
    """The title of one document of a run: the report's title and what the document is
    (``Monthly collections report: Segmentation``), so the three PDFs of a run differ."""
    words = HEADINGS.get(f"document_{notebook}")
    return f"{report_title}: {words[language]}" if words else report_title


def heading(key: str, fmt: Formatter, level: int = 2, **values) -> str:
    """A section heading of any report (``HEADINGS``) in the report's language; ``values``
    fill its placeholders (escaped with the rest)."""
    words = HEADINGS[key][fmt.language].format(**values)
    return f"<h{level}>{html.escape(words)}</h{level}>"


def paragraph(text: str) -> str:
    """Plain sentences as safe HTML: every character escaped, never read as Markdown.

    Sentences carry user-controlled names (segments, strategies, arms, experiments,
    files), so they are shown as text: ``<img ...>`` or ``[x](javascript:...)`` in a
    segment name stays visible text. Lines starting with ``- `` become a bulleted list.
    """
    lines = [line for line in (text or "").split("\n") if line.strip()]
    if not lines:
        return ""
    out, items = [], []
    for line in lines:
        if line.startswith("- "):
            items.append(f"<li>{html.escape(line[2:])}</li>")
            continue
        if items:
            out.append(f"<ul>{''.join(items)}</ul>")
            items = []
        out.append(f"<p>{html.escape(line)}</p>")
    if items:
        out.append(f"<ul>{''.join(items)}</ul>")
    return "".join(out)


def label(key: str, language: str) -> str:
    """The word for ``key`` in ``language`` (the key itself when there is none)."""
    return LABELS.get(key, {}).get(language, key)


def _missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def change_sentence(
    name: str, current, previous, unit: str, fmt: Formatter, driver: str | None = None
) -> str:
    """One sentence on how a figure moved since the previous month.

    ``unit``: ``fraction`` (a rate; the change is in percentage points), ``currency``,
    ``days`` or ``count``. Handles a rise, a fall, no change (equal when rounded as shown)
    and a missing current or previous value. ``driver``: what explains most of a rise or
    fall (e.g. "customers 1-30 days past due at the start (+1.1 points)"), appended as
    "driven by ..." when the figure moved.
    """
    es = fmt.language == "es"

    def show(x):
        if unit == "fraction":
            return fmt.percent(x)
        if unit == "currency":
            return fmt.money(x)
        if unit == "days":
            return f"{fmt.number(x, 1)} {'días' if es else 'days'}"
        return fmt.number(x)

    if _missing(current):
        return f"{name}: {'sin datos este mes' if es else 'no data this month'}."
    if _missing(previous):
        tail = "sin cifra del mes anterior" if es else "no figure for the previous month"
        return f"{name} {'fue' if es else 'was'} {show(current)}; {tail}."
    if unit == "fraction":
        delta = round((current - previous) * 100, 1)
        amount = f"{fmt.number(abs(delta), 1)} {'puntos' if es else 'points'}"
    else:
        delta = round(current - previous, 1 if unit == "days" else 0)
        amount = show(abs(delta))
    if delta == 0:
        return f"{name} {'se mantuvo en' if es else 'was unchanged at'} {show(current)}."
    rose, fell = ("subió", "bajó") if es else ("rose", "fell")
    verb = rose if delta > 0 else fell
    why = f", {'explicado por' if es else 'driven by'} {driver}" if driver else ""
    return f"{name} {verb} {amount} {'hasta' if es else 'to'} {show(current)}{why}."
