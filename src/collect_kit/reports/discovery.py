"""The segment discovery notebook's pages: the proposed cascade, the tree, the out-of-time
evidence against the current segmentation, the migration between them, and for uplift
segments their held-out uplifts and the Qini curve.

Each function takes a :class:`~collect_kit.discovery.run.Discovery` (aggregates per segment;
no customer rows) and a :class:`~collect_kit.reports.format.Formatter`, and returns HTML or
a figure. Segments are numbered in the report ("Segment 1" ... "Everyone else") and their
conditions said in the report's language; the YAML keeps the generated English names the
analyst edits.
"""

from __future__ import annotations

import html

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from .. import plots
from ..discovery.run import Discovery, discover
from ..discovery.tree import WORDS, group_words
from . import text
from .format import Formatter, html_table
from .text import label, sentence

#: snapshot columns with words in the catalogue (``labels.col_<column>``)
COLUMNS = (
    "max_days_past_due", "overdue_balance", "balance", "open_receivables", "tenure_days",
    "avg_days_late", "late_payments", "days_since_last_payment", "contact_attempts",
    "right_party_contacts", "broken_promises", "has_valid_phone", "customer_type", "score",
)  # fmt: skip


def read(config, portfolio, as_of=None) -> Discovery:
    """The discovery of ``config`` on an open portfolio, with what was known at ``as_of``."""
    return discover(config, portfolio=portfolio, as_of=as_of)


def words(fmt: Formatter) -> dict:
    """The words of conditions in the report's language (:data:`WORDS`, column names)."""
    out = {k: label(f"disc_{k}", fmt.language) for k in WORDS}
    return out | {c: label(f"col_{c}", fmt.language) for c in COLUMNS}


def segment_names(d: Discovery, fmt: Formatter) -> dict[str, str]:
    """Proposal segment name -> "Segment k" (the last: "Everyone else")."""
    names = [s.name for s in d.rules.segments]
    out = {n: label("disc_segment", fmt.language).format(k=i + 1) for i, n in enumerate(names[:-1])}
    out[names[-1]] = label("disc_everyone_else", fmt.language)
    return out


def _conditions(d: Discovery, fmt: Formatter) -> list[str]:
    w = words(fmt)
    return [group_words(g, w) for g in d.proposal.segments]


def segments_table(d: Discovery, fmt: Formatter) -> str:
    """The proposed segments: their conditions in words and, for a propensity proposal, the
    customers and payer rates at the training and the evaluation month ends; for uplift
    segments, the held-out arms, the measured uplift with its interval and the predicted one."""
    names = segment_names(d, fmt)
    order = [s.name for s in d.rules.segments]
    base = pd.DataFrame({"segment": [names[n] for n in order], "conditions": _conditions(d, fmt)},
                        index=order)  # fmt: skip
    labels = {"segment": label("segment", fmt.language),
              "conditions": label("disc_conditions", fmt.language)}  # fmt: skip
    if d.uplift is not None:
        m = d.uplift.held_out.reindex(order)
        frame = base.join(m)
        formats = {"segment": "text", "conditions": "text", "n_champion": "count",
                   "n_challenger": "count", "uplift": "percent", "ci_low": "percent",
                   "ci_high": "percent", "predicted": "percent"}  # fmt: skip
        labels |= {k: label(f"disc_{k}", fmt.language) for k in formats if k not in labels}
        caption = text.title("disc_uplift_table", fmt)
        return html_table(frame, formats, fmt, labels, caption=caption)
    ev = d.evidence["proposal"]["segments"].reindex(order)
    frame = base.join(ev)
    formats = {"segment": "text", "conditions": "text", "customers_train": "count",
               "rate_train": "percent", "customers_later": "count", "rate_later": "percent"}  # fmt: skip
    labels |= {k: label(f"disc_{k}", fmt.language) for k in formats if k not in labels}
    caption = text.title("disc_segments", fmt, train=fmt.date(d.train_as_of),
                         later=fmt.date(d.evaluate_as_of))  # fmt: skip
    return html_table(frame, formats, fmt, labels, count_column="customers_later", caption=caption)


def evidence_table(d: Discovery, fmt: Formatter) -> str:
    """Proposal and current segmentation side by side, out of time: segments, payer-rate
    spread, Gini of the training rates as a score, PSI of the shares."""
    rows = []
    for key in ("proposal", "current"):
        ev = d.evidence[key]
        rows.append({
            "rules": label(f"disc_{key}", fmt.language), "segments": len(ev["segments"]),
            "spread": ev["spread"], "gini": ev["gini"], "psi": ev["psi"],
            "reading": text.state(ev["reading"], fmt.language),
        })  # fmt: skip
    formats = {"rules": "text", "segments": "number", "spread": "percent", "gini": "number3",
               "psi": "number3", "reading": "text"}  # fmt: skip
    labels = {k: label(f"disc_col_{k}", fmt.language) for k in formats}
    caption = text.title("disc_evidence", fmt, later=fmt.date(d.evaluate_as_of))
    return html_table(pd.DataFrame(rows), formats, fmt, labels, caption=caption)


def evidence_sentence(d: Discovery, fmt: Formatter) -> str:
    """One sentence: the proposal against the current segmentation, out of time."""
    if d.uplift is not None:
        return sentence("disc_uplift_sentence", fmt, qini=fmt.number(d.uplift.qini_coefficient, 4),
                        customers=fmt.count(int(d.uplift.held_mask.sum())))  # fmt: skip
    p, c = d.evidence["proposal"], d.evidence["current"]
    key = "disc_better" if p["gini"] > c["gini"] else "disc_not_better"
    return sentence(
        key, fmt, date=fmt.date(d.evaluate_as_of), gini_p=fmt.number(p["gini"], 3),
        gini_c=fmt.number(c["gini"], 3), spread_p=fmt.percent(p["spread"], 0),
        spread_c=fmt.percent(c["spread"], 0), segments=len(d.rules.segments),
    )  # fmt: skip


def tree_figure(d: Discovery, fmt: Formatter) -> Figure:
    """The fitted tree as a diagram (scikit-learn's ``plot_tree``: the split, the share of
    the customers and, per node, the payer rate or the predicted uplift)."""
    import matplotlib.pyplot as plt
    from sklearn.tree import plot_tree

    tree = d.proposal.tree
    depth = tree.get_depth()
    fig, ax = plt.subplots(figsize=(7.0, 1.4 + 1.1 * depth))
    w = words(fmt)
    names = [w.get(c.split("=")[0], c) + (f" = {c.split('=', 1)[1]}" if "=" in c else "")
             for c in d.proposal.features]  # fmt: skip
    plot_tree(tree, feature_names=names, filled=True, impurity=False, proportion=True,
              rounded=True, fontsize=5, ax=ax, label="root")  # fmt: skip
    ax.set_title(text.title("disc_tree", fmt), loc="left")
    fig.tight_layout()
    return fig


def migration_figure(d: Discovery, fmt: Formatter) -> Figure:
    """Customers at the evaluation month end: current segments (rows) to proposed ones."""
    names = segment_names(d, fmt)
    m = d.migration.rename(columns=names)
    return plots.heatmap(m, text.title("disc_migration", fmt, later=fmt.date(d.evaluate_as_of)),
                         fmt, label("disc_proposal", fmt.language), label("disc_current", fmt.language))  # fmt: skip


def qini_figure(d: Discovery, fmt: Formatter) -> Figure:
    """The Qini curve on the held-out half: incremental payers as segments are added in
    predicted-uplift order, against a random order."""
    c = d.uplift.qini
    names = segment_names(d, fmt)
    curve = pd.concat([
        c.assign(line=label("disc_qini_segments", fmt.language)),
        pd.DataFrame({"share": [0.0, 1.0], "incremental_payers": [0.0, c.incremental_payers.iloc[-1]],
                      "line": label("disc_qini_random", fmt.language)}),
    ])  # fmt: skip
    fig = plots.lines(curve, "share", "incremental_payers", "line", text.title("disc_qini", fmt),
                      label("disc_qini_x", fmt.language), label("disc_qini_y", fmt.language), fmt,
                      unit="number")  # fmt: skip
    ax = fig.axes[0]
    for x, y, seg in zip(c.share[1:], c.incremental_payers[1:], c.segment[1:], strict=True):
        ax.annotate(
            names.get(seg, seg), (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points"
        )
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt.percent(v, 0)))
    return fig


def cascade_block(d: Discovery) -> str:
    """The proposal's YAML as the analyst receives it (escaped, preformatted)."""
    return f'<pre class="ck-yaml">{html.escape(d.text)}</pre>'
