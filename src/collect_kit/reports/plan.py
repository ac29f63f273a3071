"""The strategy plan's pages: what to do next month, the plan by segment, capacities and
their shadow prices, the comparison with today's plan, robustness and the effects' sources.

Each function takes a :class:`~collect_kit.planning.run.StrategyPlan` (aggregated: counts
per segment and treatment, no customer rows) and a
:class:`~collect_kit.reports.format.Formatter`, and returns HTML, sentences or a figure;
``strategy_plan.ipynb`` only displays them. Every word comes from the text catalogue;
counts of 1-4 customers read "<5" and their row's amounts are withheld.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .. import plots
from ..planning.run import StrategyPlan, make_plan
from . import text
from .format import Formatter, html_table
from .text import label, sentence

#: a choice that is the best in fewer draws than this is called uncertain
SURE = 0.8
#: marks a treatment whose effect is assumed, not tested
ASSUMED = "†"


def read(
    config, as_of, portfolio, draws: int | None = None, snapshots=None, readouts=None
) -> StrategyPlan:
    """The plan of ``config`` for the customers owing at ``as_of`` on an open portfolio;
    ``snapshots``: the runner's cached snapshot files (date -> Parquet), read for ``as_of``
    and the month end before instead of computing them; ``readouts``: the run's stored
    readouts (:mod:`collect_kit.experiments.stored`)."""
    from ..periods import previous_month_end
    from .context import snapshot_table

    tables = {
        d: snapshot_table(portfolio, d, snapshots)
        for d in (pd.Timestamp(as_of), previous_month_end(as_of))
        if snapshots and str(pd.Timestamp(d).date()) in snapshots
    }
    return make_plan(
        config, as_of=as_of, portfolio=portfolio, draws=draws, snapshots=tables, readouts=readouts
    )


def formatter(plan: StrategyPlan, fmt: Formatter) -> Formatter:
    """``fmt`` with the plan's names: its treatments, its segmentation's segments (the
    catch-all "Other" without a label) and the experiments that measured effects."""
    names = text.display_names(plan.labels, fmt.language)
    return dataclasses.replace(fmt, names={**fmt.names, **names})


def _join(items: list[str], language: str) -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {label('and', language)} {items[-1]}"


def gain(plan: StrategyPlan, which: str = "chosen") -> tuple[float, float, float]:
    """(net gain over today's plan per month, its 95 % interval low and high), currency."""
    sol = plan.robustness.robust if which == "robust" else getattr(plan, which)
    return sol.gain_over(plan.today)


def headline(plan: StrategyPlan, fmt: Formatter) -> str:
    """The page's first sentence: the gain over today's plan and what limits it."""
    value, low, high = gain(plan)
    moved = plan.chosen.moved
    if moved == 0:
        return sentence("plan_keep_all", fmt, champion=fmt.name(plan.problem.champion))
    binding = plan.chosen.limits[plan.chosen.limits.binding]
    limits = _join([capacity_name(n, fmt) for n in binding.name], fmt.language)
    words = sentence(
        "plan_headline", fmt, gain=fmt.short_money(value), low=fmt.short_money(low),
        high=fmt.short_money(high), moved=fmt.count(moved),
        customers=fmt.count(int(plan.problem.customers.sum())),
    )  # fmt: skip
    if limits:
        words += " " + sentence("plan_limited_by", fmt, limits=limits)
    return words


def capacity_name(name: str, fmt: Formatter) -> str:
    """A capacity in words: ``budget:sms`` -> "SMS budget"."""
    kind, _, channel = name.partition(":")
    return label(f"cap_{kind}", fmt.language).format(channel=text.channel(channel, fmt.language))


def _clean(value: float) -> float:
    """Zero for a sum that is zero but for rounding (no "-0" on the page)."""
    return 0.0 if abs(value) < 0.5 else float(value)


def _amount(value: float, unit: str, fmt: Formatter) -> str:
    return fmt.money(value) if unit == "currency" else fmt.number(value)


def decision_sentences(plan: StrategyPlan, fmt: Formatter) -> list[str]:
    """One sentence per segment with customers: its treatments, what they bring, how sure."""
    a = plan.chosen.allocation
    seg = plan.chosen.segments(plan.today)
    p = plan.problem
    best = (
        plan.robustness.selection.set_index("segment").probability_best
        if plan.robustness is not None else None
    )  # fmt: skip
    free = plan.unconstrained.allocation
    out = []
    for segment, row in seg.iterrows():
        if row.customers == 0:
            continue
        mine = a[(a.segment == segment) & (a.customers > 0)]
        name = fmt.name(segment)
        if (mine.treatment == p.champion).all():
            kept = p.keep_champion[p.segments.index(segment)]
            other = free[(free.segment == segment) & (free.treatment != p.champion)].customers.sum()
            why = (
                "plan_why_rule" if kept else ("plan_why_capacity" if other else "plan_why_nothing")
            )
            out.append(sentence("plan_segment_keep", fmt, segment=name,
                                champion=fmt.name(p.champion), customers=fmt.count(row.customers),
                                why=sentence(why, fmt)))  # fmt: skip
            continue
        given = [
            sentence(
                "plan_give", fmt, treatment=fmt.name(r.treatment), customers=fmt.count(r.customers)
            )
            for r in mine.itertuples()
        ]
        words = sentence(
            "plan_segment_change", fmt, segment=name, given=_join(given, fmt.language),
            money=fmt.short_money(row.money), cost=fmt.short_money(row.extra_cost),
            low=fmt.short_money(row.money_low), high=fmt.short_money(row.money_high),
        )  # fmt: skip
        if best is not None and segment in best.index:
            prob = best[segment]
            words += " " + sentence("plan_best_in", fmt, share=fmt.percent(prob, 0),
                                    draws=fmt.number(plan.robustness.draws))  # fmt: skip
            if prob < SURE:
                words += " " + sentence("plan_uncertain", fmt)
        assumed = mine[mine.assumed].treatment.tolist()
        if assumed:
            words += " " + sentence("plan_assumed", fmt, treatments=_join(
                [fmt.name(t) for t in assumed], fmt.language))  # fmt: skip
        out.append(words)
    return out


def plan_table(plan: StrategyPlan, fmt: Formatter) -> str:
    """Per segment x treatment given: customers, cost of actions, extra cash against
    today's plan with its 95 % interval, the discount granted (when a treatment has one)
    and a totals row."""
    a = plan.chosen.allocation
    a = a[a.customers > 0].copy()
    a["treatment_name"] = [fmt.name(t) + (f" {ASSUMED}" if s else "")
                           for t, s in zip(a.treatment, a.assumed, strict=True)]  # fmt: skip
    # the total's interval has the gain's half-width (the extra cost is known exactly)
    _, low, high = plan.chosen.gain_over(plan.today)
    half = (high - low) / 2
    totals = {
        "segment": label("total", fmt.language), "treatment_name": "",
        "customers": int(a.customers.sum()), "cost": a.cost.sum(), "money": a.money.sum(),
        "money_low": a.money.sum() - half, "money_high": a.money.sum() + half,
    }  # fmt: skip
    formats = {"segment": "text", "treatment_name": "text", "customers": "count",
               "cost": "money", "money": "money", "money_low": "money", "money_high": "money"}  # fmt: skip
    if a.discount_granted.sum() > 0:  # what the discounts waive, for the record
        formats["discount_granted"] = "money"
        totals["discount_granted"] = a.discount_granted.sum()
    labels = {"segment": label("segment", fmt.language),
              "treatment_name": label("treatment", fmt.language),
              "customers": label("customers", fmt.language),
              "cost": label("cost_month", fmt.language),
              "money": label("extra_cash", fmt.language),
              "money_low": label("ci_low", fmt.language),
              "money_high": label("ci_high", fmt.language),
              "discount_granted": label("discount_granted", fmt.language)}  # fmt: skip
    labels = _with_currency(labels, formats, fmt)
    table = html_table(a, formats, fmt, labels, count_column="customers",
                       caption=text.title("plan_table", fmt, date=fmt.date(plan.as_of)),
                       totals=totals)  # fmt: skip
    if a.assumed.any():
        table += text.paragraph(sentence("plan_assumed_note", fmt, mark=ASSUMED))
    return table


def capacity_table(plan: StrategyPlan, fmt: Formatter) -> str:
    """Per capacity: its unit, the limit, what today's plan, this plan and the best plan
    ignoring capacity use, and the shadow price (currency per unit)."""
    lim = plan.chosen.limits
    rows = pd.DataFrame({
        "capacity": [capacity_name(n, fmt) for n in lim.name],
        "unit": [fmt.currency if u == "currency" else label(f"unit_{u}", fmt.language)
                 for u in lim.unit],
        "limit": lim.limit, "today": plan.today.limits.used, "plan": lim.used,
        "free": plan.unconstrained.limits.used, "shadow": lim.shadow_price.map(_clean_price),
    })  # fmt: skip
    formats = {"capacity": "text", "unit": "text", "limit": "number", "today": "number",
               "plan": "number", "free": "number", "shadow": "number1"}  # fmt: skip
    labels = {k: label(f"cap_col_{k}", fmt.language) for k in formats}
    if fmt.currency:
        labels["shadow"] += f" ({fmt.currency})"
    key = "plan_capacity_integer" if plan.chosen.integer else "plan_capacity"
    return html_table(rows, formats, fmt, labels, caption=text.title(key, fmt))


def _clean_price(value: float) -> float:
    return 0.0 if abs(value) < 5e-3 else float(value)


def shadow_sentences(plan: StrategyPlan, fmt: Formatter) -> list[str]:
    """What one more unit of each capacity is worth this month, in words."""
    out = []
    for r in plan.chosen.limits.itertuples():
        if r.binding and r.shadow_price > 0:
            kind, _, channel = r.name.partition(":")
            out.append(sentence(f"shadow_{kind}", fmt, currency=fmt.currency,
                                channel=text.channel(channel, fmt.language),
                                value=fmt.money(r.shadow_price, 2 if r.shadow_price < 100 else 0)))  # fmt: skip
        else:
            out.append(sentence("plan_slack", fmt, capacity=capacity_name(r.name, fmt),
                                slack=_amount(r.slack, r.unit, fmt)))  # fmt: skip
    if plan.chosen.integer:
        out.append(sentence("plan_integer_note", fmt))
    return out


def comparison_table(plan: StrategyPlan, fmt: Formatter) -> str:
    """Today's plan, this plan, the robust plan and the best plan ignoring capacity:
    customers moved, cost, net gain over today with its interval, and over the draws the
    mean and the worst 10 % of the net gain."""
    plans = [("today", plan.today), ("chosen", plan.chosen)]
    if plan.robustness is not None:
        plans.append(("robust", plan.robustness.robust))
    plans.append(("unconstrained", plan.unconstrained))
    summary = plan.robustness.summary.set_index("plan") if plan.robustness is not None else None
    rows = []
    for key, sol in plans:
        value, low, high = (_clean(v) for v in sol.gain_over(plan.today))
        row = {
            "plan": label(f"plan_{key}", fmt.language), "moved": sol.moved,
            "cost": sol.allocation.cost.sum(), "gain": value, "low": low, "high": high,
        }  # fmt: skip
        if summary is not None and key in summary.index:
            row["mean"] = _clean(summary.loc[key, "mean"] - plan.today.value)
            row["cvar"] = _clean(summary.loc[key, "cvar"] - plan.today.value)
        rows.append(row)
    frame = pd.DataFrame(rows)
    formats = {"plan": "text", "moved": "count", "cost": "money", "gain": "money",
               "low": "money", "high": "money"}  # fmt: skip
    if summary is not None:
        formats |= {"mean": "money", "cvar": "money"}
    labels = {k: label(f"cmp_col_{k}", fmt.language) for k in formats}
    labels["low"], labels["high"] = label("ci_low", fmt.language), label("ci_high", fmt.language)
    labels = _with_currency(labels, formats, fmt)
    return html_table(frame, formats, fmt, labels,
                      caption=text.title("plan_comparison", fmt,
                                         share=fmt.percent(plan.config.robustness.cvar, 0)))  # fmt: skip


def robustness_sentences(plan: StrategyPlan, fmt: Formatter) -> list[str]:
    """How often the plan brings less than today's, and what the robust plan changes."""
    rob = plan.robustness
    if rob is None:
        return []
    s = rob.summary.set_index("plan")
    share = fmt.percent(rob.alpha, 0)
    out = [sentence("plan_below_today", fmt, share=fmt.percent(s.loc["chosen", "below_today"], 0),
                    draws=fmt.number(rob.draws))]  # fmt: skip
    moved = int(np.abs(rob.robust.x - plan.chosen.x).sum() / 2 + 0.5)
    to_today = int(np.abs(rob.robust.x - plan.today.x).sum() / 2 + 0.5)
    if moved == 0:
        out.append(sentence("plan_robust_same", fmt, share=share))
    elif to_today == 0:
        out.append(sentence("plan_robust_today", fmt, share=share))
    else:
        out.append(sentence(
            "plan_robust_differs", fmt, share=share, moved=fmt.count(moved),
            mean_robust=fmt.short_money(_clean(s.loc["robust", "mean"] - plan.today.value)),
            mean_chosen=fmt.short_money(_clean(s.loc["chosen", "mean"] - plan.today.value)),
            cvar_robust=fmt.short_money(_clean(s.loc["robust", "cvar"] - plan.today.value)),
            cvar_chosen=fmt.short_money(_clean(s.loc["chosen", "cvar"] - plan.today.value)),
        ))  # fmt: skip
    return out


def selection_chart(plan: StrategyPlan, fmt: Formatter) -> Figure:
    """Per segment, the share of draws in which its chosen treatment is still the best."""
    sel = plan.robustness.selection.copy()
    sel["what"] = [
        f"{fmt.name(s)}: {fmt.name(t)}" for s, t in zip(sel.segment, sel.treatment, strict=True)
    ]
    return plots.bar(sel, "what", "probability_best", text.title("plan_selection", fmt,
                     draws=fmt.number(plan.robustness.draws)),
                     label("probability_best", fmt.language), fmt, unit="fraction")  # fmt: skip


def value_chart(plan: StrategyPlan, fmt: Formatter) -> Figure:
    """The chosen plan's net gain over today's across the draws, with its mean and the
    mean of its worst tail."""
    rob = plan.robustness
    gains = pd.DataFrame({"gain": rob.values - plan.today.value})
    s = rob.summary.set_index("plan")
    marks = {
        label("plan_today", fmt.language): 0.0,
        label("cmp_col_mean", fmt.language): s.loc["chosen", "mean"] - plan.today.value,
        label("cmp_col_cvar", fmt.language): s.loc["chosen", "cvar"] - plan.today.value,
    }
    return plots.histogram(gains, "gain", text.title("plan_values", fmt), label("cmp_col_gain", fmt.language),
                           fmt, marks)  # fmt: skip


def effects_table(plan: StrategyPlan, fmt: Formatter) -> str:
    """Where each treatment's effect in each segment comes from, and its size."""
    e = plan.effects.copy()
    order = {name: i for i, name in enumerate(plan.problem.segments)}
    e = e.sort_values("segment", key=lambda c: c.map(order), kind="stable")
    words = []
    for r in e.itertuples():
        if r.source == "measured":
            words.append(sentence("source_measured", fmt, experiment=fmt.name(r.experiment)))
        elif r.source == "none":
            words.append(sentence("source_none", fmt, reason=_reason(r.reason, fmt)))
        else:
            words.append(label(f"source_{r.source}", fmt.language))
    e["source_words"] = words
    e["treatment_name"] = [fmt.name(t) for t in e.treatment]
    formats = {"segment": "text", "treatment_name": "text", "source_words": "text",
               "effect": "money", "se": "money"}  # fmt: skip
    labels = {"segment": label("segment", fmt.language),
              "treatment_name": label("treatment", fmt.language),
              "source_words": label("source", fmt.language),
              "effect": label("effect_per_customer", fmt.language),
              "se": label("standard_error", fmt.language)}  # fmt: skip
    labels = _with_currency(labels, formats, fmt)
    return html_table(e, formats, fmt, labels, caption=text.title("plan_effects", fmt))


def _with_currency(labels: dict, formats: dict, fmt: Formatter) -> dict:
    """Money columns' headers with the currency: "Cost of actions a month (CLP)"."""
    if not fmt.currency:
        return labels
    return {
        k: f"{v} ({fmt.currency})" if formats.get(k) == "money" else v for k, v in labels.items()
    }


def _reason(reason: str, fmt: Formatter) -> str:
    """A non-candidate's reason in the report's words."""
    if not reason or reason == "no effect measured or assumed":
        return sentence("reason_no_effect", fmt)
    if reason.startswith("below the minimum treatment"):
        return sentence("reason_minimum", fmt)
    if "sample-ratio" in reason:
        return sentence("reason_srm", fmt)
    return reason


def customers_note(plan: StrategyPlan, fmt: Formatter) -> str:
    """Which customers the plan counts (the stock at the month end, not an inflow)."""
    return sentence("plan_customers_note", fmt, date=fmt.date(plan.as_of))
