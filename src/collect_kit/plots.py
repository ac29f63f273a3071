"""One visual theme for every figure, readable in print (greyscale-safe).

Functions take a tidy DataFrame and column names, return a matplotlib Figure, and never
compute business numbers. Bars and cells describing 1-4 customers are suppressed ("<5").
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from .reports.format import SUPPRESSED, Formatter, is_small

#: Dark-to-light blues stay distinguishable in greyscale; one accent for emphasis.
PALETTE = ["#08306b", "#2171b5", "#6baed6", "#c6dbef", "#d94801"]
SEQUENTIAL = "Blues"


def apply_theme() -> None:
    """Set the kit's seaborn/matplotlib theme (call once per notebook)."""
    sns.set_theme(
        style="whitegrid",
        palette=PALETTE,
        font="DejaVu Sans",
        rc={"figure.dpi": 110, "axes.titleweight": "bold", "axes.titlesize": 11, "axes.labelsize": 9,
            "xtick.labelsize": 8, "ytick.labelsize": 8, "figure.figsize": (7.0, 3.4)},
    )  # fmt: skip


_SCALES = ((1e9, "billions"), (1e6, "millions"))  # words: the catalogue's labels


def _scale(top: float, language: str) -> tuple[float, str]:
    """Divide large amounts so axis labels stay short; returns (divisor, unit word)."""
    from .reports.text import label

    for divisor, word in _SCALES:
        if top >= 10 * divisor:
            return divisor, label(word, language)
    return 1.0, ""


def bar(
    data: pd.DataFrame,
    category: str,
    value: str,
    title: str,
    axis_label: str,
    fmt: Formatter,
    unit: str = "number",
    count: str | None = None,
) -> Figure:
    """Horizontal bars of ``value`` per ``category`` (in data order), values printed.

    ``count``: the customers behind each bar; bars of 1-4 customers are not drawn and read
    "<5". ``unit``: ``number``, ``currency`` or ``fraction`` (axis and labels as %).
    """
    small = data[count].map(is_small) if count else pd.Series(False, index=data.index)
    values = data[value].where(~small, 0.0).astype(float)
    height = max(1.8, 0.38 * len(data) + 0.9)
    fig, ax = plt.subplots(figsize=(7.0, height))
    y = np.arange(len(data))
    ax.barh(y, values, color=PALETTE[1])
    ax.set_yticks(y, [str(fmt.name(c)) for c in data[category]])
    ax.invert_yaxis()
    ax.set_title(title, loc="left")
    top = values.max() if len(values) else 0
    divisor, word = (1.0, "") if unit == "fraction" else _scale(top, fmt.language)
    ax.set_xlabel(f"{axis_label}, {word}" if word else axis_label)
    if unit == "fraction":
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt.percent(v, 0)))
    else:
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt.number(v / divisor)))
    for yi, v, s in zip(y, values, small, strict=True):
        if s:
            text = SUPPRESSED
        elif unit == "fraction":
            text = fmt.percent(v)
        else:
            text = fmt.number(v / divisor, 0 if divisor == 1 or v / divisor >= 100 else 1)
        ax.text(v + top * 0.01, yi, text, va="center", fontsize=8)
    ax.set_xlim(0, top * 1.18 if top > 0 else 1)
    ax.grid(axis="y", visible=False)
    fig.tight_layout()
    return fig


def heatmap(
    matrix: pd.DataFrame,
    title: str,
    fmt: Formatter,
    xlabel: str = "",
    ylabel: str = "",
    shares: pd.DataFrame | None = None,
) -> Figure:
    """Annotated heat map of customer counts (rows -> columns); 1-4 shown as "<5", shaded as 0.

    With ``shares`` (same shape, fractions), cells are shaded and labelled by the share, and
    cells whose count is 1-4 read "<5".
    """
    matrix = matrix.rename(index=fmt.name, columns=fmt.name)
    counts = matrix.astype(float)
    small = counts.map(is_small)
    if shares is not None:
        shares = shares.rename(index=fmt.name, columns=fmt.name)
    if shares is None:
        shade = counts.where(~small, 0.0)
        labels = counts.map(lambda v: fmt.count(v))
    else:
        shade = shares.astype(float).where(~small, 0.0).fillna(0.0)
        labels = shares.astype(float).map(lambda v: fmt.percent(v, 0) if v == v else "")
        labels = labels.where(~small, "<5")
    fig, ax = plt.subplots(
        figsize=(min(1.0 * len(matrix.columns) + 2.5, 7.5), 0.45 * len(matrix) + 1.6)
    )
    sns.heatmap(shade, annot=labels, fmt="", cmap=SEQUENTIAL, cbar=False, ax=ax, linewidths=0.5,
                linecolor="white", annot_kws={"fontsize": 7})  # fmt: skip
    ax.set_title(title, loc="left")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.tick_params(axis="x", labelrotation=30)
    plt.setp(ax.get_xticklabels(), ha="right")
    fig.tight_layout()
    return fig


def lines(data: pd.DataFrame, x: str, y: str, hue: str, title: str, xlabel: str, ylabel: str,
          fmt: Formatter, unit: str = "fraction") -> Figure:  # fmt: skip
    """One line per ``hue`` value of ``y`` against ``x`` (e.g. recovery curves by vintage)."""
    fig, ax = plt.subplots(figsize=(7.0, 3.4))
    groups = list(dict.fromkeys(data[hue]))
    shades = sns.color_palette(SEQUENTIAL, n_colors=max(len(groups), 1) + 2)[2:]
    for color, (key, g) in zip(shades, data.groupby(hue, sort=False), strict=False):
        ax.plot(g[x], g[y], marker="o", markersize=3, color=color, label=str(key))
    ax.set_title(title, loc="left")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if unit == "fraction":
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt.percent(v, 0)))
    ax.legend(fontsize=7, ncols=2, frameon=False)
    fig.tight_layout()
    return fig


def forest(data: pd.DataFrame, label: str, estimate: str, low: str, high: str, title: str,
           axis_label: str, fmt: Formatter, unit: str = "fraction",
           count: str | None = None) -> Figure:  # fmt: skip
    """Effects with their confidence intervals, one row per ``label``, a line at zero.

    ``unit``: ``fraction`` (differences of rates, shown in points) or ``currency``.
    ``count``: the customers in the smaller arm; rows of 1-4 are not drawn and read "<5".
    """
    small = data[count].map(is_small) if count else pd.Series(False, index=data.index)
    scale = 100.0 if unit == "fraction" else 1.0
    est, lo, hi = (data[c].astype(float) * scale for c in (estimate, low, high))
    height = max(1.8, 0.42 * len(data) + 1.0)
    fig, ax = plt.subplots(figsize=(7.0, height))
    y = np.arange(len(data))
    shown = ~small & est.notna()
    ax.errorbar(est[shown], y[shown], xerr=[(est - lo)[shown], (hi - est)[shown]], fmt="o",
                color=PALETTE[0], ecolor=PALETTE[1], elinewidth=2, capsize=3, markersize=5)  # fmt: skip
    ax.axvline(0, color=PALETTE[4], linewidth=1, linestyle="--")
    ax.set_yticks(y, [str(v) for v in data[label]])
    ax.invert_yaxis()
    ax.set_title(title, loc="left", wrap=True)
    span = float(np.nanmax(np.abs(np.r_[lo[shown], hi[shown], 0.0]))) or 1.0
    divisor, word = (1.0, "") if unit == "fraction" else _scale(span, fmt.language)
    ax.set_xlabel(f"{axis_label}, {word}" if word else axis_label)
    ax.xaxis.set_major_formatter(
        FuncFormatter(lambda v, _: fmt.number(v / divisor, 0 if unit != "fraction" else 1))
    )
    for yi, e, s in zip(y, est, small, strict=True):
        decimals = 1 if unit == "fraction" or divisor > 1 else 0
        text = SUPPRESSED if s else ("" if e != e else fmt.number(e / divisor, decimals))
        ax.annotate(text, (1.0, yi), xycoords=("axes fraction", "data"), xytext=(4, 0),
                    textcoords="offset points", va="center", fontsize=8)  # fmt: skip
    ax.set_xlim(-span * 1.1, span * 1.1)
    ax.grid(axis="y", visible=False)
    fig.tight_layout()
    return fig


def survival(data: pd.DataFrame, time: str, value: str, hue: str, facet: str, title: str,
             xlabel: str, ylabel: str, fmt: Formatter) -> Figure:  # fmt: skip
    """Step curves (e.g. Kaplan-Meier: share not yet paid) per ``hue``, one panel per ``facet``."""
    panels = list(dict.fromkeys(data[facet])) or [""]
    cols = min(len(panels), 3)
    rows = int(np.ceil(len(panels) / cols))
    fig, axes = plt.subplots(
        rows, cols, figsize=(7.0, 2.4 * rows + 0.6), sharey=True, squeeze=False
    )
    hues = list(dict.fromkeys(data[hue]))
    colors = dict(zip(hues, [PALETTE[0], PALETTE[4], PALETTE[2], PALETTE[1]] * 4, strict=False))
    for ax, panel in zip(axes.flat, panels, strict=False):
        g = data[data[facet] == panel]
        for key, h in g.groupby(hue, sort=False):
            x = np.r_[0.0, h[time].to_numpy(float)]
            v = np.r_[1.0, h[value].to_numpy(float)]
            ax.step(x, v, where="post", color=colors[key], label=str(fmt.name(key)), linewidth=1.5)
        ax.set_title(str(fmt.name(panel)), loc="left", fontsize=9, fontweight="normal")
        ax.set_xlabel(xlabel)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt.percent(v, 0)))
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel)
    axes.flat[0].legend(fontsize=7, frameon=False, loc="lower left")
    fig.suptitle(title, x=0.01, ha="left", fontsize=11, fontweight="bold")
    fig.tight_layout()
    return fig


def histogram(data: pd.DataFrame, value: str, title: str, axis_label: str, fmt: Formatter,
              marks: dict[str, float] | None = None) -> Figure:  # fmt: skip
    """The distribution of ``value`` (currency; e.g. a plan's value over draws of its
    effects) with labelled vertical ``marks`` (label -> x: today's plan, a tail mean)."""
    values = data[value].astype(float)
    fig, ax = plt.subplots(figsize=(7.0, 3.0))
    top = float(np.nanmax(np.abs(values))) if len(values) else 0.0
    divisor, word = _scale(top, fmt.language)
    ax.hist(values / divisor, bins=40, color=PALETTE[2], edgecolor="white")
    styles = ["-", "--", ":"]
    for (text, x), style in zip((marks or {}).items(), styles * 3, strict=False):
        ax.axvline(x / divisor, color=PALETTE[4] if style == "-" else PALETTE[0], linestyle=style,
                   label=text)  # fmt: skip
    ax.set_title(title, loc="left")
    ax.set_xlabel(f"{axis_label}, {word}" if word else axis_label)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt.number(v)))
    ax.set_yticks([])
    if marks:
        ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def show(part: Figure | str) -> None:
    """Display a figure (then close it, so inside loops figures keep their place among the
    tables instead of all appearing at the end of the cell) or a piece of report HTML."""
    from IPython.display import HTML, display

    if isinstance(part, str):
        if part:
            display(HTML(part))
        return
    display(part)
    plt.close(part)
