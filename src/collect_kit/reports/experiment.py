"""The experiment readout's pages: design recap, SRM, effects, survival, recommendations.

Each function takes an :class:`~collect_kit.experiments.run.ExperimentReadout` (already
aggregated: no customer rows) and a :class:`~collect_kit.reports.format.Formatter`, and
returns HTML, a sentence or a tidy frame for :mod:`collect_kit.plots`;
``experiment_readout.ipynb`` and the portfolio report's strategy-test section only display
them. Rows about 1-4 customers in an arm are withheld ("<5").
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..errors import NoResultsYetError
from ..experiments.config import ExperimentConfig, load_experiment
from ..experiments.design import design
from ..experiments.run import ExperimentReadout, readout_experiment, rereads
from . import text
from .format import WITHHELD, Formatter, html_table, is_small
from .text import label, sentence


def formatter(r: ExperimentReadout, fmt: Formatter) -> Formatter:
    """``fmt`` with the experiment's own display names (its arms, its segmentation's
    segments and strategies, itself): arms are called ``champion`` in every experiment, so
    each experiment's pages are rendered with its own names. The catch-all segment without
    a label is "Other" in the catalogue's words."""
    names = text.display_names(r.labels, fmt.language)
    return dataclasses.replace(fmt, names={**fmt.names, **names})


def metrics_of(r: ExperimentReadout) -> list[str]:
    """The metrics read out, the primary one first."""
    names = list(r.config.metric_specs())
    return [r.config.primary_metric] + [n for n in names if n != r.config.primary_metric]


def metric_unit(r: ExperimentReadout, metric: str) -> str:
    """``fraction`` (proportions, ratios), ``currency`` (sums of money) or ``number``."""
    spec = r.config.metric_specs()[metric]
    if spec.type in ("proportion", "ratio"):
        return "fraction"
    return "currency" if spec.aggregate == "sum" else "number"


def read_all(
    paths, as_of, portfolio, stored: dict | None = None
) -> tuple[list[ExperimentReadout], list[str]]:
    """Read out each experiment config as of ``as_of`` on an open ``portfolio`` (or load
    the run's ``stored`` readouts: :mod:`collect_kit.experiments.stored`).

    Returns the readouts and the configs of experiments with no closed outcome window yet
    (not started, or too recent: see :func:`pending_sentence`), so the report says so
    instead of failing.
    """
    readouts, pending = [], []
    for path in paths:
        try:
            readouts.append(
                readout_experiment(path, as_of=as_of, portfolio=portfolio, stored=stored)
            )
        except NoResultsYetError:
            pending.append(load_experiment(path)[0])
    return readouts, pending


def pending_sentence(pending: list[ExperimentConfig], as_of, fmt: Formatter) -> str:
    """Which experiments have nothing to read yet at ``as_of``."""
    if not pending:
        return ""
    names = ", ".join(c.display_names(fmt.language).get(c.experiment_id, c.experiment_id)
                      for c in pending)  # fmt: skip
    return sentence("no_results_yet", fmt, date=fmt.date(as_of), names=names)


def metric_label(r: ExperimentReadout, metric: str, language: str) -> str:
    return r.config.metric_specs()[metric].title(language, metric)


def _weights(r: ExperimentReadout, segment: str) -> dict[str, float]:
    arms = r.config.arms
    w = arms.get(segment, {}) if all(isinstance(v, Mapping) for v in arms.values()) else arms
    total = float(sum(w.values())) or 1.0
    return {a: v / total for a, v in w.items()}


def title_block(r: ExperimentReadout, fmt: Formatter) -> str:
    """The experiment's id, description and what was read (windows closed by as_of)."""
    c = r.config
    n = int(r.statistics.n.sum())
    text = sentence("experiment_read", fmt, n=fmt.count(n), days=c.window_days,
                    date=fmt.date(r.as_of), alpha=fmt.number(c.alpha, 2))  # fmt: skip
    aa = f'<p class="ck-warning">{html.escape(sentence("aa_warning", fmt))}</p>' if c.aa else ""
    words = c.describe(fmt.language)
    desc = f"<p>{html.escape(words)}</p>" if words else ""
    srm = (
        f'<p class="ck-warning">{html.escape(srm_sentence(r, fmt))}</p>' if r.portfolio_srm else ""
    )
    return (
        f"<h2>{html.escape(label('experiment', fmt.language))}: {html.escape(fmt.name(c.experiment_id))}</h2>"
        f"{srm}{desc}<p>{html.escape(text)}</p>{aa}"
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
            alpha=c.alpha, power=c.power,
        )  # fmt: skip
        frames.append(d)
    if not frames:
        return "", []
    table = pd.concat(frames, ignore_index=True)
    table["mde"] = table.mde_payer_rate_achievable * 100
    table["champion_payer_rate"] = table.payer_rate
    split = ", ".join(
        f"{fmt.name(a)} {fmt.percent(v, 0)}" for a, v in _weights(r, table.segment[0]).items()
    )
    formats = {"segment": "text", "challenger": "text", "customers": "count",
               "champion_payer_rate": "percent", "mde": "number1", "needed": "count"}  # fmt: skip
    table["needed"] = table.needed_customers
    labels = {k: label(k, fmt.language) for k in formats}
    caption = text.title("designed_split", fmt, split=split)
    sentences = [
        text.design_sentence(row, fmt) for row in table.itertuples() if not is_small(row.customers)
    ]
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
    """Which segments failed the sample-ratio check (p < 0.001), or that none did; a failure
    of the whole experiment is said first."""
    if r.portfolio_srm:
        return sentence(
            "srm_experiment_failed", fmt, p=_p(float(r.results.portfolio_srm_p_value.iloc[0]), fmt)
        )
    failed = sorted(set(r.results.loc[r.results.srm, "segment"]))
    if not failed:
        return sentence("srm_all_pass", fmt, threshold=fmt.number(0.001, 3))
    return sentence("srm_failed", fmt, names=", ".join(map(fmt.name, failed)))


def _p(p: float, fmt: Formatter) -> str:
    if p != p:
        return ""
    return "< " + fmt.number(0.001, 3) if p < 0.001 else fmt.number(p, 3)


def effects(
    r: ExperimentReadout, metric: str, fmt: Formatter | None = None, with_raw: bool = False
) -> pd.DataFrame:
    """The rows of one metric that decisions read (with ``with_raw``, the raw rows beside
    CUPED ones), then the overall row; a ``label`` per row and ``smallest_arm`` (customers
    in the smaller arm, for suppression). ``significant``: Holm-adjusted p < alpha for the
    primary metric, the uncorrected p for the others. With ``fmt`` the overall row is
    labelled in the report's language."""
    f = r.results[(r.results.metric == metric) & (r.results.used | with_raw)].copy()
    o = (
        r.overall[(r.overall.metric == metric) & (r.overall.used | with_raw)].copy()
        if len(r.overall)
        else pd.DataFrame()
    )
    several = f.challenger.nunique() > 1
    show = fmt.name if fmt is not None else str
    f["label"] = f.segment.map(show) + (" · " + f.challenger.map(show) if several else "")
    if len(o):
        o["segment"] = None
        o["label"] = "\u2211 " + ("· " + o.challenger.map(show) if several else "")
        o["srm"] = False
        f = pd.concat([f, o], ignore_index=True)
    f["smallest_arm"] = f[["n_champion", "n_challenger"]].min(axis=1)
    p = f.p_holm if metric == r.config.primary_metric else f.p_value
    if r.config.sequential and "seq_p_value" in f:
        p = f.seq_p_value
    f["significant"] = p < r.config.alpha
    if metric == r.config.primary_metric:  # the overall row is not in the family
        f.loc[f.segment.isna(), "significant"] = f.p_value < r.config.alpha
    f = f.reset_index(drop=True)
    return _overall_label(f, fmt) if fmt is not None else f


def _overall_label(f: pd.DataFrame, fmt: Formatter) -> pd.DataFrame:
    several = f.challenger.nunique() > 1
    name = label("overall", fmt.language)
    f.loc[f.segment.isna(), "label"] = name + (
        " · " + f.challenger.map(fmt.name) if several else ""
    )
    return f


def effects_table(r: ExperimentReadout, metric: str, fmt: Formatter) -> str:
    """Champion and challenger values, the difference with its CI, the relative lift, the
    test statistic and the p-values; CUPED rows with the raw result beside them."""
    f = effects(r, metric, fmt, with_raw=True)
    f.loc[~f.used, "label"] = f.label + " · " + label("raw", fmt.language)
    fraction = metric_unit(r, metric) == "fraction"
    scale = 100.0 if fraction else 1.0
    for col in ("estimate", "ci_low", "ci_high"):
        f[col] = f[col] * scale
    kind = (
        "percent" if fraction else ("money" if metric_unit(r, metric) == "currency" else "number2")
    )
    diff = "number1" if fraction else kind
    f["relative"] = [("" if v != v else f"{fmt.number(v * 100, 1)} %") for v in f.relative]
    f["statistic"] = [("" if v != v else ("z = " if np.isinf(d) else "t = ") + fmt.number(v, 2))
                      for v, d in zip(f.statistic, f.df, strict=True)]  # fmt: skip
    for col in ("p_value", "p_holm"):
        f[col] = f[col].map(lambda p, fmt=fmt: _p(p, fmt))
    small = f.smallest_arm.map(is_small)
    f.loc[small, ["relative", "statistic", "p_value", "p_holm"]] = WITHHELD
    formats = {"label": "text", "n_champion": "count", "n_challenger": "count",
               "champion": kind, "challenger_value": kind, "estimate": diff, "ci_low": diff,
               "ci_high": diff, "relative": "text", "statistic": "text", "p_value": "text",
               "p_holm": "text"}  # fmt: skip
    if metric != r.config.primary_metric:
        formats.pop("p_holm")
    if r.config.sequential and "seq_p_value" in f:
        f["seq_ci"] = ["" if lo != lo else f"{fmt.number(lo * scale, 1)} … {fmt.number(hi * scale, 1)}"
                       for lo, hi in zip(f.seq_ci_low, f.seq_ci_high, strict=True)]  # fmt: skip
        f["seq_p"] = f.seq_p_value.map(lambda p, fmt=fmt: _p(p, fmt))
        f.loc[small, ["seq_ci", "seq_p"]] = WITHHELD
        formats |= {"seq_ci": "text", "seq_p": "text"}
    labels = {k: label(k, fmt.language) for k in formats}
    labels["label"] = label("segment", fmt.language)
    labels["champion"] = label("champion_value", fmt.language)
    labels["estimate"] = axis_label(r, metric, fmt)
    return html_table(f, formats, fmt, labels, count_column="smallest_arm",
                      caption=metric_label(r, metric, fmt.language))  # fmt: skip


def forest_title(r: ExperimentReadout, metric: str, fmt: Formatter) -> str:
    """A title stating the finding: which segments moved (Holm-adjusted), or that none did."""
    f = effects(r, metric, fmt)
    f = f[f.trustworthy & ~f.smallest_arm.map(is_small) & f.estimate.notna()]
    name = metric_label(r, metric, fmt.language)
    primary = metric == r.config.primary_metric
    up = list(f.loc[f.significant & (f.estimate > 0), "label"])
    down = list(f.loc[f.significant & (f.estimate < 0), "label"])
    if not up and not down:  # a secondary metric is not in the corrected family
        return text.title("forest_none" if primary else "forest_none_uncorrected", fmt, metric=name)
    parts = [text.title("forest_higher", fmt, segments=", ".join(up))] if up else []
    if down:
        parts.append(text.title("forest_lower", fmt, segments=", ".join(down)))
    tail = "" if primary else text.title("forest_uncorrected", fmt)
    return f"{name}: " + "; ".join(parts) + tail


def heterogeneity_sentence(r: ExperimentReadout, fmt: Formatter) -> str:
    """Cochran's Q per primary metric: does the effect differ across segments?"""
    h = r.heterogeneity
    if h.empty:
        return sentence("heterogeneity_few", fmt)
    out = []
    for row in h.itertuples():
        if row.segments < 2:
            continue
        key = "heterogeneity_differs" if row.p_value < r.config.alpha else "heterogeneity_same"
        out.append(sentence(
            key, fmt, metric=metric_label(r, row.metric, fmt.language),
            challenger=fmt.name(row.challenger), segments=row.segments,
            q=fmt.number(row.q, 2), p=_p(row.p_value, fmt),
        ))  # fmt: skip
    return " ".join(out)


def recommendation_frame(r: ExperimentReadout, fmt: Formatter) -> pd.DataFrame:
    """The recommendation table in words and money, with the customers behind each row."""
    rec = r.recommendations.copy()
    for col in ("money_per_month", "money_ci_low", "money_ci_high", "extra_customers_needed",
                "extra_cost_per_customer", "weeks_needed"):  # fmt: skip
        if col not in rec:
            rec[col] = np.nan
    if "reason" not in rec:
        rec["reason"] = ""
    n = r.results.drop_duplicates(["segment", "challenger"]).set_index(["segment", "challenger"])
    keys = list(zip(rec.segment, rec.challenger, strict=True))
    rec["customers"] = [int(n.n_champion.get(k, 0) + n.n_challenger.get(k, 0)) for k in keys]
    rec["smallest_arm"] = [int(min(n.n_champion.get(k, 0), n.n_challenger.get(k, 0))) for k in keys]
    rec["decision_text"] = [decision_text(r, row, fmt) for row in rec.itertuples()]
    rec["money_ci"] = [
        "" if lo != lo else f"{fmt.number(lo)} … {fmt.number(hi)}"
        for lo, hi in zip(rec.money_ci_low, rec.money_ci_high, strict=True)
    ]
    return rec


def decision_text(r: ExperimentReadout, row, fmt: Formatter) -> str:
    """A decision of :func:`experiments.readout.decide` in words."""
    metric = metric_label(r, r.config.primary_metric, fmt.language)
    code, reason = row.code, row.reason
    if code == "run_challenger":
        key = "decision_run_net_loss" if reason == "net_loss" else "decision_run_challenger"
        return sentence(key, fmt, challenger=fmt.name(row.challenger), metric=metric)
    if code == "stop_challenger":
        if reason == "worse":
            return sentence("decision_stop_worse", fmt, metric=metric)
        return sentence("decision_stop_futile", fmt, metric=metric, mde=mde_text(r, fmt))
    if code == "keep_testing":
        customers = (
            fmt.count(row.extra_customers_needed)
            if row.extra_customers_needed == row.extra_customers_needed
            else "?"
        )
        if row.weeks_needed == row.weeks_needed:
            return sentence(
                "decision_keep_testing", fmt, customers=customers, weeks=fmt.count(row.weeks_needed)
            )
        return sentence("decision_keep_testing_ended", fmt, customers=customers)
    if code == "withheld_srm":
        return sentence(f"decision_withheld_{reason or 'segment'}", fmt)
    if reason == "failed":
        return sentence("decision_calibration_failed", fmt, metric=metric)
    return sentence("decision_calibration", fmt)


def mde_text(r: ExperimentReadout, fmt: Formatter) -> str:
    """The primary metric's MDE as a reader sees it: points, currency or a number."""
    mde = r.config.metric_specs()[r.config.primary_metric].mde or float("nan")
    unit = metric_unit(r, r.config.primary_metric)
    if unit == "fraction":
        return f"{fmt.number(mde * 100, 1)} {label('points', fmt.language)}"
    return fmt.money(mde) if unit == "currency" else fmt.number(mde, 2)


def recommendation_table(r: ExperimentReadout, fmt: Formatter) -> str:
    rec = recommendation_frame(r, fmt)
    formats = {"segment": "text", "challenger": "text", "customers": "count",
               "decision_text": "text", "extra_cost_per_customer": "money",
               "money_per_month": "money", "money_ci": "text"}  # fmt: skip
    labels = {k: label(k, fmt.language) for k in formats}
    labels["decision_text"] = label("decision", fmt.language)
    cur = f" ({fmt.currency})" if fmt.currency else ""
    labels["money_per_month"] += cur
    labels["money_ci"] += cur
    labels["extra_cost_per_customer"] += cur
    rec.loc[rec.smallest_arm.map(is_small), "money_ci"] = WITHHELD
    return html_table(rec, formats, fmt, labels, count_column="smallest_arm")


def recommendation_sentence(r: ExperimentReadout, fmt: Formatter) -> str:
    """One sentence: what to roll out and the money it brings, or why nothing is."""
    rec = recommendation_frame(r, fmt)
    rec = rec[~rec.smallest_arm.map(is_small)]
    losses = rec[(rec.code == "run_challenger") & (rec.reason == "net_loss")]
    wins = rec[(rec.code == "run_challenger") & (rec.reason != "net_loss")]
    if r.portfolio_srm:
        return srm_sentence(r, fmt)
    if r.config.aa:
        failed = list(rec.loc[(rec.code == "calibration") & (rec.reason == "failed"), "segment"])
        if failed:
            metric = metric_label(r, r.config.primary_metric, fmt.language)
            where = ", ".join(map(fmt.name, failed))
            return f"{where}: " + sentence("decision_calibration_failed", fmt, metric=metric) + "."
        return sentence("aa_no_recommendation", fmt)
    stops = _net_loss_sentence(r, losses, fmt) + _stop_sentence(rec, fmt)
    if wins.empty:
        testing = list(rec.loc[rec.code == "keep_testing", "segment"])
        tail = (
            " " + sentence("keep_testing_in", fmt, segments=", ".join(map(fmt.name, testing)))
            if testing
            else ""
        )
        return sentence("no_winner", fmt) + tail + stops
    return (
        sentence(
            "rollout_brings",
            fmt,
            segments=", ".join(map(fmt.name, wins.segment)),
            money=fmt.money(wins.money_per_month.sum()),
            low=fmt.number(wins.money_ci_low.sum()),
            high=fmt.number(wins.money_ci_high.sum()),
        )  # fmt: skip
        + stops
    )


def _net_loss_sentence(r: ExperimentReadout, losses: pd.DataFrame, fmt: Formatter) -> str:
    """ " In ... the challenger is better on ... but loses ... per month." (run_challenger
    with reason net_loss)."""
    metric = metric_label(r, r.config.primary_metric, fmt.language)
    return "".join(
        " "
        + sentence(
            "run_net_loss_sentence",
            fmt,
            segments=fmt.name(row.segment),
            metric=metric,
            money=fmt.money(-row.money_per_month),
            low=fmt.number(-row.money_ci_high),
            high=fmt.number(-row.money_ci_low),
        )  # fmt: skip
        for row in losses.itertuples()
    )


def _stop_sentence(rec: pd.DataFrame, fmt: Formatter) -> str:
    """ " Stop the challenger in ...: ..." for the stop decisions, money lost first."""
    out = []
    worse = rec[(rec.code == "stop_challenger") & (rec.reason == "worse")]
    for row in worse.itertuples():
        why = (sentence("stop_worse_money", fmt, money=fmt.money(-row.money_per_month),
                        low=fmt.number(-row.money_ci_high), high=fmt.number(-row.money_ci_low))
               if row.money_per_month == row.money_per_month else "")  # fmt: skip
        out.append(
            sentence(
                "stop_sentence",
                fmt,
                segments=fmt.name(row.segment),
                why=why or sentence("stop_futile", fmt),
            )
        )
    futile = list(rec.loc[(rec.code == "stop_challenger") & (rec.reason == "futile"), "segment"])
    if futile:
        out.append(
            sentence(
                "stop_sentence",
                fmt,
                segments=", ".join(map(fmt.name, futile)),
                why=sentence("stop_futile", fmt),
            )
        )
    return "".join(" " + x for x in out)


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
    t = r.logrank
    if t.empty:
        return ""
    differ = list(t.loc[t.p_value < r.config.alpha, "segment"])
    if not differ:
        return sentence("logrank_none", fmt)
    return sentence("logrank_differ", fmt, alpha=fmt.number(r.config.alpha, 2),
                    segments=", ".join(map(fmt.name, differ)))  # fmt: skip


def axis_label(r: ExperimentReadout, metric: str, fmt: Formatter) -> str:
    """The forest plot's axis: a difference in points (rates) or in currency (money)."""
    unit = metric_unit(r, metric)
    word = label("difference", fmt.language)
    if unit == "fraction":
        return f"{word} ({label('points', fmt.language)})"
    return f"{word} ({fmt.currency})" if fmt.currency and unit == "currency" else word


def survival_title(r: ExperimentReadout, fmt: Formatter) -> str:
    """The survival figure's title states the finding of the log-rank tests."""
    t = r.logrank
    differ = [] if t.empty else list(t.loc[t.p_value < r.config.alpha, "segment"])
    if differ:
        return text.title("survival_differ", fmt, segments=", ".join(map(fmt.name, differ)))
    return text.title("survival_same", fmt)


def short_title(r: ExperimentReadout, fmt: Formatter, level: int = 3) -> str:
    """The experiment's name as a sub-heading (the portfolio report's summary): its label
    in the report's language, else its id and description."""
    c = r.config
    if c.label:  # the config names it in the report's languages
        return f"<h{level}>{html.escape(fmt.name(c.experiment_id))}</h{level}>"
    desc = f" — {c.describe(fmt.language)}" if c.describe(fmt.language) else ""
    return f"<h{level}>{html.escape(c.experiment_id + desc)}</h{level}>"


def overall_sentence(r: ExperimentReadout, fmt: Formatter) -> str:
    """The primary metric over all segments (post-stratified), per challenger, in words."""
    o = r.overall
    if o.empty:
        return ""
    o = o[(o.metric == r.config.primary_metric) & o.used]
    fraction = metric_unit(r, r.config.primary_metric) == "fraction"
    out = []
    for row in o.itertuples():
        if row.estimate != row.estimate or is_small(min(row.n_champion, row.n_challenger)):
            continue

        def num(v, row=row):
            return fmt.number(v * 100, 1) if fraction else fmt.number(v)

        out.append(sentence(
            "overall_sentence", fmt, challenger=fmt.name(row.challenger),
            metric=metric_label(r, row.metric, fmt.language), estimate=num(row.estimate),
            low=num(row.ci_low), high=num(row.ci_high),
            unit=f" {label('points', fmt.language)}" if fraction else (f" {fmt.currency}" if fmt.currency else ""),
            relative=fmt.number(row.relative * 100, 1), p=_p(row.p_value, fmt),
        ))  # fmt: skip
    return " ".join(out)


def looks_table(r: ExperimentReadout, fmt: Formatter) -> str:
    """A sequential test's weekly looks of the primary metric: the difference, its
    always-valid interval and p-value at each look ("" for a fixed-horizon test)."""
    f = r.looks
    if f is None or f.empty:
        return ""
    f = f.copy()
    fraction = metric_unit(r, r.config.primary_metric) == "fraction"
    scale = 100.0 if fraction else 1.0
    f["look"] = f.look.map(fmt.date)
    f["smallest"] = f.customers  # a look of 1-4 customers is withheld
    f["estimate"] = f.estimate * scale
    places = 1 if fraction else 0
    f["seq_ci"] = ["" if lo != lo else f"{fmt.number(lo * scale, places)} … {fmt.number(hi * scale, places)}"
                   for lo, hi in zip(f.seq_ci_low, f.seq_ci_high, strict=True)]  # fmt: skip
    f["seq_p"] = f.seq_p_value.map(lambda p: _p(p, fmt))
    f["decided"] = np.where(f.decided, "✓", "")
    f.loc[f.smallest.map(is_small), ["seq_ci", "seq_p", "decided"]] = WITHHELD
    formats = {"look": "text", "segment": "text", "challenger": "text", "customers": "count",
               "new_customers": "count", "estimate": "number1" if fraction else "money",
               "seq_ci": "text", "seq_p": "text", "decided": "text"}  # fmt: skip
    labels = {k: label(k, fmt.language) for k in formats}
    labels["estimate"] = label("difference", fmt.language)
    return html_table(f, formats, fmt, labels, count_column="smallest",
                      caption=metric_label(r, r.config.primary_metric, fmt.language))  # fmt: skip


def decision_note(r: ExperimentReadout, fmt: Formatter) -> str:
    """Which metric decides (with its MDE) and, for a sequential test, what that means."""
    out = sentence("primary_metric_note", fmt, metric=metric_label(r, r.config.primary_metric, fmt.language),
                   mde=mde_text(r, fmt))  # fmt: skip
    if r.config.sequential and "tuning" in r.results:
        t = r.results.loc[r.results.used & (r.results.metric == r.config.primary_metric), "tuning"]
        if t.notna().any():
            out += " " + sentence("sequential_note", fmt, tuning=fmt.count(float(t.median())))
        since = rereads(r.looks)
        if since is not None:
            out += " " + sentence("sequential_rereads", fmt, date=fmt.date(since))
    return out


def method_note(fmt: Formatter) -> str:
    """How the decisions are reached, in one paragraph for executives."""
    return sentence("method_note", fmt)


def readout_parts(r: ExperimentReadout, fmt: Formatter) -> list:
    """One experiment's readout, in order, as HTML strings and figures: title, design
    recap, sample-ratio check, effects (forest plot and table per metric), heterogeneity,
    weekly looks, time to first payment and the recommendation."""
    from .. import plots

    fmt = formatter(r, fmt)
    recap, sentences = design_recap(r, fmt)
    parts = [title_block(r, fmt), text.heading("design", fmt, level=3),
             text.paragraph(" ".join(sentences), lead=True), recap,
             text.heading("srm", fmt, level=3), text.paragraph(srm_sentence(r, fmt), lead=True),
             srm_table(r, fmt), text.heading("effects", fmt, level=3),
             text.paragraph(decision_note(r, fmt), lead=True),
             text.paragraph(overall_sentence(r, fmt), lead=True)]  # fmt: skip
    for metric in metrics_of(r):
        parts.append(plots.forest(
            effects(r, metric, fmt), "label", "estimate", "ci_low", "ci_high",
            forest_title(r, metric, fmt), axis_label(r, metric, fmt), fmt,
            unit=metric_unit(r, metric), count="smallest_arm",
        ))  # fmt: skip
        parts.append(effects_table(r, metric, fmt))
    parts.append(text.paragraph(heterogeneity_sentence(r, fmt)))
    if len(r.looks):
        parts += [text.heading("looks", fmt, level=3), looks_table(r, fmt)]
    parts += [text.heading("survival", fmt, level=3),
              text.paragraph(survival_sentence(r, fmt), lead=True)]  # fmt: skip
    curves = survival_curves(r)
    if len(curves):
        parts.append(plots.survival(
            curves, "days", "survival", "arm", "segment", survival_title(r, fmt),
            label("days_since_assignment", fmt.language), label("not_yet_paid", fmt.language), fmt,
        ))  # fmt: skip
    parts += [text.heading("recommendation", fmt, level=3),
              text.paragraph(recommendation_sentence(r, fmt), lead=True),
              recommendation_table(r, fmt)]  # fmt: skip
    return parts


def summary_parts(r: ExperimentReadout, fmt: Formatter) -> list[str]:
    """One experiment in the portfolio report: its name, the recommendation in a sentence,
    which metric decides, the overall effect and the decisions table (HTML strings)."""
    fmt = formatter(r, fmt)
    return [short_title(r, fmt), text.paragraph(recommendation_sentence(r, fmt)),
            text.paragraph(decision_note(r, fmt)), text.paragraph(overall_sentence(r, fmt)),
            recommendation_table(r, fmt)]  # fmt: skip
