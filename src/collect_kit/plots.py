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


_SCALES = (
    (1e9, {"en": "billions", "es": "miles de millones"}),
    (1e6, {"en": "millions", "es": "millones"}),
)


def _scale(top: float, language: str) -> tuple[float, str]:
    """Divide large amounts so axis labels stay short; returns (divisor, unit word)."""
    for divisor, words in _SCALES:
        if top >= 10 * divisor:
            return divisor, words[language]
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
    ax.set_yticks(y, [str(c) for c in data[category]])
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
    counts = matrix.astype(float)
    small = counts.map(is_small)
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
